"""Configuration of a synthetic world: its size, its incidents, and the causal model's constants.

``IncidentSpec`` is the incident entry shared with the eval suites
(``{kind, store | region, start_day | start_date, days, magnitude}``), so a world and its
incidents can be written down by hand in YAML.

``WorldConfig`` also describes *degraded* worlds, shaped like the data users actually have:
feeds that are flat or missing, an own fleet only, uneven regions, stores opened late,
closed weekdays and days lost from the export. Every option defaults to the complete world.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.causal.graph import load_graph
from tools.data.schema import IncidentKind

# What each kind may target: weather and traffic are measured per region (the conditions
# table), so they are regional; a roster shortage or a picking problem belongs to one store;
# a carrier can fail one store or a whole region, and a surge can hit either.
_SCOPES: dict[str, set[str]] = {
    "driver_shortage": {"store"},
    "dispatch_delay": {"store"},
    "severe_weather": {"region"},
    "traffic_disruption": {"region"},
    "carrier_outage": {"region", "store"},
    "volume_surge": {"store", "region"},
}

CAUSES: dict[str, tuple[str, str]] = {
    "driver_shortage": ("driver_no_shows", "no_show_rate"),
    "severe_weather": ("weather", "precip_mm"),
    "carrier_outage": ("carrier_failure", "dsp_gap"),
    "volume_surge": ("unplanned_volume", "orders_per_scheduled_driver"),
    "dispatch_delay": ("dispatch_delay", "dispatch_delay_min"),
    "traffic_disruption": ("traffic", "traffic_index"),
}
"""Incident kind -> (true root cause, the ``store_day`` column that carries it).

This is the simulator's ground truth, written here and not read from the causal graph: the
eval gate scores the graph against it, so a graph that names the wrong cause must not move
the answer key with it. The names are the shared vocabulary's (a cause the graph does not
define is refused at import); ``tests/unit/tools/test_vocabulary.py`` checks the graph
agrees with this truth."""
_unknown = {c for c, _ in CAUSES.values()} - set(load_graph().cause_names)
if _unknown:
    raise ValueError(f"incident causes {sorted(_unknown)} are not causes of the reviewed graph")


class IncidentSpec(BaseModel):
    """One injected incident, as written in an incidents file or an eval suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind
    store: str | None = Field(default=None, description="Store id, e.g. S012.")
    region: str | None = Field(default=None, description="Region id, e.g. R2.")
    start_day: int | None = Field(default=None, ge=0, description="Day index; day 0 = start_date.")
    start_date: date | None = Field(default=None, description="Alternative to start_day.")
    days: int = Field(default=1, ge=1, le=60)
    magnitude: float = Field(
        default=1.0,
        gt=0,
        le=3.0,
        description="1.0 = the kind's realistic default (late rate up ~4 noise SDs).",
    )

    @model_validator(mode="after")
    def _check_target(self) -> IncidentSpec:
        if (self.store is None) == (self.region is None):
            raise ValueError(f"{self.kind}: give exactly one of 'store' or 'region'")
        scope = "store" if self.store is not None else "region"
        if scope not in _SCOPES[self.kind]:
            allowed = " or ".join(sorted(_SCOPES[self.kind]))
            raise ValueError(f"{self.kind} applies to a {allowed}, not a {scope}")
        if (self.start_day is None) == (self.start_date is None):
            raise ValueError(f"{self.kind}: give exactly one of 'start_day' or 'start_date'")
        return self

    def first_day(self, world_start: date) -> int:
        """Day index of the incident's first day in a world starting at ``world_start``."""
        if self.start_day is not None:
            return self.start_day
        assert self.start_date is not None
        return (self.start_date - world_start).days


class DataGap(BaseModel):
    """Days missing from the data: deliveries due then are absent, as if the export lost them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_day: int = Field(ge=0, description="First missing day; day 0 = start_date.")
    days: int = Field(default=1, ge=1)
    store: str | None = Field(default=None, description="One store's days only; default: all.")


class MechanismShift(BaseModel):
    """A change in how a cause acts on lateness from one day on (a concept drift).

    ``beta_opd`` is the lateness each extra order per present driver adds (so no-shows and
    volume act through it), ``beta_traffic`` per unit of the traffic index, ``beta_precip``
    per mm of rain, ``beta_dispatch`` per minute of dispatch delay: a new routing tool, a
    depot move, a changed promise. The data's columns keep their meaning; only the effect
    changes, which only the stability of causal effects can see.
    """

    model_config = ConfigDict(extra="forbid")

    parameter: Literal["beta_opd", "beta_traffic", "beta_precip", "beta_dispatch"]
    start_day: int = Field(ge=0, description="Day index from which the effect changes.")
    factor: float = Field(gt=0, le=10, description="Multiplier of the effect from then on.")


class WorldConfig(BaseModel):
    """Size, seed and data shape of a synthetic world (the ``world:`` block of an eval suite).

    The options after ``natural_events`` shape the world like the data users have. Two change
    its make-up (``carriers``, ``region_sizes``); the others change only what the *data*
    shows, so ground truth stays each incident's counterfactual effect on the store-days that
    exist. With ``weather_feed: none`` the rain still falls; only the conditions table is
    empty.
    """

    model_config = ConfigDict(extra="forbid")

    stores: int = Field(default=20, ge=1, le=20_000)
    days: int = Field(default=60, ge=14, le=1_100)
    seed: int = Field(default=0, ge=0)
    regions: int | None = Field(default=None, ge=1, le=99, description="Default: ~15 stores each.")
    start_date: date = date(2026, 1, 1)
    mean_orders: float = Field(default=300.0, ge=20, le=5_000, description="Orders/store-day.")
    natural_events: bool = Field(default=True, description="Rare natural disruptions (labelled).")
    weather_feed: Literal["full", "flat", "none"] = Field(
        default="full",
        description="flat: conditions rows without information (no rain, traffic 1.0); "
        "none: no conditions rows.",
    )
    staffing_feed: Literal["full", "none"] = Field(default="full", description="none: no rows.")
    carriers: Literal["mixed", "own_fleet"] = Field(
        default="mixed", description="own_fleet: no DSP or crowd deliveries."
    )
    region_sizes: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        min_length=1,
        max_length=99,
        description="Stores per region, in order (summing to stores); default: even blocks.",
    )
    store_opening: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Store id -> day index it opens (no deliveries or staffing before).",
    )
    closed_weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list, description="Weekdays (0 = Monday) when no store operates."
    )
    gaps: list[DataGap] = Field(default_factory=list, description="Days lost from the data.")
    action_efficacy: dict[str, Annotated[float, Field(ge=0.0, le=2.0)]] = Field(
        default_factory=dict,
        description="Catalog action id -> share of its simulated effect the world delivers "
        "(default 1.0): 0.5 is an action that does half of what it does in the model, e.g. "
        "backup drivers of whom half turn up. Only approved actions' outcomes see it.",
    )

    mechanism_shifts: list[MechanismShift] = Field(
        default_factory=list,
        description="Changes in a cause's effect on lateness from a day on (concept drift).",
    )

    @field_validator("start_date", mode="before")
    @classmethod
    def _parse_date(cls, v: Any) -> Any:
        return date.fromisoformat(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check_shape(self) -> WorldConfig:
        errors = self._region_problems() + self._coverage_problems()
        errors += [
            f"mechanism shift of {m.parameter} starts on day {m.start_day}, after the world's "
            f"last day ({self.days - 1})"
            for m in self.mechanism_shifts
            if m.start_day >= self.days
        ]
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _region_problems(self) -> list[str]:
        if self.region_sizes is None:
            return []
        errors = []
        if sum(self.region_sizes) != self.stores:
            errors.append(
                f"region_sizes {self.region_sizes} hold {sum(self.region_sizes)} stores, "
                f"not the world's {self.stores}"
            )
        if self.regions is not None and self.regions != len(self.region_sizes):
            errors.append(
                f"regions is {self.regions} but region_sizes lists {len(self.region_sizes)}"
            )
        return errors

    def _coverage_problems(self) -> list[str]:
        errors = []
        known = set(self.store_ids) if self.store_opening or self.gaps else set()
        for store, day in self.store_opening.items():
            if store not in known:
                errors.append(f"store_opening: unknown store {store!r}")
            elif day >= self.days:
                errors.append(f"store_opening: {store} opens on day {day}, after the last day")
        if len(set(self.closed_weekdays)) != len(self.closed_weekdays):
            errors.append(f"closed_weekdays {self.closed_weekdays} repeats a weekday")
        if len(set(self.closed_weekdays)) == 7:
            errors.append("closed_weekdays closes every day of the week")
        for i, gap in enumerate(self.gaps):
            if gap.start_day + gap.days > self.days:
                errors.append(
                    f"gaps[{i}]: days {gap.start_day}..{gap.start_day + gap.days - 1}"
                    f" fall outside the world (days 0..{self.days - 1})"
                )
            if gap.store is not None and gap.store not in known:
                errors.append(f"gaps[{i}]: unknown store {gap.store!r}")
        return errors

    @property
    def n_regions(self) -> int:
        """Number of regions (explicit, or about fifteen stores per region, at most 8)."""
        if self.region_sizes is not None:
            return len(self.region_sizes)
        if self.regions is not None:
            return min(self.regions, self.stores)
        return max(1, min(8, math.ceil(self.stores / 15)))

    @property
    def store_ids(self) -> list[str]:
        """Readable store ids S001, S002, ... (wider when there are more than 999 stores)."""
        width = max(3, len(str(self.stores)))
        return [f"S{i + 1:0{width}d}" for i in range(self.stores)]

    @property
    def region_ids(self) -> list[str]:
        """Region ids R1, R2, ..."""
        return [f"R{i + 1}" for i in range(self.n_regions)]

    def day(self, index: int) -> date:
        """Calendar date of day ``index``."""
        return self.start_date + timedelta(days=index)


class ScmParams(BaseModel):
    """Constants of the structural causal model. Tests compare estimates against these.

    Late probability of a delivery (all carriers; DSP outages add to DSP deliveries only)::

        p = base[carrier] + beta_opd * (orders_per_driver - opd_ref)
            + beta_precip * precip_mm + beta_traffic * (traffic_index - 1)
            + beta_dispatch * (dispatch_delay_min - dispatch_ref)
    """

    model_config = ConfigDict(frozen=True)

    base_late: dict[str, float] = {"own_fleet": 0.050, "dsp": 0.065, "crowd": 0.080}
    beta_opd: float = 0.009
    opd_ref: float = 20.0
    beta_precip: float = 0.004
    beta_traffic: float = 0.22
    beta_dispatch: float = 0.004
    dispatch_ref: float = 8.0
    p_min: float = 0.005
    p_max: float = 0.90
    failed_share: float = 0.15
    failed_share_outage: float = 0.40
    cancel_rate: float = 0.006
    late_delay_mean_min: float = 30.0  # minutes past the window: 1 + Exp(mean)

    # demand and staffing
    promo_uplift: float = 0.35
    holiday_factor: float = 0.85
    demand_noise_sd: float = 0.02
    rain_demand_per_mm: float = 0.002
    weekly: tuple[float, ...] = (0.97, 0.94, 0.96, 1.00, 1.08, 1.12, 0.93)  # Mon..Sun
    yearly_amplitude: float = 0.12
    no_show_base: float = 0.04
    no_show_per_mm: float = 0.006
    dispatch_noise_sd: float = 1.2
    dispatch_per_surge: float = 20.0  # minutes per +100 % unplanned volume

    # weather and traffic
    wet_day_prob: float = 0.28
    rain_shape: float = 0.75
    rain_scale: float = 4.5
    severe_mm: float = 20.0  # the conditions table's severe-weather flag
    heavy_rain_mm: float = 11.0  # a labelled natural disruption: region late rate up ~7 pts or more
    traffic_per_mm: float = 0.004
    traffic_noise_sd: float = 0.015

    # incidents at magnitude 1.0
    shortage_no_show: float = 0.40
    storm_precip_mm: float = 25.0
    outage_late: float = 0.60
    surge_volume: float = 0.55
    dispatch_delay_min: float = 35.0
    traffic_jump: float = 0.65

    # natural events (probability per store-day or region-day)
    natural_crunch_prob: float = 0.0015
    natural_spike_prob: float = 0.001
    natural_jam_prob: float = 0.002
    natural_picking_prob: float = 0.0007
    natural_min_effect: float = 0.07  # emergent disruptions this costly are labelled


SUITE_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "description",
        "world",
        "incidents",
        "cases",
        "gate",
        "tags",
        "thresholds",
        "today",
        "source",
        "sha256",
    }
)
"""Top-level keys of an eval suite (``evals.suite.Suite``): an incidents file may be one."""


def load_incident_specs(path: str | Path) -> list[IncidentSpec]:
    """Read incident entries from YAML: a list, or a mapping with an ``incidents`` list.

    Raises:
        ValueError: naming the file, the entry and what is wrong with it.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"incidents file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"incidents file {path} is not valid YAML: {exc}") from None
    if isinstance(doc, dict):
        unknown = sorted(str(k) for k in doc if k not in SUITE_KEYS)
        if unknown:  # a typo ('incident:') would otherwise inject nothing, in silence
            raise ValueError(
                f"incidents file {path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                "give a list of incidents, or an 'incidents:' list (an eval suite's keys "
                "are accepted)"
            )
    entries = doc.get("incidents") if isinstance(doc, dict) else doc
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError(f"incidents file {path}: expected a list of incidents (or 'incidents:')")
    specs: list[IncidentSpec] = []
    errors: list[str] = []
    for i, entry in enumerate(entries):
        try:
            specs.append(IncidentSpec.model_validate(entry))
        except ValidationError as exc:
            msgs = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            errors.append(f"  incident #{i + 1} {entry!r}: {msgs}")
    if errors:
        raise ValueError(f"incidents file {path} has invalid entries:\n" + "\n".join(errors))
    return specs
