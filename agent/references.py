"""Numbers by reference: a model cites evidence fields, code writes the numbers.

A model-written plan writes every number as a reference to a field of the evidence it cites,
``{diagnose#1.late_rate:%1}``, and :func:`render_plan` turns each into the value, formatted
by its spec; the verifier (:func:`reference_problems`) rejects any other number, so a model
cannot write a wrong one. Specs (``N`` is the decimals shown, 0 to 3):

* ``{id.key}`` - the value, two decimals at most (``1,029``, ``0.24``);
* ``{id.key:N}`` - the value with N decimals;
* ``{id.key:%N}`` - a fraction as a percent with N decimals, sign included (``23.9%``);
* ``{id.key:ptsN}`` - a fraction times 100 with N decimals, for "points" (``15.8``);
* an ``a`` first (``:a%1``) writes the absolute value ("fell 3.2 points").

The literal numbers a plan may still write are enumerated by :func:`allowed_literals`: dates
and ids (never read as numbers), a count of items the plan itself lists ("the top 3"), and a
number the question or the run's settings named (a span, "last 14 days"; the 80 % interval
level; the forecast horizon).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.schemas import ActionPlan

REFERENCE = re.compile(
    r"\{(?P<id>[A-Za-z_]+#\d+)\.(?P<key>[^{}:\s]+?)(?::(?P<spec>a?(?:%|pts)?[0-3]))?\}"
)
# Dates, times, ids (S003, R2, I001, hex seller ids) and evidence ids (diagnose#2) are not
# numbers.
_IGNORE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b|\b[A-Za-z_]+#\d+\b|\b[A-Za-z]+\d+[A-Za-z0-9]*\b"
    r"|\b(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]+\b"
)
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+]?)\$?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?P<unit>\s*(?:%|pts?\b|points?\b))?"
)


@dataclass(frozen=True)
class Literal:
    """A number written in a text."""

    start: int
    end: int
    """Span of the number, its sign and a ``%`` sign (not a "points" word)."""
    value: float
    decimals: int
    scaled: bool
    """Written as a percent or points (a fraction times 100)."""
    percent_sign: bool


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def literals(text: str, ids: Iterable[str] = ()) -> list[Literal]:
    """Return the literal numbers of ``text`` (references, dates and ids are not numbers).

    Args:
        text: the text.
        ids: store, region and other ids the text may name (``FR/PAR/003``): an id with
            digits and something else is a name; an all-digit id stays a number.
    """
    cleaned = _blank(text, REFERENCE)
    for name in sorted(set(ids), key=len, reverse=True):
        if any(ch.isdigit() for ch in name) and not name.isdigit():
            cleaned = cleaned.replace(name, " " * len(name))
    cleaned = _blank(cleaned, _IGNORE)
    out = []
    for m in _NUMBER.finditer(cleaned):
        whole, frac, unit = m["whole"], m["frac"] or "", (m["unit"] or "").strip()
        value = float(whole.replace(",", "") + frac) * (-1.0 if m["sign"] == "-" else 1.0)
        end = m.end() if unit == "%" else m.end("frac") if m["frac"] else m.end("whole")
        out.append(
            Literal(
                start=m.start(),
                end=end,
                value=value,
                decimals=len(frac) - 1 if frac else 0,
                scaled=bool(unit),
                percent_sign=unit == "%",
            )
        )
    return out


def render_value(value: float, spec: str | None) -> str:
    """Format an evidence value by a reference's spec (see the module docstring)."""
    spec = spec or ""
    if spec.startswith("a"):
        value, spec = abs(value), spec[1:]
    if not spec:
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if spec.startswith("%"):
        return f"{100 * value:,.{int(spec[1:])}f}%"
    if spec.startswith("pts"):
        return f"{100 * value:,.{int(spec[3:])}f}"
    return f"{value:,.{int(spec)}f}"


def _numbers(evidence: Mapping[str, Mapping[str, Any]], eid: str) -> Mapping[str, float]:
    record = evidence.get(eid)
    return record.get("numbers", {}) if record else {}


def render_text(text: str, evidence: Mapping[str, Mapping[str, Any]]) -> str:
    """Replace every reference that resolves with its formatted value (others stay)."""

    def one(m: re.Match[str]) -> str:
        numbers = _numbers(evidence, m["id"])
        if m["key"] not in numbers:
            return m.group(0)
        return render_value(float(numbers[m["key"]]), m["spec"])

    return REFERENCE.sub(one, text)


def render_plan(plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]]) -> ActionPlan:
    """Return the plan with every reference in its texts written as its value."""
    return plan.with_texts(lambda text: render_text(text, evidence))


@dataclass(frozen=True)
class Allowed:
    """What a model-written plan may write as a literal number, each in its own context."""

    counts: frozenset[float]
    """How many items the plan lists: allowed as "the top N", "these N", "first N"."""
    question: str
    """A number the question named, with the word after it ("14 days"), may be repeated."""
    levels: frozenset[float]
    """Levels the settings name: as a percent ("80%") or a span of days ("7 days")."""


_COUNT_BEFORE = re.compile(r"(?i)\b(?:top|first|these|those|following|all)\s+$")
_LEVEL_AFTER = re.compile(r"(?i)^\s*(?:%|per\s*cent|-?\s*days?\b)")
_WORD_AFTER = re.compile(r"^\s*[\w%-]+")


def allowed_literals(plan: ActionPlan, question: str | None, levels: Iterable[float]) -> Allowed:
    """Return what a model-written plan may write as literals (module docstring).

    Args:
        plan: the plan (its lists' lengths are counts it may state).
        question: the question asked (numbers it names: a span, a "top N").
        levels: levels the run's settings name (the 80 % interval, the forecast horizon).
    """
    counts = {
        float(len(items))
        for items in (plan.findings, plan.hypotheses, plan.actions, plan.outlook)
        if items
    }
    return Allowed(
        counts=frozenset(counts),
        question=" ".join((question or "").lower().split()),
        levels=frozenset(float(v) for v in levels),
    )


def literal_allowed(text: str, lit: Literal, allowed: Allowed) -> bool:
    """Tell whether a literal number is one of the allowed kinds, in its context."""
    if lit.decimals or (lit.scaled and not lit.percent_sign):
        return False
    value = abs(lit.value)
    before, after = text[: lit.start], text[lit.end :]
    if value in allowed.counts and not lit.scaled and _COUNT_BEFORE.search(before):
        return True
    if value in allowed.levels and (lit.percent_sign or _LEVEL_AFTER.match(after)):
        return True
    word = _WORD_AFTER.match(after)
    phrase = " ".join((text[lit.start : lit.end] + (word.group(0) if word else "")).split())
    return bool(allowed.question) and phrase.lower() in allowed.question


def reference_problems(
    where: str,
    text: str,
    cited: list[str],
    evidence: Mapping[str, Mapping[str, Any]],
    allowed: Allowed,
    ids: Iterable[str] = (),
) -> tuple[list[str], int, int]:
    """Check a model-written text's references (cited fields) and literals (allowed ones).

    Returns:
        (problems, numbers checked, numbers grounded).
    """
    problems: list[str] = []
    checked = grounded = 0
    for m in REFERENCE.finditer(text):
        checked += 1
        if m["id"] not in cited:
            problems.append(
                f"{where}: {m.group(0)} refers to evidence it does not cite; cite {m['id']} "
                "or refer to cited evidence"
            )
        elif m["key"] not in _numbers(evidence, m["id"]):
            keys = ", ".join(list(_numbers(evidence, m["id"]))[:12])
            problems.append(
                f"{where}: {m.group(0)} names no number of {m['id']}; its numbers are {keys}"
            )
        else:
            grounded += 1
    for lit in literals(text, ids):
        checked += 1
        if literal_allowed(text, lit, allowed):
            grounded += 1
            continue
        problems.append(
            f"{where}: write the number {text[lit.start : lit.end]!r} as a reference to the "
            "evidence field it comes from, {evidence_id.key} (e.g. {diagnose#1.late_rate:%1})"
        )
    return problems, checked, grounded


def to_references(
    text: str, cited: list[str], evidence: Mapping[str, Mapping[str, Any]], ids: Iterable[str] = ()
) -> str:
    """Rewrite literal numbers as references to the cited fields that render to them exactly.

    A literal no field renders to stays as written.

    What a well-behaved model does with a number it read; the tests' scripted models use it.
    """
    out = text
    for lit in reversed(literals(text, ids)):
        written = text[lit.start : lit.end].lstrip("+").replace("$", "")
        specs = (
            [f"%{lit.decimals}", f"a%{lit.decimals}"]
            if lit.percent_sign
            else [f"pts{lit.decimals}", f"apts{lit.decimals}"]
            if lit.scaled
            else [str(lit.decimals), f"a{lit.decimals}", f"pts{lit.decimals}"]
        )
        found = next(
            (
                f"{{{eid}.{key}:{spec}}}"
                for eid in cited
                for key, value in _numbers(evidence, eid).items()
                for spec in specs
                if render_value(float(value), spec) == written
            ),
            None,
        )
        if found is not None:
            start = lit.start + (len(text[lit.start : lit.end]) - len(written))
            out = out[:start] + found + out[lit.end :]
    return out


def plan_to_references(plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]]) -> ActionPlan:
    """Return ``plan`` with each item's numbers as references to the evidence it cites.

    See :func:`to_references`; caveats keep their words.
    """

    def ref(text: str, cited: list[str]) -> str:
        return to_references(text, cited, evidence)

    return plan.model_copy(
        update={
            "summary": ref(plan.summary, plan.summary_evidence_ids),
            "findings": [
                f.model_copy(update={"text": ref(f.text, f.evidence_ids)}) for f in plan.findings
            ],
            "hypotheses": [
                h.model_copy(update={"text": ref(h.text, h.evidence_ids)}) for h in plan.hypotheses
            ],
            "actions": [
                a.model_copy(update={"rationale": ref(a.rationale, a.evidence_ids)})
                for a in plan.actions
            ],
            "outlook": [
                o.model_copy(update={"text": ref(o.text, o.evidence_ids)}) for o in plan.outlook
            ],
        }
    )
