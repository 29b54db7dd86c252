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

import pandas as pd

from tools.data.backend import DuckDBBackend
from tools.data.synthetic import World
from tools.data.synthetic.actions import AppliedAction, realised_outcomes
from tools.data.synthetic.actions import world_of as world_of  # the evals' way to rebuild
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


def simulated_avoided(
    world: World, action_id: str, value: float, day: date, stores: list[str]
) -> float:
    """Return the late deliveries an action avoids in the world simulated with it applied."""
    applied = AppliedAction(action_id=action_id, day=day, stores=stores, value=value)
    return realised_outcomes(world, [applied])[0].raw_avoided
