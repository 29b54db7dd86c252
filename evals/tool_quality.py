"""Measure the analytics tools against ground truth over several seeded synthetic worlds.

Usage::

    python -m evals.tool_quality --seeds 5 --out out/quality

Worlds (60 stores x 120 days, 4 regions, per seed): incidents of every kind at magnitude
1.0 and at 0.7, a world with no injected incident (false alarms are measured there, since
incidents inflate the noise estimates of the worlds they are in), and a confounded world.
For each world it runs the real tools and scores:

* detection: incident recall (overall, per kind), event precision (an alarm touching an
  injected incident or a labelled natural event is correct), unexplained alarms per 100
  store-weeks on quiet worlds;
* diagnosis: true cause ranked first (and in the top 3) for detected incidents, against the
  correlation and largest-deviation baselines;
* actions: the top action treats the true cause; its expected impact against the impact in
  the world simulated with the action applied;
* forecast: Prophet against seasonal-naive in a rolling backtest (orders and late rate);
* real data: LaLonde effect estimate, NAB anomaly windows.

Writes ``report.json`` and ``report.md``; exits 1 when an acceptance threshold is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from evals.groundtruth import (
    incidents_touched,
    load_truth,
    score_detection,
    simulated_avoided,
    world_of,
)
from evals.scenarios import confounded_incidents, mixed_incidents
from tools.analytics.cells import load_store_days
from tools.analytics.scan import scan_cells
from tools.analytics.scope import load_catalog, resolve_scope
from tools.core.context import ToolContext
from tools.data.synthetic import CAUSES, WorldConfig, generate_world
from tools.data.synthetic.generator import GENERATOR_VERSION
from tools.data.truth_file import truth_path
from tools.diagnose import DiagnoseInput, diagnose
from tools.forecast import backtest, kpi_series
from tools.recommend_actions import RecommendActionsInput, recommend_actions

logger = logging.getLogger("evals.tool_quality")
FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"

THRESHOLDS = {
    "detection_recall_m1": 0.95,
    "event_precision_m1": 0.85,
    "unexplained_per_100_store_weeks_max": 2.0,
    "diagnosis_top1": 0.90,
    "diagnosis_top1_confounded": 0.90,
    "correlation_gap_confounded": 0.30,
    "action_treats_cause": 0.90,
    "impact_within_30pct": 0.80,
}


@dataclass
class Collected:
    """Per-incident rows of every stage."""

    detection: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    quiet: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    forecast: list[dict[str, Any]] = field(default_factory=list)


def _world(root: Path, name: str, config: WorldConfig, specs: list[Any]) -> Path:
    """Generate a world once (cached by name, config, incidents and generator version)."""
    key = json.dumps(
        [
            config.model_dump(mode="json"),
            [s.model_dump(mode="json") for s in specs],
            GENERATOR_VERSION,
        ]
    )
    path = root / f"{name}.duckdb"
    stamp = root / f"{name}.key"
    fresh = path.exists() and truth_path(path).exists() and stamp.exists()
    if not (fresh and stamp.read_text() == key):
        path.unlink(missing_ok=True)
        generate_world(path, config, specs, progress=False)
        stamp.write_text(key)
    return path


def evaluate_world(path: Path, label: str, out: Collected, *, diagnose_incidents: bool) -> None:
    """Scan a world, score detection, and diagnose and act on every detected incident."""
    ctx = ToolContext.for_duckdb(path)
    backend = ctx.backend
    catalog = load_catalog(backend)
    frame = load_store_days(backend, as_of=catalog.last_day, start=catalog.first_day, medians=False)
    truth = load_truth(path)
    first = catalog.first_day + timedelta(days=21)
    last = catalog.last_day
    alarms = scan_cells(frame, window=(first, last)).anomalies
    score = score_detection(alarms, truth)
    store_weeks = (
        frame[frame.date >= pd.Timestamp(first)].store_id.nunique() * ((last - first).days + 1) / 7
    )
    out.alarms.append(
        {
            "world": label,
            "alarms": score.alarms,
            "correct": score.correct_alarms,
            "store_weeks": store_weeks,
        }
    )
    injected = truth.injected.set_index("incident_id")
    for iid, hit in score.detected.items():
        out.detection.append(
            {
                "world": label,
                "incident": iid,
                "kind": score.kinds[iid],
                "magnitude": float(injected.loc[iid, "magnitude"]),
                "detected": hit,
            }
        )
    if not diagnose_incidents:
        return
    world = world_of(path)
    done: set[str] = set()
    # the most specific alarm first: a store alarm says more than its region's
    for alarm in sorted(alarms, key=lambda a: (a.level != "store", -a.score)):
        touched = incidents_touched(alarm, truth)
        todo = [i for i in touched if i in injected.index and i not in done]
        if not todo:
            continue
        started = time.perf_counter()
        diagnosis = diagnose(
            ctx,
            DiagnoseInput(target=alarm.target, day=alarm.date, window_days=alarm.grain_days),
        )
        seconds = time.perf_counter() - started
        ranked = [c.cause for c in diagnosis.causes]
        true_causes = {
            CAUSES[str(truth.incidents.set_index("incident_id").loc[i, "kind"])][0] for i in touched
        }
        causes = [h.cause for h in diagnosis.hypotheses] or ranked[:1]
        recommended = recommend_actions(
            ctx,
            RecommendActionsInput(
                target=alarm.target,
                day=alarm.date,
                window_days=alarm.grain_days,
                causes=causes,
            ),
        )
        actions = recommended.actions
        top = actions[0] if actions else None
        truth_avoided = None
        if top is not None:
            value = next(iter(top.parameters.values()))
            # the promised quantity: late deliveries above normal avoided (capped by the
            # excess), against the simulated counterfactual capped the same way
            simulated = simulated_avoided(world, top.action_id, value, alarm.date, top.stores)
            truth_avoided = min(simulated, top.cap)
        for iid in todo:
            done.add(iid)
            cause = CAUSES[str(injected.loc[iid, "kind"])][0]
            k = max(1, len(true_causes))
            out.diagnosis.append(
                {
                    "world": label,
                    "incident": iid,
                    "kind": injected.loc[iid, "kind"],
                    "alarm": alarm.target,
                    "day": str(alarm.date),
                    "true_cause": cause,
                    "top": ranked[0],
                    "top1": ranked[0] == cause or cause in ranked[:k] and k > 1,
                    "top3": cause in ranked[:3],
                    "correlation_top1": diagnosis.correlation_ranking[0] == cause,
                    "deviation_top1": diagnosis.deviation_ranking[0] == cause,
                    "confidence": diagnosis.confidence,
                    "seconds": round(seconds, 2),
                }
            )
            if top is not None and truth_avoided is not None:
                out.actions.append(
                    {
                        "world": label,
                        "incident": iid,
                        "kind": injected.loc[iid, "kind"],
                        "action": top.action_id,
                        "treats_cause": cause in top.treats,
                        "estimated": top.expected_avoided,
                        "ci": list(top.avoided_ci),
                        "simulated": round(truth_avoided, 1),
                        "relative_error": (top.expected_avoided - truth_avoided) / truth_avoided
                        if truth_avoided
                        else None,
                    }
                )


def evaluate_forecast(path: Path, label: str, out: Collected) -> None:
    """Backtest Prophet against seasonal-naive for orders and late rate at three scopes."""
    ctx = ToolContext.for_duckdb(path)
    catalog = load_catalog(ctx.backend)
    for level, ids in (
        ("all", []),
        ("region", [catalog.regions[0]]),
        ("store", [catalog.stores.store_id.iloc[4]]),
    ):
        scope = resolve_scope(catalog, level, ids)  # type: ignore[arg-type]
        for kpi in ("orders", "late_rate"):
            series = kpi_series(ctx, scope, kpi, catalog.first_day, catalog.last_day)
            metrics = backtest(series, horizon=7, origins=6, rate=kpi == "late_rate")
            out.forecast.append(
                {
                    "world": label,
                    "scope": level,
                    "kpi": kpi,
                    **{k: round(v, 4) for k, v in metrics.items()},
                }
            )


def real_data() -> dict[str, Any]:
    """LaLonde effect estimate and NAB window precision/recall (fixtures shipped in tests/)."""
    from tools.causal.effects import estimate_effect

    nsw = pd.read_csv(FIXTURES / "lalonde" / "nsw_mixtape.csv")
    cps = pd.read_csv(FIXTURES / "lalonde" / "cps_mixtape.csv")
    data = pd.concat([nsw[nsw.treat == 1], cps.assign(treat=0)], ignore_index=True)
    covariates = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
    est = estimate_effect(data, "treat", "re78", covariates)
    experiment = float(nsw.groupby("treat").re78.mean().diff().iloc[-1])
    nab = nab_scores()
    return {
        "lalonde": {
            "naive": round(est.naive),
            "estimate": round(est.effect),
            "ci": [round(v) for v in est.ci],
            "experimental": round(experiment),
            "rows_used": est.n,
            "dropped_for_overlap": est.n_dropped_for_overlap,
            "refutations": {r.name: r.passed for r in est.refutations},
        },
        "nab": nab,
    }


def nab_scores() -> dict[str, Any]:
    """Flag NAB points with the generic panel scan; precision/recall against the windows."""
    from tools.analytics.detect import scan_panel

    windows = json.loads((FIXTURES / "nab_sample" / "label_windows.json").read_text())
    out: dict[str, Any] = {}
    for name, spans in windows.items():
        series = pd.read_csv(FIXTURES / "nab_sample" / name, parse_dates=["timestamp"])
        series["entity"] = name
        scan = scan_panel(
            series,
            "entity",
            "timestamp",
            ["value"],
            baseline="rolling",
            window=288,
            directions={"value": 0},
            threshold=5.0,
            adverse_min_z=5.0,
            extreme_z=1e9,
        )
        flagged = scan.rows[scan.rows.flagged]
        inside = pd.Series(False, index=flagged.index)
        hit = []
        for start, end in spans:
            s, e = pd.Timestamp(start), pd.Timestamp(end)
            in_win = flagged.timestamp.between(s, e)
            inside |= in_win
            hit.append(bool(in_win.any()))
        out[name] = {
            "flags": len(flagged),
            "flags_inside": int(inside.sum()),
            "precision": round(float(inside.mean()), 3) if len(flagged) else None,
            "windows": len(spans),
            "windows_detected": sum(hit),
        }
    return out


def summarise(c: Collected, extra: dict[str, Any]) -> dict[str, Any]:
    """Aggregate the rows into the report's metrics."""
    det = pd.DataFrame(c.detection)
    alarms = pd.DataFrame(c.alarms)
    diag = pd.DataFrame(c.diagnosis)
    act = pd.DataFrame(c.actions)
    fc = pd.DataFrame(c.forecast)

    def rec(df: pd.DataFrame) -> dict[str, Any]:
        return {
            "recall": round(float(df.detected.mean()), 3),
            "n": len(df),
            "per_kind": {
                k: round(float(v), 3) for k, v in df.groupby("kind").detected.mean().items()
            },
        }

    m1, m07 = det[det.world.str.contains("m1.0")], det[det.world.str.contains("m0.7")]
    al_m1 = alarms[alarms.world.str.contains("m1.0")]
    al_m07 = alarms[alarms.world.str.contains("m0.7")]
    quiet = alarms[alarms.world.str.startswith("quiet")]
    mixed = diag[~diag.world.str.startswith("confounded")]
    conf = diag[diag.world.str.startswith("confounded")]

    def diag_stats(df: pd.DataFrame) -> dict[str, Any]:
        return {
            "n": len(df),
            "top1": round(float(df.top1.mean()), 3),
            "top3": round(float(df.top3.mean()), 3),
            "correlation_top1": round(float(df.correlation_top1.mean()), 3),
            "deviation_top1": round(float(df.deviation_top1.mean()), 3),
            "per_kind": {k: round(float(v), 3) for k, v in df.groupby("kind").top1.mean().items()},
            "seconds_per_diagnosis": round(float(df.seconds.mean()), 2),
        }

    within = act.relative_error.abs() <= 0.30
    fc_mean = (
        fc.groupby("kpi")[["prophet_mase", "naive_mase", "prophet_mape", "naive_mape"]]
        .mean()
        .round(4)
    )
    return {
        "detection": {
            "magnitude_1.0": {
                **rec(m1),
                "event_precision": round(
                    float(al_m1.correct.sum() / max(1, al_m1.alarms.sum())), 3
                ),
                "alarms": int(al_m1.alarms.sum()),
            },
            "magnitude_0.7": {
                **rec(m07),
                "event_precision": round(
                    float(al_m07.correct.sum() / max(1, al_m07.alarms.sum())), 3
                ),
            },
            "quiet": {
                "alarms": int(quiet.alarms.sum()),
                "unexplained": int((quiet.alarms - quiet.correct).sum()),
                "store_weeks": round(float(quiet.store_weeks.sum()), 1),
                "unexplained_per_100_store_weeks": round(
                    float((quiet.alarms - quiet.correct).sum() / quiet.store_weeks.sum() * 100), 2
                ),
            },
        },
        "diagnosis": {"mixed": diag_stats(mixed), "confounded": diag_stats(conf)},
        "actions": {
            "n": len(act),
            "top_treats_cause": round(float(act.treats_cause.mean()), 3),
            "impact_within_30pct": round(float(within.mean()), 3),
            "median_abs_relative_error": round(float(act.relative_error.abs().median()), 3),
            "per_action": {k: int(v) for k, v in act.action.value_counts().items()},
        },
        "forecast": {k: {m: float(v) for m, v in row.items()} for k, row in fc_mean.iterrows()},
        **extra,
    }


def check(report: dict[str, Any]) -> list[str]:
    """List the acceptance thresholds the report misses."""
    t = THRESHOLDS
    d = report["detection"]
    g = report["diagnosis"]
    fails = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            fails.append(what)

    need(
        d["magnitude_1.0"]["recall"] >= t["detection_recall_m1"],
        f"detection recall {d['magnitude_1.0']['recall']} < {t['detection_recall_m1']}",
    )
    need(
        d["magnitude_1.0"]["event_precision"] >= t["event_precision_m1"],
        f"event precision {d['magnitude_1.0']['event_precision']} < {t['event_precision_m1']}",
    )
    need(
        d["quiet"]["unexplained_per_100_store_weeks"] <= t["unexplained_per_100_store_weeks_max"],
        "too many unexplained alarms on quiet worlds",
    )
    need(
        g["mixed"]["top1"] >= t["diagnosis_top1"],
        f"diagnosis top-1 {g['mixed']['top1']} < {t['diagnosis_top1']}",
    )
    need(
        g["confounded"]["top1"] >= t["diagnosis_top1_confounded"],
        f"confounded top-1 {g['confounded']['top1']}",
    )
    need(
        g["confounded"]["top1"] - g["confounded"]["correlation_top1"]
        >= t["correlation_gap_confounded"],
        "correlation baseline not 30 points worse",
    )
    need(
        report["actions"]["top_treats_cause"] >= t["action_treats_cause"],
        "top action does not treat the cause often enough",
    )
    need(
        report["actions"]["impact_within_30pct"] >= t["impact_within_30pct"],
        "impact estimates too far from the simulated counterfactual",
    )
    for kpi, m in report["forecast"].items():
        need(m["prophet_mase"] < m["naive_mase"], f"forecast of {kpi} does not beat seasonal-naive")
    lal = report["lalonde"]
    need(0 <= lal["estimate"] <= 3000, f"LaLonde estimate {lal['estimate']} outside [0, 3000]")
    return fails


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(report: dict[str, Any], fails: list[str]) -> str:
    """Render the report as Markdown."""
    d, g, a = report["detection"], report["diagnosis"], report["actions"]
    m1, m07, quiet = d["magnitude_1.0"], d["magnitude_0.7"], d["quiet"]
    world = report["world"]
    lines = [
        "# Tool quality on seeded synthetic worlds",
        "",
        f"Seeds: {report['seeds']}; worlds of {world['stores']} stores x {world['days']} days.",
        "",
        "## Detection (scan_anomalies)",
        "",
        _row("", "recall", "event precision", "per kind"),
        _row("---", "---", "---", "---"),
        _row(
            "magnitude 1.0", f"{m1['recall']} (n={m1['n']})", m1["event_precision"], m1["per_kind"]
        ),
        _row(
            "magnitude 0.7",
            f"{m07['recall']} (n={m07['n']})",
            m07["event_precision"],
            m07["per_kind"],
        ),
        "",
        f"Quiet worlds: {quiet['unexplained']} unexplained alarms in {quiet['store_weeks']} "
        f"store-weeks = **{quiet['unexplained_per_100_store_weeks']} per 100 store-weeks**.",
        "",
        "## Diagnosis (diagnose)",
        "",
        _row(
            "incidents",
            "n",
            "causal top-1",
            "top-3",
            "correlation top-1",
            "largest-deviation top-1",
        ),
        _row("---", "---", "---", "---", "---", "---"),
    ]
    for name in ("mixed", "confounded"):
        s = g[name]
        lines.append(
            _row(
                name,
                s["n"],
                f"**{s['top1']}**",
                s["top3"],
                s["correlation_top1"],
                s["deviation_top1"],
            )
        )
    lines += [
        "",
        f"Per kind (mixed): {g['mixed']['per_kind']}.",
        f"Per kind (confounded): {g['confounded']['per_kind']}.",
        "",
        "## Actions (recommend_actions)",
        "",
        f"Top action treats the true cause: **{a['top_treats_cause']}** (n={a['n']}). Expected "
        f"impact within +-30 % of the simulated counterfactual: **{a['impact_within_30pct']}** "
        f"(median |error| {a['median_abs_relative_error']}).",
        "",
        "## Forecast (forecast)",
        "",
        _row("KPI", "Prophet MASE", "seasonal-naive MASE", "Prophet MAPE", "naive MAPE"),
        _row("---", "---", "---", "---", "---"),
    ]
    for kpi, m in report["forecast"].items():
        lines.append(
            _row(kpi, m["prophet_mase"], m["naive_mase"], m["prophet_mape"], m["naive_mape"])
        )
    lal = report["lalonde"]
    nab = "; ".join(
        f"{k}: {v['windows_detected']}/{v['windows']} windows, precision {v['precision']}"
        for k, v in report["nab"].items()
    )
    verdict = "PASS" if not fails else "FAIL:\n" + "\n".join(f"- {f}" for f in fails)
    lines += [
        "",
        "## Real data",
        "",
        f"LaLonde (NSW treated vs CPS controls): naive {lal['naive']}, estimate "
        f"**{lal['estimate']}** (CI {lal['ci']}), experimental {lal['experimental']}; "
        f"refutations {lal['refutations']}.",
        "",
        f"NAB windows: {nab}",
        "",
        "## Verdict",
        "",
        verdict,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--stores", type=int, default=60)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--out", type=Path, default=Path("out/quality"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    worlds = args.out / "worlds"
    worlds.mkdir(parents=True, exist_ok=True)
    collected = Collected()
    started = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        base = WorldConfig(stores=args.stores, days=args.days, seed=seed, regions=4)
        for magnitude in (1.0, 0.7):
            path = _world(
                worlds,
                f"mixed_s{seed}_m{magnitude}",
                base,
                mixed_incidents(base, magnitude=magnitude),
            )
            evaluate_world(
                path, f"mixed_s{seed}_m{magnitude}", collected, diagnose_incidents=magnitude == 1.0
            )
        quiet_cfg = base.model_copy(update={"seed": 1000 + seed})
        path = _world(worlds, f"quiet_s{seed}", quiet_cfg, [])
        evaluate_world(path, f"quiet_s{seed}", collected, diagnose_incidents=False)
        if seed <= 3:
            evaluate_forecast(path, f"quiet_s{seed}", collected)
        conf_cfg = base.model_copy(update={"seed": 2000 + seed})
        path = _world(worlds, f"confounded_s{seed}", conf_cfg, confounded_incidents(conf_cfg))
        evaluate_world(path, f"confounded_s{seed}", collected, diagnose_incidents=True)
        logger.info("seed %d done (%.0f s)", seed, time.perf_counter() - started)
    report = summarise(collected, real_data())
    report.update(
        {
            "seeds": args.seeds,
            "world": {"stores": args.stores, "days": args.days, "regions": 4},
            "seconds": round(time.perf_counter() - started, 1),
            "thresholds": THRESHOLDS,
        }
    )
    fails = check(report)
    report["pass"] = not fails
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / "report.md").write_text(markdown(report, fails))
    pd.DataFrame(collected.diagnosis).to_csv(args.out / "diagnosis.csv", index=False)
    pd.DataFrame(collected.actions).to_csv(args.out / "actions.csv", index=False)
    print(markdown(report, fails))  # noqa: T201
    return 0 if not fails else 1


if __name__ == "__main__":
    sys.exit(main())
