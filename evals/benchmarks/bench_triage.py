"""Benchmark the morning triage: wall time and peak memory on a national-size world.

Usage::

    python evals/benchmarks/bench_triage.py --out out/bench/triage.json

Generates (once, kept in ``--worlds``) a 500-store x 180-day world with a few incidents on
its last day, then times ``AgentService.triage`` of that day with the offline planner in a
fresh subprocess, so the peak RSS is the triage's alone. The reference the issue tracker
recorded at commit d6d2726 on a 2-core, 24 GB machine: 34 s and 1.2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

WORLD = """
import json, sys
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
stores, days, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
last = days - 1
incidents = [
    IncidentSpec(kind="driver_shortage", store="S010", start_day=last),
    IncidentSpec(kind="severe_weather", region="R2", start_day=last),
    IncidentSpec(kind="dispatch_delay", store="S300", start_day=last),
]
generate_world(db, WorldConfig(stores=stores, days=days, seed=1), incidents, progress=False)
"""

CHILD = """
import json, resource, sys, time
from datetime import date
from agent.service import AgentService
db, state, day = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3])
t0 = time.perf_counter()
service = AgentService(db=db, state_db=state, offline=True)
view = service.triage(day)
seconds = time.perf_counter() - t0
plan = view.plan
print(json.dumps({
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "status": view.status,
    "anomalies_diagnosed": len({h.target for h in plan.hypotheses}) if plan else 0,
    "actions": len(plan.actions) if plan else 0,
}))
"""


def world(root: Path, stores: int, days: int) -> Path:
    """Return the benchmark world, generated once per size."""
    db = root / f"triage_{stores}x{days}.duckdb"
    if not db.exists():
        subprocess.run([sys.executable, "-c", WORLD, str(stores), str(days), str(db)], check=True)
    return db


def run(db: Path, day: str) -> dict[str, object]:
    """Time one triage in a subprocess and return its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(db), str(Path(tmp) / "state.sqlite"), day],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "triage_seconds": round(result["seconds"], 2),
        "process_seconds": round(wall, 2),
        "peak_rss_mb": round(result["peak_rss_mb"]),
        "status": result["status"],
        "targets_in_plan": result["anomalies_diagnosed"],
        "actions": result["actions"],
    }


def main() -> None:
    """Run the benchmark and write its JSON results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/bench/triage.json"))
    parser.add_argument("--worlds", type=Path, default=Path("out/bench/worlds"))
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    args.worlds.mkdir(parents=True, exist_ok=True)
    db = world(args.worlds, args.stores, args.days)
    from tools.data.synthetic import WorldConfig  # after the world: keep startup light

    day = WorldConfig(stores=args.stores, days=args.days).day(args.days - 1).isoformat()
    runs = [run(db, day) for _ in range(args.repeat)]
    results = {
        "benchmark": "triage",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "world": {"stores": args.stores, "days": args.days, "day": day},
        "reference": {"commit": "d6d2726", "triage_seconds": 34, "peak_rss_mb": 1200},
        "runs": runs,
        "best_seconds": min(float(r["triage_seconds"]) for r in runs),  # type: ignore[arg-type]
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for r in runs:
        print(
            f"triage of {day} on {args.stores} stores x {args.days} days: "
            f"{r['triage_seconds']} s, peak RSS {r['peak_rss_mb']} MB, "
            f"{r['targets_in_plan']} target(s), {r['actions']} action(s)"
        )
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
