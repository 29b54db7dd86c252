"""The grounding corpus: model-written plans perturbed every way a wrong number gets in.

The plans come from real runs (the offline planner's template plans over the small world,
rewritten with references as a well-behaved model writes them). Each perturbation kind
must be rejected every time: the false-accept rate is 0. The clean plans are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.references import REFERENCE, plan_to_references, render_plan, render_value
from agent.schemas import ActionPlan, NotAssessedCause
from agent.service import AgentService
from agent.verify import verify_plan

LEVELS = (80.0, 7.0)
QUESTIONS = [
    ("why was S003 late on 2026-02-10?", date(2026, 2, 11)),
    ("what should we do about R2 tomorrow?", date(2026, 2, 15)),
    ("why were deliveries late in R2 on 2026-02-15?", date(2026, 2, 16)),
]


class Case:
    """A model-written plan with the evidence and question of its run."""

    def __init__(self, written: ActionPlan, evidence: dict[str, Any], question: str):
        self.written = written
        """The plan as the template wrote it (numbers typed by code)."""
        self.plan = plan_to_references(written, evidence)
        self.evidence, self.question = evidence, question

    def accepts(self, plan: ActionPlan) -> bool:
        report = verify_plan(
            plan, self.evidence, by_model=True, question=self.question, levels=LEVELS
        )
        return report.ok


@pytest.fixture(scope="module")
def cases(small_world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    state = tmp_path_factory.mktemp("corpus") / "state.sqlite"
    service = AgentService(db=small_world_db, state_db=state, offline=True)
    out = []
    try:
        for question, today in QUESTIONS:
            view = service.ask(question, today=today)
            record = service.record(view.run_id)
            evidence = {e["id"]: e for e in record.evidence}
            out.append(Case(ActionPlan.model_validate(record.plan), evidence, question))
    finally:
        service.close()
    return out


def _texts(plan: ActionPlan) -> Iterator[tuple[str, str]]:
    yield from ((w, t) for w, t in plan.texts() if REFERENCE.search(t))


def _edit_first(plan: ActionPlan, where: str, edit: Callable[[str], str]) -> ActionPlan:
    done = False

    def once(text: str) -> str:
        nonlocal done
        if done or not REFERENCE.search(text) or (where and where not in text):
            return text
        done = True
        return edit(text)

    return plan.with_texts(once)


def _references(case: Case) -> list[re.Match[str]]:
    return [m for _, t in _texts(case.plan) for m in REFERENCE.finditer(t)]


def _value(case: Case, m: re.Match[str]) -> float:
    return float(case.evidence[m["id"]]["numbers"][m["key"]])


def _literal_swaps(case: Case, change: Callable[[float], float]) -> list[ActionPlan]:
    out = []
    for m in _references(case):
        if m["key"] == "interval" and change(1.0) == 1.0:
            continue  # "80% interval" typed is an allowed literal (a level the settings name)
        typed = render_value(change(_value(case, m)), m["spec"])
        out.append(_edit_first(case.plan, m.group(0), lambda t, m=m, s=typed: t.replace(m[0], s)))
    return out


def _ref_swaps(case: Case, new: Callable[[re.Match[str]], str]) -> list[ActionPlan]:
    return [
        _edit_first(case.plan, m.group(0), lambda t, m=m: t.replace(m[0], new(m)))
        for m in _references(case)
    ]


def _uncited(case: Case, m: re.Match[str]) -> str:
    other = next((i for i in case.evidence if i != m["id"]), "made_up#9")
    return m.group(0).replace(m["id"], other)


def _action_edits(case: Case) -> list[ActionPlan]:
    out = []
    for i, a in enumerate(case.plan.actions):
        for update in (
            {"expected_avoided": a.cost},
            {"expected_avoided": a.expected_avoided * 1.1 + 1},
            {"avoided_low": a.avoided_high, "avoided_high": a.avoided_low},
            {"cost": round(a.cost * 0.9, 1)},
            {"parameters": [{"name": p.name, "value": p.value + 1} for p in a.parameters]},
        ):
            if all(getattr(a, k) == v for k, v in update.items() if k != "parameters"):
                continue
            actions = list(case.plan.actions)
            actions[i] = a.model_validate({**a.model_dump(), **update})
            out.append(case.plan.model_copy(update={"actions": actions}))
    return out


def _appended(case: Case, *sentences: str) -> list[ActionPlan]:
    return [_edit_first(case.plan, "", lambda t, x=x: t + " " + x) for x in sentences]


def _hypothesis_values(case: Case) -> list[ActionPlan]:
    out = []
    for i, h in enumerate(case.plan.hypotheses):
        for part, wrong in (("value", 56.0), ("expected", 1.0)):
            if getattr(h, part) is not None and getattr(h, part) != wrong:
                hypotheses = list(case.plan.hypotheses)
                hypotheses[i] = h.model_copy(update={part: wrong})
                out.append(case.plan.model_copy(update={"hypotheses": hypotheses}))
    return out


def _data_strings(case: Case) -> list[ActionPlan]:
    """Numbers a query row carries as text ("42%", "1,234 late deliveries")."""
    eid = case.plan.summary_evidence_ids[0]
    record = dict(case.evidence[eid])
    record["facts"] = {**record.get("facts", {}), "rows": [["42%", "1,234 late deliveries"]]}
    case.evidence = {**case.evidence, eid: record}
    return [
        case.plan.model_copy(
            update={"summary": case.plan.summary + " It was 42%, with 1,234 late deliveries."}
        )
    ]


PERTURBATIONS: dict[str, Callable[[Case], list[ActionPlan]]] = {
    "the right value typed as a literal": lambda c: _literal_swaps(c, lambda v: v),
    "a value off by one at its precision": lambda c: _literal_swaps(c, lambda v: v * 1.07 + 1),
    "a value ten times too large": lambda c: _literal_swaps(c, lambda v: v * 10),
    "a key the evidence lacks": lambda c: _ref_swaps(
        c, lambda m: m[0].replace(m["key"], m["key"] + "_max")
    ),
    "evidence the item does not cite": lambda c: _ref_swaps(c, lambda m: _uncited(c, m)),
    "a tool input written as a number": lambda c: [
        _edit_first(c.plan, "", lambda t: t + " Judged against the last 56 days.")
    ],
    "a count the plan does not list": lambda c: [
        _edit_first(c.plan, "", lambda t: t + " These are the top 11 causes.")
    ],
    "a number in a caveat": lambda c: [
        c.plan.model_copy(update={"caveats": [*c.plan.caveats, "About 12% of data is missing."]})
    ],
    "an action's structured number changed": _action_edits,
    "a number inside a token": lambda c: _appended(
        c, "Late rose 3x.", "It costs 5k.", "About EUR1000 more.", "Some 1e3 orders.", "Up 25pts."
    ),
    "a digit of an id or a date in the question": lambda c: _appended(
        c, "Late deliveries rose to 20.", "It reached 3 on Monday.", "It lasted 10 days."
    ),
    "a settings level outside its phrase": lambda c: _appended(
        c, "The late rate was 80%.", "The late rate was 7%.", "It lasted 7 hours."
    ),
    "a count word that is not a count": lambda c: _appended(
        c, "All 3 late deliveries were failed.", "These 2 stores were late."
    ),
    "a malformed reference": lambda c: (
        _ref_swaps(c, lambda m: m[0].replace(":" + (m["spec"] or ""), "").replace("}", ":.1%}"))
        + _ref_swaps(
            c, lambda m: m[0][:-1] + "%}" if not m["spec"] else m[0].replace(m["spec"], "%")
        )
        + _ref_swaps(
            c,
            lambda m: m[0].replace("}", ":%4}") if not m["spec"] else m[0].replace(m["spec"], "%4"),
        )
    ),
    "a number in a not-assessed reason or a reference in a caveat": lambda c: [
        c.plan.model_copy(
            update={
                "not_assessed": [NotAssessedCause(cause="weather", reason="42% of days lack it")]
            }
        ),
        c.plan.model_copy(update={"caveats": ["About {diagnose#1.value:%1} is uncertain."]}),
    ],
    "a hypothesis' value or normal changed": _hypothesis_values,
    "a number that query rows carry as text": _data_strings,
}


def test_clean_model_plans_are_accepted(cases: list[Case]) -> None:
    for case in cases:
        report = verify_plan(
            case.plan, case.evidence, by_model=True, question=case.question, levels=LEVELS
        )
        assert report.ok, report.problems
        assert report.numbers_checked > 0 and any(True for _ in _texts(case.plan))
        # code writes back exactly the numbers the references stand for
        assert render_plan(case.plan, case.evidence) == case.written


@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_every_perturbed_plan_is_rejected(
    cases: list[Case], kind: str, figure: Callable[[str, str], None]
) -> None:
    perturbed = [(case, plan) for case in cases for plan in PERTURBATIONS[kind](case)]
    assert perturbed, f"no plan to perturb for {kind}"
    accepted = [plan for case, plan in perturbed if case.accepts(plan)]
    TALLY[kind] = (len(perturbed), len(accepted))
    total, false = (sum(t[i] for t in TALLY.values()) for i in (0, 1))
    figure(
        "grounding corpus",
        f"{total} perturbed plans over {len(TALLY)} kinds, {false} false accepts "
        f"({100 * false / total:.1f} %)",
    )
    assert accepted == [], f"{kind}: {len(accepted)}/{len(perturbed)} false accepts"


TALLY: dict[str, tuple[int, int]] = {}
