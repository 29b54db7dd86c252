"""Benchmark the synthetic world generator: wall time, peak memory and throughput.

Usage::

    python evals/benchmarks/bench_generate.py --out out/bench/generate.json

Runs a small "test world" (20 stores x 60 days) and the DESIGN.md target world
(500 stores x 180 days) in fresh subprocesses, so each peak RSS is that run's alone.
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

CHILD = """
import json, resource, sys, time
from tools.data.synthetic import WorldConfig, generate_world
stores, days, seed, db = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
report = generate_world(db, WorldConfig(stores=stores, days=days, seed=seed), [], progress=False)
seconds = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "rows": report.rows}))
"""


def run(stores: int, days: int, seed: int) -> dict[str, object]:
    """Generate one world in a subprocess and return its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(stores), str(days), str(seed), str(db)],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
        result = json.loads(done.stdout.strip().splitlines()[-1])
        deliveries = result["rows"]["deliveries"]
        return {
            "stores": stores,
            "days": days,
            "seed": seed,
            "deliveries": deliveries,
            "generate_seconds": round(result["seconds"], 2),
            "process_seconds": round(wall, 2),
            "deliveries_per_second": round(deliveries / result["seconds"]),
            "peak_rss_mb": round(result["peak_rss_mb"]),
            "db_size_mb": round(db.stat().st_size / 2**20),
        }


def main() -> None:
    """Run the benchmark and write its JSON results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/bench/generate.json"))
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = {
        "benchmark": "generate_world",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": [run(20, 60, args.seed), run(args.stores, args.days, args.seed)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for r in results["runs"]:  # type: ignore[union-attr]
        print(
            f"{r['stores']} stores x {r['days']} days: {r['deliveries']:,} deliveries in "
            f"{r['generate_seconds']} s ({r['deliveries_per_second']:,}/s), "
            f"peak RSS {r['peak_rss_mb']} MB, file {r['db_size_mb']} MB"
        )
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
