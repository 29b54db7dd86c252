"""Numbers by reference: a model cites evidence fields, code writes the numbers.

A model-written plan writes every number as a reference to a field of the evidence it cites,
``{diagnose#1.value:%1}``, and :func:`render_plan` turns each into the value, formatted
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

import difflib
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
_STRICT_IGNORE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b|\b[A-Za-z_]+#\d+\b|\b[A-Z]{1,2}\d{1,6}\b"
)
_ANY_NUMBER = re.compile(
    r"(?P<sign>(?<![\w])[-+])?\$?(?P<whole>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?"
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


def literals(text: str, ids: Iterable[str] = (), *, strict: bool = False) -> list[Literal]:
    """Return the literal numbers of ``text`` (references, dates and ids are not numbers).

    Args:
        text: the text.
        ids: store, region and other ids the text may name (``FR/PAR/003``): an id with
            digits and something else is a name; an all-digit id stays a number.
        strict: for a model's text: only the ids given, dates, times, evidence ids and
            ``S003``-shaped ids are names; any other digit is a number, even inside a token
            ("3x", "5k", "EUR1000", "1e3").
    """
    cleaned = _blank(text, REFERENCE)
    for name in sorted(set(ids), key=len, reverse=True):
        if any(ch.isdigit() for ch in name) and not name.isdigit():
            cleaned = cleaned.replace(name, " " * len(name))
    cleaned = _blank(cleaned, _STRICT_IGNORE if strict else _IGNORE)
    out = []
    for m in (_ANY_NUMBER if strict else _NUMBER).finditer(cleaned):
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
    """What a model-written plan may write as a literal number, each in its own phrase."""

    counts: frozenset[float]
    """How many items the plan lists: as "the top N", "the first N"."""
    question: frozenset[tuple[float, str]]
    """(number, the word after it) the question named, e.g. (14, "days")."""
    interval: float | None
    """The interval level in percent, as "80% interval"."""
    horizon: float | None
    """The forecast horizon in days, as "the next 7 days" or "a 7-day forecast"."""


_COUNT_BEFORE = re.compile(r"(?i)\b(?:top|first|following)\s+$")
_INTERVAL_AFTER = re.compile(r"(?i)^\s*(?:%\s*)?(?:prediction\s+|confidence\s+)?interval\b")
_HORIZON = (
    re.compile(r"(?i)\b(?:next|coming)\s+$"),
    re.compile(r"(?i)^\s*-?\s*days?\b"),
    re.compile(r"(?i)^\s*-\s*day\s+(?:horizon|forecast)\b"),
)
_BRACES = re.compile(r"\{[^{}]*\}|[{}]")
_WORD_AFTER = re.compile(r"^\s*([A-Za-z%]+)")


def _next_word(text: str, lit: Literal) -> str:
    word = _WORD_AFTER.match(text[lit.end :])
    return ("%" if lit.percent_sign else "") + (word.group(1).lower() if word else "")


def allowed_literals(
    plan: ActionPlan, question: str | None, levels: tuple[float, float] | None
) -> Allowed:
    """Return what a model-written plan may write as literals (module docstring).

    Args:
        plan: the plan (its lists' lengths are counts it may state, as "the top N").
        question: the question asked: a number it names may be repeated with the word
            after it ("14 days").
        levels: (interval level in percent, forecast horizon in days) of the run.
    """
    counts = {
        float(len(items))
        for items in (plan.findings, plan.hypotheses, plan.actions, plan.outlook)
        if items
    }
    text = question or ""
    named = frozenset((abs(lit.value), _next_word(text, lit)) for lit in literals(text))
    interval, horizon = levels if levels else (None, None)
    return Allowed(counts=frozenset(counts), question=named, interval=interval, horizon=horizon)


def literal_allowed(text: str, lit: Literal, allowed: Allowed) -> bool:
    """Tell whether a literal number is one of the allowed kinds, in its own phrase."""
    if lit.decimals or (lit.scaled and not lit.percent_sign):
        return False
    value, before, after = abs(lit.value), text[: lit.start], text[lit.end :]
    if value in allowed.counts and not lit.scaled and _COUNT_BEFORE.search(before):
        return True  # "the top 3"
    if value == allowed.interval and lit.percent_sign and _INTERVAL_AFTER.match(after):
        return True  # "80% interval"
    if value == allowed.horizon and not lit.scaled:
        days = _HORIZON[1].match(after)
        if (days and _HORIZON[0].search(before)) or _HORIZON[2].match(after):
            return True  # "the next 7 days", "a 7-day forecast"
    return (value, _next_word(text, lit)) in allowed.question


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
            known = list(_numbers(evidence, m["id"]))
            close = difflib.get_close_matches(m["key"], known, n=8, cutoff=0.3)
            keys = ", ".join(close + [k for k in known if k not in close][: 12 - len(close)])
            problems.append(
                f"{where}: {m.group(0)} names no number of {m['id']}; its numbers are {keys}"
            )
        else:
            grounded += 1
    for brace in _BRACES.finditer(text):
        if not REFERENCE.fullmatch(brace.group(0)):
            problems.append(
                f"{where}: {brace.group(0)[:60]!r} is not a reference; write "
                "{evidence_id.key} or {evidence_id.key:%1} (specs: N, %N, ptsN, aN)"
            )
    for lit in literals(text, ids, strict=True):
        checked += 1
        if literal_allowed(text, lit, allowed):
            grounded += 1
            continue
        problems.append(
            f"{where}: write the number {text[lit.start : lit.end]!r} as a reference to the "
            "evidence field it comes from, {evidence_id.key} (e.g. {diagnose#1.value:%1})"
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
