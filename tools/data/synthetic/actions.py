"""What approved actions really do in a synthetic world: the exact truth of their outcomes.

A dispatched catalog action becomes :class:`~tools.data.synthetic.scm.Intervention` s on the
store-days it reaches, and the world is simulated again with them (noise and every shock
fixed), so the late deliveries an action avoided are known exactly rather than estimated.
Actions applied on the same day are attributed in dispatch order: each one is credited with
what it adds to those dispatched before it, as ``recommend_actions`` promises ("on top of").

Only the late deliveries *above normal* count as avoided (no action is credited for taking a
store below its normal, as no promise is), measured as the plan measures them: the late
rate's excess over the world without its shocks, times the day's own deliveries. An action's
realised figure is capped by the excess its store-days carry after the actions before it.

A world's ``action_efficacy`` scales an action's simulated effect (a share of it is carried
out: half the backup drivers turn up), so a world can under-deliver on purpose and the
outcome tracker must notice.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tools.data.backend import DuckDBBackend
from tools.data.synthetic.config import IncidentSpec, WorldConfig
from tools.data.synthetic.generator import World, build_world
from tools.data.synthetic.scm import Intervention, simulate
from tools.data.truth_file import TRUTH_KEY, TruthMissingError, read_truth

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


class AppliedAction(BaseModel):
    """A catalog action carried out on some stores on one day."""

    action_id: str
    day: date
    stores: list[str] = Field(min_length=1)
    value: float = Field(description="The lever's setting, in the catalog's unit.")


class RealisedOutcome(BaseModel):
    """What one applied action did, in late deliveries on its store-days."""

    avoided: float = Field(description="Late deliveries above normal it avoided (capped).")
    raw_avoided: float = Field(description="Late deliveries it avoided, normal or not.")
    excess: float = Field(description="Late deliveries above normal before it acted.")


def world_of(db: str | Path) -> World:
    """Rebuild the synthetic world a database was generated from.

    Its config is in the database's metadata, its incident specs in the truth file: only the
    world's own reaction to dispatched actions reads them here, never a diagnosis.

    Raises:
        TruthMissingError: the database has no (current) truth file.
        ValueError: the database was not generated (no world in its metadata).
    """
    backend = DuckDBBackend(db)
    meta = backend.metadata("world")
    if meta is None:
        raise ValueError(f"{db} is not a generated world (no 'world' metadata)")
    config = WorldConfig.model_validate(meta)
    _, specs = read_truth(db, backend.metadata(TRUTH_KEY))
    return build_world(config, [IncidentSpec.model_validate(i) for i in specs])


def synthetic_world(db: str | Path) -> World | None:
    """Return the world behind ``db`` if generated with its truth file, else None."""
    try:
        return world_of(db)
    except (TruthMissingError, ValueError):
        return None


def simulable(action_id: str) -> bool:
    """Whether the simulator knows what ``action_id`` does."""
    return action_id in ACTION_LEVERS


def interventions(world: World, action: AppliedAction) -> list[Intervention]:
    """Return the store-day interventions of one applied action.

    Raises:
        ValueError: an action the simulator cannot apply, a store or day outside the world.
    """
    cfg = world.config
    if action.action_id not in ACTION_LEVERS:
        raise ValueError(
            f"the simulator cannot apply {action.action_id!r} "
            f"(it knows {', '.join(sorted(ACTION_LEVERS))})"
        )
    index = {s: i for i, s in enumerate(cfg.store_ids)}
    unknown = [s for s in action.stores if s not in index]
    if unknown:
        raise ValueError(f"store(s) {', '.join(unknown)} are not in this world")
    d = (action.day - cfg.start_date).days
    if not 0 <= d < cfg.days:
        raise ValueError(f"{action.day} is outside the world ({cfg.start_date}, {cfg.days} days)")
    field = ACTION_LEVERS[action.action_id]
    value = round(action.value) if field == "extra_drivers" else action.value
    lever: dict[str, Any] = {field: value}
    return [Intervention(day=d, store=index[s], **lever) for s in action.stores]


def realised_outcomes(world: World, actions: list[AppliedAction]) -> list[RealisedOutcome]:
    """Simulate ``actions`` in dispatch order and return what each one realised.

    Actions of different days do not interact (each store-day is simulated on its own given
    the exogenous draws), so one simulation per action suffices.

    Args:
        world: the world, as built from its config and incidents.
        actions: applied actions, in the order they were dispatched.

    Returns:
        One outcome per action, in order.

    Raises:
        ValueError: an action the simulator cannot apply (see :func:`interventions`).
    """
    cfg = world.config
    index = {s: i for i, s in enumerate(cfg.store_ids)}
    p_normal = simulate(world.exo, []).p_store
    sd = world.store_days
    # (late probability, orders) with the actions so far: carried out fully, and at the
    # world's efficacy (what really happened)
    full = (sd.p_store, sd.orders.astype(np.float64))
    real = (sd.p_store.copy(), sd.orders.astype(np.float64))
    applied: list[Intervention] = []
    out = []
    for action in actions:
        applied += interventions(world, action)
        after = simulate(world.exo, world.shocks, applied)
        after_full = (after.p_store, after.orders.astype(np.float64))
        d = (action.day - cfg.start_date).days
        cells = [index[s] for s in action.stores]
        share = cfg.action_efficacy.get(action.action_id, 1.0)
        # an action carried out in part moves its store-days that share of the way
        p_b, o_b = real[0][d, cells], real[1][d, cells]
        p_a = p_b - share * (full[0][d, cells] - after_full[0][d, cells])
        o_a = o_b - share * (full[1][d, cells] - after_full[1][d, cells])
        normal = p_normal[d, cells]
        # late deliveries above normal, as the plan measures them: the late rate's excess
        # over the day's own deliveries (moving orders to another day avoids only the
        # lateness above their normal rate)
        excess = np.maximum((p_b - normal) * o_b, 0.0)
        left = np.maximum((p_a - normal) * o_a, 0.0)
        out.append(
            RealisedOutcome(
                avoided=float((excess - left).sum()),
                raw_avoided=float((p_b * o_b - p_a * o_a).sum()),
                excess=float(excess.sum()),
            )
        )
        full = after_full
        real[0][d, cells], real[1][d, cells] = p_a, o_a
    return out
