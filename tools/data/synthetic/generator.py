"""Generate a synthetic last-mile world into DuckDB, with its ground truth.

``generate_world`` draws the world (:mod:`.scm`), applies injected incidents and natural
events, computes each one's true effect by counterfactual simulation, and writes every
contract table in one atomic load; the ground truth (``incidents``) goes to a file of its own
beside the database (:mod:`tools.data.truth_file`), which no agent tool opens. Deliveries
are written in chunks of days, so memory stays bounded whatever the world's size.

The world's data-shape options only change what is written: store-days that do not operate
or were lost in a gap have no rows, and a feed may be flat or absent (:mod:`.coverage`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tools.data.store import AtomicLoad, LoadReport
from tools.data.synthetic.config import CAUSES, IncidentSpec, ScmParams, WorldConfig
from tools.data.synthetic.deliveries import (
    DRIVER_NOTES,
    FAILURE_REASONS,
    STATUS_CODES,
    day_deliveries,
    drawn_rows,
)
from tools.data.synthetic.scm import (
    CARRIER_ORDER,
    Exogenous,
    Shock,
    StoreDays,
    draw_exogenous,
    injected_shocks,
    simulate,
)
from tools.data.synthetic.truth import effect_of, emergent_crunches, number_natural
from tools.data.validate import sql_literal

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
ROWS_PER_CHUNK = 1_000_000
INCIDENT_COLUMNS = [
    "incident_id",
    "kind",
    "store_id",
    "region",
    "start_date",
    "end_date",
    "kpi",
    "true_cause",
    "cause_variable",
    "magnitude",
    "true_effect",
    "late_excess",
    "affected_store_days",
    "injected",
    "description",
]


@dataclass
class World:
    """A drawn world: exogenous draws, all shocks, and the simulated store-days."""

    exo: Exogenous
    shocks: list[Shock]
    store_days: StoreDays

    @property
    def config(self) -> WorldConfig:
        """The world's configuration."""
        return self.exo.config


def build_world(
    config: WorldConfig,
    incidents: list[IncidentSpec] | None = None,
    params: ScmParams | None = None,
) -> World:
    """Draw a world and simulate its store-days (no deliveries yet, no I/O).

    Raises:
        ValueError: if an incident does not fit the world (unknown store, days outside).
    """
    exo = draw_exogenous(config, params)
    shocks = injected_shocks(exo, list(incidents or [])) + exo.natural
    store_days = simulate(exo, shocks)
    if config.natural_events:
        shocks += emergent_crunches(exo, shocks, store_days)
    number_natural(shocks)
    return World(exo=exo, shocks=shocks, store_days=store_days)


def stores_frame(world: World) -> pd.DataFrame:
    """Build the ``stores`` table."""
    exo = world.exo
    return pd.DataFrame(
        {
            "store_id": world.config.store_ids,
            "name": exo.store_names,
            "region": [world.config.region_ids[r] for r in exo.store_region],
            "market": exo.store_markets,
            "lat": np.round(exo.lat, 5),
            "lon": np.round(exo.lon, 5),
        }
    )


def staffing_frame(world: World) -> pd.DataFrame:
    """Build the ``staffing`` table: scheduled versus present drivers per operating store-day.

    A gap loses deliveries only: the roster of those days is still there.
    """
    exo, sd = world.exo, world.store_days
    n_d, n_s = exo.n_days, exo.n_stores
    rows = exo.coverage.operating.reshape(-1)
    return pd.DataFrame(
        {
            "date": np.repeat(np.array(exo.dates, dtype="datetime64[D]"), n_s)[rows],
            "store_id": np.tile(np.array(world.config.store_ids), n_d)[rows],
            "scheduled_drivers": sd.scheduled.reshape(-1)[rows],
            "present_drivers": sd.present.reshape(-1)[rows],
        }
    )


def conditions_frame(world: World) -> pd.DataFrame:
    """Build the ``conditions`` table: weather and traffic per region-day, every day.

    With ``weather_feed: flat`` every row says no rain, typical traffic and no severe
    weather, with a temperature free of the rain's cooling: a feed that carries no
    information about the world's real weather and traffic (which still act on it).
    """
    exo, sd = world.exo, world.store_days
    n_d, n_r = exo.n_days, exo.n_regions
    precip = sd.region_precip.reshape(-1)
    frame = pd.DataFrame(
        {
            "date": np.repeat(np.array(exo.dates, dtype="datetime64[D]"), n_r),
            "region": np.tile(np.array(world.config.region_ids), n_d),
            "precip_mm": np.round(precip, 2),
            "temp_c": np.round((exo.temp - 0.15 * sd.region_precip).reshape(-1), 1),
            "severe_weather": precip >= exo.params.severe_mm,
            "traffic_index": np.round(sd.region_traffic.reshape(-1), 3),
        }
    )
    if world.config.weather_feed == "flat":
        frame["precip_mm"] = 0.0
        frame["temp_c"] = np.round(exo.temp.reshape(-1), 1)
        frame["severe_weather"] = False
        frame["traffic_index"] = 1.0
    return frame


def calendar_frame(world: World) -> pd.DataFrame:
    """Build the ``calendar`` table: chain promotions, store promotions and holidays."""
    exo = world.exo
    rows: list[tuple[object, str | None, str, str]] = []
    for day in np.nonzero(exo.chain_promo)[0]:
        rows.append((exo.dates[day], None, "promo", "Chain-wide promotion"))
    # A store runs promotions only on days it operates.
    for day, store in zip(*np.nonzero(exo.store_promo & exo.coverage.operating), strict=True):
        rows.append((exo.dates[day], world.config.store_ids[store], "promo", "Store promotion"))
    for index, name in exo.holiday_names.items():
        rows.append((exo.dates[index], None, "holiday", name))
    frame = pd.DataFrame(rows, columns=["date", "store_id", "kind", "name"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.sort_values(["date", "kind", "store_id"], na_position="first", ignore_index=True)


def incidents_frame(world: World) -> pd.DataFrame:
    """Build the ground truth: every injected incident and natural event, with its effect."""
    exo, cfg = world.exo, world.config
    rows = []
    for shock in world.shocks:
        if not shock.labelled:
            continue
        rise, excess, cells = effect_of(exo, world.shocks, shock, world.store_days)
        cause, variable = CAUSES[shock.kind]
        if shock.store is not None:
            target = cfg.store_ids[shock.store]
        else:
            assert shock.region is not None
            target = cfg.region_ids[shock.region]
        what = shock.kind.replace("_", " ")
        origin = "injected" if shock.injected else "natural"
        if shock.emergent:
            what += " (a cluster of everyday no-shows)"
        rows.append(
            {
                "incident_id": shock.shock_id,
                "kind": shock.kind,
                "store_id": cfg.store_ids[shock.store] if shock.store is not None else None,
                "region": cfg.region_ids[shock.region] if shock.region is not None else None,
                "start_date": exo.dates[shock.first_day],
                "end_date": exo.dates[shock.first_day + shock.days - 1],
                "kpi": "late_rate",
                "true_cause": cause,
                "cause_variable": variable,
                "magnitude": float(shock.magnitude),
                "true_effect": round(rise, 5),
                "late_excess": round(excess, 2),
                "affected_store_days": cells,
                "injected": shock.injected,
                "description": f"{origin} {what} at {target} for {shock.days} day(s), "
                f"magnitude {shock.magnitude:g}: late rate +{100 * rise:.1f} pts",
            }
        )
    frame = pd.DataFrame(rows, columns=INCIDENT_COLUMNS)
    for col in ("start_date", "end_date"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


def delivery_chunks(
    world: World, rows_per_chunk: int = ROWS_PER_CHUNK, written: range | None = None
) -> Iterator[tuple[range, pd.DataFrame]]:
    """Yield (days, deliveries with integer codes) in chunks of about ``rows_per_chunk`` rows.

    ``written``: the first days only (default: every day of the world).
    """
    exo, sd = world.exo, world.store_days
    n_days = len(written) if written is not None else exo.n_days
    per_day = max(1.0, float(sd.orders.sum(axis=1).mean()))
    days_per_chunk = max(1, int(rows_per_chunk // per_day))
    seq = 1
    for start in range(0, n_days, days_per_chunk):
        days = range(start, min(n_days, start + days_per_chunk))
        frames = []
        for d in days:
            frame = day_deliveries(exo, sd, d, seq)
            seq += len(frame)
            # Drawn and then dropped, so the other store-days keep the complete world's rows
            # (and their ids): a store not open, a closed weekday, a day lost in a gap.
            shown = exo.coverage.observed[d]
            if not shown.all():
                frame = frame[shown[frame["store_idx"].to_numpy()]]
            frames.append(frame)
        yield days, pd.concat(frames, ignore_index=True)


def _list_literal(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def deliveries_sql(chunk: str, id_width: int) -> str:
    """Return SQL turning a registered chunk of integer codes into ``deliveries`` rows."""
    return f"""
    SELECT
      printf('D%0{id_width}d', c.seq) AS delivery_id,
      printf('O%0{id_width}d', c.seq) AS order_id,
      m.store_id,
      m.store_id || '-Z' || CAST(c.zone + 1 AS VARCHAR) AS zone_id,
      CASE WHEN c.driver < 0 THEN NULL
           WHEN c.carrier_code = 2 THEN printf('C%05d', c.driver)
           ELSE m.store_id || printf('-D%02d', c.driver + 1) END AS driver_id,
      {_list_literal(CARRIER_ORDER)}[c.carrier_code + 1] AS carrier,
      c.order_ts, c.promised_start, c.promised_end, c.dispatched_ts, c.delivered_ts,
      {_list_literal(STATUS_CODES)}[c.status_code + 1] AS status,
      CASE WHEN c.reason_code >= 0 THEN {_list_literal(FAILURE_REASONS)}[c.reason_code + 1] END
        AS failure_reason,
      c.distance_km,
      c.items,
      CASE WHEN c.note_code >= 0 THEN {_list_literal(DRIVER_NOTES)}[c.note_code + 1] END
        AS driver_note
    FROM {chunk} AS c
    JOIN _store_map AS m ON m.store_idx = c.store_idx
    ORDER BY c.seq
    """


def generate_world(
    db: str | Path,
    config: WorldConfig,
    incidents: list[IncidentSpec] | None = None,
    *,
    params: ScmParams | None = None,
    progress: bool = True,
    rows_per_chunk: int = ROWS_PER_CHUNK,
    memory_limit: str | None = "2GB",
    through: date | None = None,
) -> LoadReport:
    """Generate a world into ``db``, replacing its contract tables and ground truth atomically.

    With ``through``, only the days up to it are written (deliveries, rosters, conditions;
    the calendar's promotions and holidays are planned ahead, so all of it):
    :func:`tools.data.synthetic.continuation.advance_world` appends the next days, with the
    actions approved meanwhile applied.

    Args:
        db: DuckDB file (created if missing).
        config: size, seed and start date of the world.
        incidents: incidents to inject (their ground truth is written to the truth file,
            :func:`tools.data.truth_file.truth_path`).
        params: structural-model constants (defaults: :class:`ScmParams`).
        progress: show a progress bar while deliveries are written.
        rows_per_chunk: deliveries per write (bounds memory).
        memory_limit: DuckDB's memory cap during the load (it spills to disk beyond it).
        through: last day written (default: the world's last day).

    Returns:
        What the load wrote.

    Raises:
        ValueError: if an incident does not fit the world, or ``through`` is outside it;
            nothing is written.
    """
    end = config.day(config.days - 1)
    if through is not None and not config.start_date <= through <= end:
        raise ValueError(f"through {through} is outside the world ({config.start_date}..{end})")
    written = range((through - config.start_date).days + 1 if through else config.days)
    world = build_world(config, incidents, params)
    sd = world.store_days
    expected_rows = int((sd.orders * (1 + world.exo.params.cancel_rate)).sum())
    id_width = max(9, len(str(expected_rows * 2)))
    logger.info(
        "world: %d stores x %d days, seed %d, %d injected incidents, %d natural events",
        config.stores,
        config.days,
        config.seed,
        sum(s.injected for s in world.shocks),
        sum(not s.injected for s in world.shocks),
    )
    with AtomicLoad(
        db,
        source=f"generate seed={config.seed}",
        mode="replace",
        assume_tz="UTC",
        memory_limit=memory_limit,
    ) as load:
        load.replace_tables(["stores", "deliveries", "staffing", "conditions", "calendar"])
        load.add_frame("stores", stores_frame(world), "generator:stores")
        last = pd.Timestamp(config.day(written[-1]))
        if config.staffing_feed != "none":
            staffing = staffing_frame(world)
            load.add_frame("staffing", staffing[staffing.date <= last], "generator:staffing")
        if config.weather_feed != "none":
            conditions = conditions_frame(world)
            load.add_frame(
                "conditions", conditions[conditions.date <= last], "generator:conditions"
            )
        load.add_frame("calendar", calendar_frame(world), "generator:calendar")
        specs = [i.model_dump(mode="json", exclude_none=True) for i in incidents or []]
        load.set_truth(incidents_frame(world), specs)
        store_map = pd.DataFrame(
            {"store_idx": np.arange(config.stores), "store_id": config.store_ids}
        )
        load.con.register("_store_map_frame", store_map)
        load.con.execute("CREATE TEMP TABLE _store_map AS SELECT * FROM _store_map_frame")
        with Progress(
            TextColumn("[bold]generating deliveries"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task("deliveries", total=len(written))
            for days, chunk in delivery_chunks(world, rows_per_chunk, written):
                load.con.register("_chunk", chunk)
                load.add_sql(
                    "deliveries",
                    deliveries_sql("_chunk", id_width),
                    f"generator:deliveries days {days.start}-{days.stop - 1}",
                )
                load.con.unregister("_chunk")
                bar.advance(task, len(days))
        load.con.execute("DROP TABLE _store_map")
        load.set_metadata("world", config.model_dump(mode="json"))
        load.set_metadata("scm_params", world.exo.params.model_dump(mode="json"))
        load.set_metadata("generator", {"version": GENERATOR_VERSION})
        # where a continued world picks up (advance_world): its last day, next delivery id
        load.set_metadata(
            "world_clock",
            {
                "through": config.day(written[-1]).isoformat(),
                "next_seq": 1 + drawn_rows(world.exo, sd, written),
                "id_width": id_width,
                "applied": [],
            },
        )
        return load.commit()
