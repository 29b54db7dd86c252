"""Eval suites: YAML files that anyone can write (see ``evals/README.md``).

A suite names a world (a synthetic one from its size and seed, or a real dataset), the
incidents injected into it (the ground truth), and the cases to run the agent on: morning
triages of a day, scans of a window, and questions. Keys beyond the documented ones are
errors, so a typo cannot silently change what is measured.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.data.synthetic import IncidentSpec, WorldConfig
from tools.vocabulary import ActionId, CauseId, QueryKpi

SUITES_DIR = Path(__file__).parent / "suites"
# Every metric a suite report can carry (``evals.metrics.aggregate``); thresholds name these.
METRICS = (
    "detection_recall",
    "event_precision",
    "root_cause_top1",
    "root_cause_top3",
    "action_correct",
    "impact_within_30pct",
    "impact_abs_relative_error",
    "baseline_correlation_top1",
    "baseline_deviation_top1",
    "baseline_anomaly_only_top1",
    "persistence_correct",
    "baseline_no_forecast_persistence",
    "groundedness",
    "plan_valid",
    "template_fallback",
    "question_correct",
    "tool_call_validity",
    "llm_calls_per_case",
    "tokens_per_case",
    "latency_s",
    "case_errors",
    "cases_passed",
    "unexplained_per_100_store_weeks",
    "correlation_margin",
    "actions_on_normal_scopes",
    "overpromised_cells",
    "nested_double_counts",
    "stale_actions",
    "dropped_findings",
    "ranking_order",
    "unsupported_targets",
    "quoted_links",
)
_DATE_REF = re.compile(r"\{date:(\d+)\}")


class DatasetSpec(BaseModel):
    """A real dataset instead of a synthetic world."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["olist"]
    path: str = Field(description="Folder of the dataset, relative to the repository root.")


class Expect(BaseModel):
    """What an answer (a question's, or a triage's plan) must contain.

    Omitted for a question: derived from the ground truth. ``cause: unexplained`` means the
    plan names no cause.
    """

    model_config = ConfigDict(extra="forbid")

    target: str | None = None
    target_in: list[str] | None = Field(None, description="The top hypothesis is about one of.")
    cause: CauseId | Literal["unexplained"] | None = None
    causes: list[CauseId] | None = Field(
        None, description="Causes every one of which the plan names."
    )
    action: ActionId | None = None
    actions: list[ActionId] | None = Field(
        None, description="Actions every one of which is proposed."
    )
    outlook: bool | None = None
    no_actions: bool | None = None
    no_anomalies: bool | None = Field(None, description="A scan (or triage) flags nothing.")
    confidence: Literal["high", "medium", "low"] | None = Field(
        None, description="The top hypothesis's confidence."
    )
    not_assessed: list[str] | None = Field(None, description="Causes listed as not assessed.")
    window_overlaps: tuple[date, date] | None = Field(
        None, description="The top hypothesis's cell overlaps these days."
    )
    window_within: tuple[date, date] | None = Field(
        None, description="The top hypothesis's cell lies inside these days."
    )
    scope: list[str] | None = Field(
        None,
        description="The stores or regions the answer looked at ('all' for the chain), in "
        "any order: the scope the question was understood to ask about.",
    )
    period: tuple[date | int, date | int] | None = Field(
        None, description="First and last day the answer looked at (dates or day indexes)."
    )
    ranked_top: list[str] | None = Field(
        None,
        description="The scopes a ranking says stand out begin with these, in order; [] means "
        "none stands out.",
    )
    unknown: bool | None = Field(
        None,
        description="The answer says a name or date is not in the data (and about nothing else).",
    )
    kpi: QueryKpi | None = Field(None, description="A KPI the answer reports (e.g. no_show_rate).")
    apply_on: date | None = Field(
        None, description="The first action is for this day to come (a forecast-driven answer)."
    )
    persistence: Literal["persists", "fades", "normal", "coming"] | None = Field(
        None, description="The first outlook's verdict."
    )


class Case(BaseModel):
    """One thing to run: a triage of a day, a scan of a window, or a question."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    triage_day: int | date | None = Field(None, description="Day index (0 = start date) or a date.")
    scope: str = Field("all", description="all, region:R2 or store:S003 (triage cases).")
    scan: dict[str, int | date | bool] | None = Field(
        None,
        description="{start_day or start, days[, each_day]}: scan a window, no agent; "
        "each_day scans every day as of its own end, as the morning triage would.",
    )
    question: str | None = Field(
        None, description="A manager's question; {date:N} is day N's date."
    )
    follow_up: list[str] = Field(
        default_factory=list,
        description="Questions asked after it in the same thread; the last answer is scored.",
    )
    today: int | date | None = Field(
        None,
        description="The day this case is asked, a date or a day index (default: the suite's "
        "today); actions are only proposed for a cell of its eve or later.",
    )
    expect: Expect | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Case:
        kinds = [k for k in ("triage_day", "scan", "question") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a case is exactly one of triage_day, scan or question (got {kinds or 'none'})"
            )
        if self.follow_up and self.question is None:
            raise ValueError("follow_up needs a question to follow")
        if self.scan is not None:
            keys = set(self.scan)
            starts = keys & {"start_day", "start"}
            if (
                len(starts) != 1
                or "days" not in keys
                or keys - {"start_day", "start", "days", "each_day"}
            ):
                raise ValueError("scan takes {start_day or start, days} and optionally each_day")
        return self

    @property
    def kind(self) -> Literal["triage", "scan", "question"]:
        """Which kind of case this is."""
        if self.triage_day is not None:
            return "triage"
        return "scan" if self.scan is not None else "question"


class Suite(BaseModel):
    """A whole suite file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    world: WorldConfig | DatasetSpec
    incidents: list[IncidentSpec] = Field(default_factory=list)
    cases: list[Case] = Field(min_length=1)
    gate: bool = Field(True, description="False: report the metrics without failing on them.")
    tags: list[str] = Field(default_factory=list, description="e.g. confounded, quiet.")
    thresholds: dict[str, float | None] = Field(
        default_factory=dict,
        description="Overrides for this suite: METRIC (a minimum), METRIC_min, METRIC_max; "
        "null lifts the metric's bound.",
    )
    today: date | None = Field(
        None,
        description="The day questions are asked (default: the day after the data's last day).",
    )
    source: str = ""
    sha256: str = ""

    @model_validator(mode="after")
    def _synthetic_only(self) -> Suite:
        if isinstance(self.world, DatasetSpec) and self.incidents:
            raise ValueError("incidents can only be injected into a synthetic world")
        for key in self.thresholds:
            if threshold_key(key)[0] not in METRICS:
                raise ValueError(f"thresholds: unknown metric {key!r}; one of {', '.join(METRICS)}")
        return self

    def day_of(self, ref: int | date) -> date:
        """Return a case's day as a date (day indexes count from the world's start date)."""
        if isinstance(ref, date):
            return ref
        if not isinstance(self.world, WorldConfig):
            raise ValueError("day indexes need a synthetic world; give a date instead")
        return self.world.day(ref)

    def render(self, text: str) -> str:
        """Replace ``{date:N}`` with day N's ISO date."""
        return _DATE_REF.sub(lambda m: self.day_of(int(m.group(1))).isoformat(), text)

    def case_id(self, i: int) -> str:
        """Return a case's id: its own, or its position."""
        case = self.cases[i]
        return case.id or f"{case.kind}-{i + 1}"


def threshold_key(key: str) -> tuple[str, Literal["min", "max"]]:
    """Split a threshold key into (metric, side): ``x_max`` -> (x, max); ``x`` -> (x, min)."""
    for side in ("min", "max"):
        if key.endswith(f"_{side}"):
            return key[: -len(side) - 1], side  # type: ignore[return-value]
    return key, "min"


def suite_paths(name_or_path: str) -> list[Path]:
    """Resolve ``all``, a shipped suite name, a folder, or a file to suite files."""
    if name_or_path == "all":
        return sorted(SUITES_DIR.glob("*.yaml"))
    path = Path(name_or_path)
    if path.is_dir():
        return sorted(path.glob("*.yaml"))
    if path.exists():
        return [path]
    shipped = SUITES_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return [shipped]
    known = ", ".join(p.stem for p in sorted(SUITES_DIR.glob("*.yaml")))
    raise ValueError(
        f"no suite {name_or_path!r}: give a YAML file, a folder, 'all' or one of: {known}"
    )


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file.

    Raises:
        ValueError: naming the file and every problem in it.
    """
    path = Path(path)
    try:
        text = path.read_text()
        doc: Any = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read suite {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"suite {path} must be a mapping with name, world, incidents and cases")
    try:
        suite = Suite.model_validate(doc)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc']))}: {e['msg']}"
            + (f" (got {e['input']!r})" if isinstance(e.get("input"), str | int | float) else "")
            for e in exc.errors()
        )
        raise ValueError(f"suite {path} is invalid:\n{problems}") from None
    suite.source = str(path)
    suite.sha256 = hashlib.sha256(text.encode()).hexdigest()
    return suite
