"""Run benchmark steps in fresh processes, and keep the generated worlds for reuse.

A step that raises, is killed or times out comes back with a one-line reason instead of a
result; the suite records it as failed, never drops it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.benchmarks.steps import MARKER

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MEAN_ORDERS = 300.0
"""The generator's default orders per store-day."""
MIN_NATIONAL_DELIVERIES = 50_000_000
"""A national world smaller than the default must still have this many deliveries."""


@dataclass(frozen=True)
class StepRun:
    """What a step process returned: its result, or why there is none."""

    result: dict[str, Any] | None
    reason: str | None
    wall_s: float


def log(message: str) -> None:
    """Say what the suite is doing (on stderr: stdout is the table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"the step's process was killed by {name}{hint}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {returncode}, nothing on stderr"
    return last[:300]


def _kill(process: subprocess.Popen[str]) -> None:
    """End a step's process and everything it started (its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def run_step(step: str, args: dict[str, Any], timeout_s: float) -> StepRun:
    """Run one step of :mod:`evals.benchmarks.steps` in a fresh Python process.

    The process gets its own session, so a timeout ends it and anything it started (Spark's
    JVM) together.
    """
    command = [sys.executable, "-m", "evals.benchmarks.steps", step, json.dumps(args)]
    started = time.perf_counter()
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            return StepRun(
                None, f"timed out after {timeout_s:.0f} s", time.perf_counter() - started
            )
        except BaseException:  # interrupted: the step's own session gets no Ctrl-C
            _kill(process)
            raise
    wall = time.perf_counter() - started
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            return StepRun(json.loads(line[len(MARKER) :]), None, wall)
    return StepRun(None, _failure(process.returncode, stderr), wall)


@dataclass(frozen=True)
class World:
    """A benchmark world: its size and seed (and orders per store-day when not the default)."""

    stores: int
    days: int
    seed: int = 1
    mean_orders: float = DEFAULT_MEAN_ORDERS

    @property
    def key(self) -> str:
        """Folder name under ``worlds/``: stores x days x seed (x orders when not default)."""
        key = f"{self.stores}x{self.days}_seed{self.seed}"
        if self.mean_orders != DEFAULT_MEAN_ORDERS:
            key += f"_orders{self.mean_orders:g}"
        return key

    def smaller(self, deliveries: int = MIN_NATIONAL_DELIVERIES) -> World:
        """Return this world with the fewest orders per store-day giving ``deliveries``."""
        mean = math.ceil(deliveries / (self.stores * self.days))
        return World(self.stores, self.days, self.seed, float(mean))


def ensure_world(root: Path, world: World, timeout_s: float) -> tuple[dict[str, Any] | None, str]:
    """Return the world's generation record, generating it first unless kept from a run before.

    The world is written to a hidden folder and renamed when complete, so an interrupted
    generation is never reused.

    Returns:
        (record, "") with ``db``, ``seconds``, ``peak_rss_mb``, ``deliveries``, ``db_mb``,
        ``last_day`` and ``reused``; or (None, why it could not be generated).
    """
    folder = root / world.key
    record_file = folder / "generate.json"
    if record_file.exists() and (folder / "world.duckdb").exists():
        record = json.loads(record_file.read_text())
        return {**record, "db": str(folder / "world.duckdb"), "reused": True}, ""
    staging = root / f".{world.key}.writing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log(f"generating world {world.key}")
    args = {
        "db": str(staging / "world.duckdb"),
        "stores": world.stores,
        "days": world.days,
        "seed": world.seed,
        "mean_orders": world.mean_orders,
    }
    run = run_step("generate", args, timeout_s)
    if run.result is None:
        shutil.rmtree(staging, ignore_errors=True)
        return None, run.reason or "generation failed"
    record = {**run.result, "stores": world.stores, "days": world.days, "seed": world.seed}
    record["mean_orders"] = world.mean_orders
    (staging / "generate.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return {**record, "db": str(folder / "world.duckdb"), "reused": False}, ""
