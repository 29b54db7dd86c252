"""Ground truth of synthetic worlds, and matching tool outputs against it.

An *alarm* (a store-day or region-day anomaly) is correct when it touches a labelled event:
an injected incident or a natural disruption the generator labelled (flagging a genuine
natural disruption is not a false alarm). An injected incident is detected when an alarm
touches one of its store-days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from tools.data.backend import DuckDBBackend
from tools.data.synthetic import IncidentSpec, World, WorldConfig, build_world
from tools.data.synthetic.scm import Intervention, simulate
from tools.data.truth_file import TRUTH_KEY, read_truth
from tools.scan_anomalies import Anomaly


@dataclass
class Truth:
    """Incidents of a world and the store-days each one touches."""

    incidents: pd.DataFrame  # the incidents table
    cells: pd.DataFrame  # incident_id, injected, kind, store_id, region, date
    stores: pd.DataFrame  # store_id, region

    @property
    def injected(self) -> pd.DataFrame:
        """Injected incidents only."""
        return self.incidents[self.incidents.injected]


def load_truth(db: Path) -> Truth:
    """Read the ground truth of a synthetic world (from its truth file, never the database).

    Raises:
        TruthMissingError: the database has no (current) truth file.
    """
    backend = DuckDBBackend(db)
    incidents, _ = read_truth(db, backend.metadata(TRUTH_KEY))
    stores = backend.query("SELECT store_id, region FROM stores")
    rows = []
    for inc in incidents.itertuples():
        members = (
            [inc.store_id]
            if inc.store_id
            else stores[stores.region == inc.region].store_id.tolist()
        )
        region = inc.region or stores.loc[stores.store_id == inc.store_id, "region"].iloc[0]
        for day in pd.date_range(
            pd.Timestamp(str(inc.start_date)), pd.Timestamp(str(inc.end_date))
        ):
            rows += [
                (inc.incident_id, bool(inc.injected), inc.kind, s, region, day.date())
                for s in members
            ]
    cells = pd.DataFrame(
        rows, columns=["incident_id", "injected", "kind", "store_id", "region", "date"]
    )
    return Truth(incidents=incidents, cells=cells, stores=stores)


def incidents_touched(alarm: Anomaly, truth: Truth) -> set[str]:
    """Incident ids (injected or natural) whose store-days the alarm touches.

    A store alarm touches the events of its store that day; a regional alarm touches the
    events of its member stores and the regional events of its region that day; an alarm on
    the whole chain touches every event of the day. An alarm over a window of days touches
    the events of any of its days.
    """
    first = alarm.window_start or alarm.date
    day = truth.cells[(truth.cells.date >= first) & (truth.cells.date <= alarm.date)]
    if alarm.level == "chain":
        return set(day.incident_id)
    if alarm.level == "store":
        return set(day[day.store_id == alarm.target].incident_id)
    regional = set(truth.incidents[truth.incidents.region == alarm.region].incident_id)
    in_region = day[day.region == alarm.region]
    hit = in_region[in_region.store_id.isin(alarm.stores) | in_region.incident_id.isin(regional)]
    return set(hit.incident_id)


@dataclass
class DetectionScore:
    """Detection quality of a scan over one world."""

    alarms: int
    correct_alarms: int
    detected: dict[str, bool]  # injected incident id -> detected
    kinds: dict[str, str]  # injected incident id -> kind

    @property
    def precision(self) -> float:
        """Share of alarms that touch a labelled event (1.0 when there are no alarms)."""
        return self.correct_alarms / self.alarms if self.alarms else 1.0

    @property
    def unexplained(self) -> int:
        """Alarms that touch no labelled event."""
        return self.alarms - self.correct_alarms


def score_detection(alarms: list[Anomaly], truth: Truth) -> DetectionScore:
    """Match alarms with the ground truth."""
    touched = [incidents_touched(a, truth) for a in alarms]
    hits = set().union(*touched) if touched else set()
    injected = truth.injected
    return DetectionScore(
        alarms=len(alarms),
        correct_alarms=sum(bool(t) for t in touched),
        detected={i: i in hits for i in injected.incident_id},
        kinds=dict(zip(injected.incident_id, injected.kind, strict=True)),
    )


# --- simulated counterfactuals of actions --------------------------------------------------

ACTION_LEVERS: dict[str, str] = {
    "call_backup_drivers": "extra_drivers",
    "cap_delivery_slots": "defer_share",
    "escalate_store_picking": "dispatch_cut_min",
    "rebalance_dsp_volume": "dsp_shift",
    "dynamic_rerouting": "traffic_cut",
    "weather_protocol": "window_extension_min",
}
"""Catalog action -> the simulator's intervention field it corresponds to (an action not
here cannot be simulated). Ground truth of what an action does in the simulated world,
written here rather than read from the catalog's lever kind, which is what is being judged;
the ids are the catalog's (``tests/unit/tools/test_vocabulary.py``)."""


def world_of(db: Path) -> World:
    """Rebuild the synthetic world a database was generated from.

    Its config is in the database's metadata, its incident specs in the truth file.
    """
    backend = DuckDBBackend(db)
    config = WorldConfig.model_validate(backend.metadata("world"))
    _, specs = read_truth(db, backend.metadata(TRUTH_KEY))
    return build_world(config, [IncidentSpec.model_validate(i) for i in specs])


def simulated_avoided(
    world: World, action_id: str, value: float, day: date, stores: list[str]
) -> float:
    """Return the late deliveries an action avoids in the world simulated with it applied."""
    cfg = world.config
    index = {s: i for i, s in enumerate(cfg.store_ids)}
    d = (day - cfg.start_date).days
    field = ACTION_LEVERS[action_id]
    lever: dict[str, Any] = {field: round(value) if field == "extra_drivers" else value}
    interventions = [Intervention(day=d, store=index[s], **lever) for s in stores]
    after = simulate(world.exo, world.shocks, interventions)
    before = world.store_days.expected_late()
    return float(sum(before[d, index[s]] - after.expected_late()[d, index[s]] for s in stores))
