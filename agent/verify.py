"""Check an action plan against its evidence, without an LLM.

* every cited evidence id exists;
* numbers in text: a plan a model wrote refers to evidence fields for every number
  (``{diagnose#1.value:%1}``, :mod:`agent.references`): each reference must name a number
  of evidence the item cites, and any other literal is rejected unless it is an allowed one
  (a date, an id, "the top 3" of the plan's own list, a number the question named with its
  word, "80% interval", "the next 7 days"); a plan the templates wrote (code, from the
  evidence) has each number checked against the cited evidence at the precision written
  (0.2394 may be written 23.9% or 0.24, never 24.5%);
* structured numbers are the fields they stand for: an action's expected impact, interval,
  cost and lever equal that action's own fields of the cited ``recommend_actions``
  evidence, a hypothesis' value and normal the cause's own reading;
* actions come from the catalog, with their lever's parameter inside its range and the
  catalog's approval policy;
* hypotheses name a known root cause; caveats and not-assessed reasons carry no numbers,
  except those of the run's own notes (a tool's error message, such as "needs at least 20
  orders", written by code);
* no text carries HTML, an image, a link or a mention;
* the plan's structure agrees with the evidence (:mod:`agent.coherence`): no action or
  cause for a scope within its normal range, avoided late deliveries within the excess they
  treat, no store counted again inside its region, confidence no higher than the evidence's.

Problems come back as concrete instructions the composer can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel

from agent.answers import cell_text
from agent.coherence import check_coherence
from agent.health import health_problems
from agent.references import (
    REFERENCE,
    Allowed,
    allowed_literals,
    literals,
    reference_problems,
)
from agent.schemas import ActionPlan, PlannedAction
from agent.untrusted import markup_problems, neutralise
from tools.catalog import load_catalog
from tools.vocabulary import cause_ids


class VerifyReport(BaseModel):
    """Outcome of :func:`verify_plan`."""

    ok: bool
    problems: list[str]
    numbers_checked: int
    numbers_grounded: int

    @property
    def groundedness(self) -> float:
        """Share of checked numbers found in cited evidence (1.0 when none were written)."""
        return self.numbers_grounded / self.numbers_checked if self.numbers_checked else 1.0


def extract_numbers(text: str, ids: Iterable[str] = ()) -> list[tuple[float, int, bool]]:
    """Numbers written in ``text``: (value, decimals shown, written as a percent/points).

    Args:
        text: the text.
        ids: store, region and other ids the text may name (``FR/PAR/003``): not numbers.
    """
    return [(lit.value, lit.decimals, lit.scaled) for lit in literals(text, ids)]


def matches(value: float, decimals: int, percent: bool, evidence: Iterable[float]) -> bool:
    """Tell whether some evidence number, rounded to the shown precision, equals ``value``.

    Fractions may be written as percents or points (0.2394 -> "23.9%", "+23.94 pts");
    signs may be dropped ("rose 15.0 pts" for +0.150).
    """
    tolerance = 0.5 * 10 ** (-decimals) + 1e-9
    for e in evidence:
        candidates = [e, abs(e)]
        if percent or abs(e) <= 1.0:
            candidates += [100 * e, abs(100 * e)]
        if any(abs(c - value) <= tolerance for c in candidates):
            return True
    return False


def _numbers_of(ids: Iterable[str], evidence: Mapping[str, Mapping[str, Any]]) -> list[float]:
    out: list[float] = []
    for i in ids:
        record = evidence.get(i)
        if record is None:
            continue
        out += [float(v) for v in record.get("numbers", {}).values()]
        out += [float(v) for v in _flat_numbers(record.get("inputs", {}))]
    return out


def _flat_numbers(obj: Any) -> Iterable[float]:
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        yield float(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _flat_numbers(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _flat_numbers(v)


def _names(
    plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]], by_model: bool = False
) -> set[str]:
    """Every store, region or other id the run's evidence and the plan name (not numbers).

    For a model's plan only id-like strings count: a number a query row carries as text
    ("42%") stays a number. The templates quote text cells as data (:func:`cell_text`), so
    for them every string of the evidence, as quoted, is a name.
    """
    out = {h.target for h in plan.hypotheses} | {a.target for a in plan.actions}
    out |= {o.target for o in plan.outlook}
    out |= {neutralise(t).strip() for t in out}  # as plan texts quote them, markup removed

    def strings(obj: Any) -> Iterable[str]:
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, Mapping):
            for v in obj.values():
                yield from strings(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                yield from strings(v)

    for record in evidence.values():
        for part in ("inputs", "facts"):
            for s in strings(record.get(part, {})):
                if _DATE_ONLY.fullmatch(s):
                    continue
                if _ID_LIKE.fullmatch(s):
                    out.add(s)
                elif not by_model:  # as the template quotes it, markup removed
                    out |= {s, cell_text(s), neutralise(cell_text(s)).strip()}
    return out


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# An id: one token with a letter, no spaces and no sign of a quantity ("42%", "1,234 late
# deliveries" and a store named "99% on time" are not ids: their numbers stay numbers).
_ID_LIKE = re.compile(r"(?=[^%\s]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_/.:#-]{0,63}")


def verify_plan(
    plan: ActionPlan,
    evidence: Mapping[str, Mapping[str, Any]],
    notes: Iterable[str] = (),
    *,
    known_day: date | None = None,
    by_model: bool = False,
    question: str | None = None,
    levels: tuple[float, float] | None = None,
) -> VerifyReport:
    """Check ``plan`` against the run's evidence records (id -> record dict).

    Args:
        plan: the plan to check.
        evidence: the run's evidence records by id.
        notes: the run's notes (failed tool calls); caveats may repeat their numbers.
        known_day: the run's latest complete day; an action for an earlier cell is over
            (None: not checked).
        by_model: the plan was written by a model: its numbers must be references to
            evidence fields (:mod:`agent.references`), not literals; a plan code wrote from
            the evidence (the template) is checked number by number at its precision.
        question: the question asked (numbers it names may be written as literals).
        levels: (interval level in percent, forecast horizon in days) of the run: a model
            may write them as literals in their own phrase ("80% interval", "next 7 days").

    Returns:
        The report; ``ok`` is False when anything is wrong, with one instruction per problem.
    """
    check = _Checker(
        evidence=evidence,
        names=_names(plan, evidence, by_model),
        by_model=by_model,
        allowed=allowed_literals(plan, question, levels),
    )
    check.noted = [v for n in notes for v, _, _ in extract_numbers(n, check.names)]
    check.text("summary", plan.summary, plan.summary_evidence_ids, check.noted)
    for i, f in enumerate(plan.findings):
        check.text(f"finding {i + 1}", f.text, f.evidence_ids)
    check.hypotheses(plan)
    for i, o in enumerate(plan.outlook):
        check.text(f"outlook {i + 1}", o.text, o.evidence_ids)
    check.free_texts(plan)
    for i, a in enumerate(plan.actions):
        check.action(f"action {i + 1} ({a.action_id})", a)
    for where, text in plan.texts():  # no exception for links in the data: data is untrusted
        for kind in markup_problems(text):
            check.problems.append(f"{where} carries {kind}: write plain sentences only")
    check.problems += check_coherence(plan, evidence, known_day)
    check.problems += health_problems(plan, evidence)
    return VerifyReport(
        ok=not check.problems,
        problems=check.problems,
        numbers_checked=check.checked,
        numbers_grounded=check.grounded,
    )


@dataclass
class _Checker:
    """One verification's running tally: what was checked, grounded, and what is wrong."""

    evidence: Mapping[str, Mapping[str, Any]]
    names: set[str]
    by_model: bool
    allowed: Allowed
    noted: list[float] = field(default_factory=list)
    """Numbers of the run's notes (a caveat may repeat them)."""
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    grounded: int = 0

    def cited(self, where: str, ids: list[str]) -> list[str]:
        """Return the cited ids that exist; a missing one is a problem."""
        known = [i for i in ids if i in self.evidence]
        for missing in sorted(set(ids) - set(known)):
            self.problems.append(
                f"{where} cites evidence {missing!r}, which does not exist; cite one of "
                f"{', '.join(sorted(self.evidence)) or 'the tool results'}"
            )
        return known

    def text(self, where: str, text: str, ids: list[str], extra: Iterable[float] = ()) -> None:
        """Check a text's numbers: references (a model's plan) or literals (the template's)."""
        if self.by_model:
            found, n, ok = reference_problems(
                where, text, self.cited(where, ids), self.evidence, self.allowed, self.names
            )
            self.problems.extend(found)
            self.checked, self.grounded = self.checked + n, self.grounded + ok
            return
        if REFERENCE.search(text):
            self.problems.append(f"{where}: an unrendered reference; write the number itself")
        pool = _numbers_of(self.cited(where, ids), self.evidence) + list(extra)
        for value, decimals, percent in extract_numbers(text, self.names):
            self.checked += 1
            if matches(value, decimals, percent, pool):
                self.grounded += 1
            else:
                self.problems.append(
                    f"{where} states {value:g}{'%' if percent else ''}, which is not in its cited "
                    f"evidence ({', '.join(ids) or 'none cited'}); quote the evidence value or "
                    "remove the number"
                )

    def stands_for(self, where: str, value: float, ids: list[str], key: str, *alts: str) -> None:
        """Check a structured number is the one field of its cited evidence it stands for."""
        self.checked += 1
        fields = [
            float(self.evidence[i]["numbers"][k])
            for i in ids
            for k in (key, *alts)
            if i in self.evidence and k in self.evidence[i].get("numbers", {})
        ]
        if any(abs(value - e) <= 1e-6 + 1e-6 * abs(e) for e in fields):
            self.grounded += 1
        else:
            self.problems.append(
                f"{where} = {value:g} is not {key} of its cited evidence ({', '.join(ids)})"
                + (f": that is {fields[0]:g}" if fields else "")
            )

    def hypotheses(self, plan: ActionPlan) -> None:
        """Check each hypothesis: a known cause, its text, its reading and normal."""
        causes = cause_ids()
        unknown = [h.cause for h in plan.hypotheses] + [n.cause for n in plan.not_assessed]
        for cause in dict.fromkeys(c for c in unknown if c not in causes):
            # the plan schema refuses these; a plan built around it is still caught
            self.problems.append(f"unknown cause {cause!r}; use one of {', '.join(causes)}")
        for i, h in enumerate(plan.hypotheses):
            self.text(f"hypothesis {i + 1}", h.text, h.evidence_ids)
            for part in ("value", "expected"):
                number = getattr(h, part)
                if number is not None:  # the cause's own reading (in hours, or in days)
                    self.stands_for(
                        f"hypothesis {i + 1} {part}",
                        number,
                        h.evidence_ids,
                        f"{h.cause}.{part}",
                        f"{h.cause}.{part}_days",
                    )

    def free_texts(self, plan: ActionPlan) -> None:
        """Caveats and not-assessed reasons carry no numbers (but the run's own notes')."""
        free = [(f"caveat {i + 1}", c) for i, c in enumerate(plan.caveats)]
        free += [(f"not_assessed {i + 1}", n.reason) for i, n in enumerate(plan.not_assessed)]
        for where, c in free:
            if REFERENCE.search(c) or "{" in c:
                self.problems.append(f"{where} carries a reference: caveats carry no numbers")
            for value, _, percent in extract_numbers(c, self.names):
                self.checked += 1
                if any(abs(value - v) <= 1e-9 for v in self.noted):
                    self.grounded += 1
                    continue
                self.problems.append(
                    f"{where} states {value:g}{'%' if percent else ''}; caveats carry no numbers"
                )

    def action(self, where: str, a: PlannedAction) -> None:
        """Check an action against the catalog and its cited recommendation's fields."""
        catalog = load_catalog()
        try:
            spec = catalog.get(a.action_id)
        except KeyError:
            self.problems.append(
                f"{where}: not in the action catalog; "
                f"use one of {', '.join(x.id for x in catalog.actions)}"
            )
            return
        lever = spec.lever
        if set(a.lever) != {lever.parameter} or len(a.parameters) != 1:
            self.problems.append(
                f"{where}: parameters must be exactly one setting named {lever.parameter!r}"
            )
        for name, value in a.lever.items():
            if name == lever.parameter and not lever.min <= value <= lever.max:
                self.problems.append(
                    f"{where}: {name}={value:g} is outside {lever.min:g}..{lever.max:g} "
                    f"{lever.unit}"
                )
        if a.needs_approval != spec.needs_approval:
            self.problems.append(
                f"{where}: needs_approval must be {spec.needs_approval} (catalog policy)"
            )
        ids = self.cited(where, a.evidence_ids)
        for name, value, key in (
            ("expected_avoided", a.expected_avoided, "expected_avoided"),
            ("avoided_low", a.avoided_low, "ci_low"),
            ("avoided_high", a.avoided_high, "ci_high"),
            ("cost", a.cost, "cost"),
            *((name, v, name) for name, v in a.lever.items()),
        ):
            self.stands_for(f"{where} {name}", value, ids, f"{a.action_id}.{key}")
        self.text(f"{where} rationale", a.rationale, a.evidence_ids)
