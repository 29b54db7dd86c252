"""Run suites and write ``report.json`` and ``report.md``: metrics, baselines, failing cases."""

from __future__ import annotations

import json
import multiprocessing
import platform
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.settings import get_settings
from evals import cassettes
from evals.metrics import Metric, aggregate, check, pass_k, thresholds
from evals.runner import Mode, SuiteRun
from evals.scoring import CaseResult
from evals.suite import METRICS, Suite, load_suite, suite_paths


class SuiteReport(BaseModel):
    """Everything measured for one suite."""

    name: str
    source: str
    sha256: str
    gate: bool
    tags: list[str]
    metrics: dict[str, Metric]
    pass_k: Metric
    bounds: dict[str, dict[str, float]]
    failures: list[str]
    per_kind: dict[str, dict[str, int | float | None]]
    cases: list[CaseResult]

    @property
    def ok(self) -> bool:
        """The suite meets its bounds (or is not gated)."""
        return not self.gate or not self.failures


def per_kind(results: list[CaseResult]) -> dict[str, dict[str, int | float | None]]:
    """Break detection, top-1 and action correctness down by incident kind."""
    rows: dict[str, list[Any]] = {}
    for r in results:
        for i in r.incidents:
            rows.setdefault(i.kind, []).append(i)
    out = {}
    for kind, items in sorted(rows.items()):
        diag = [i for i in items if i.diagnosed]
        acted = [i for i in items if i.action]
        out[kind] = {
            "n": len(items),
            "recall": round(sum(i.detected for i in items) / len(items), 3),
            "top1": round(sum(i.top1 for i in diag) / len(diag), 3) if diag else None,
            "action_correct": round(sum(i.action_ok for i in acted) / len(acted), 3)
            if acted
            else None,
        }
    return out


def run_suite(
    suite: Suite,
    mode: Mode,
    *,
    repeat: int,
    work_dir: Path,
    cassette_dir: Path | None = None,
    server: str | None = None,
) -> SuiteReport:
    """Run and score one suite."""
    results = SuiteRun(suite, mode, work_dir, cassette_dir).run(repeat, server=server)
    metrics = aggregate(suite, results)
    bounds = thresholds(mode, suite)
    return SuiteReport(
        name=suite.name,
        source=suite.source,
        sha256=suite.sha256,
        gate=suite.gate,
        tags=suite.tags,
        metrics=metrics,
        pass_k=pass_k(results),
        bounds=bounds,
        failures=check(metrics, bounds),
        per_kind=per_kind(results),
        cases=results,
    )


def _run_suites(
    suites: list[Suite], mode: Mode, repeat: int, work_dir: Path, server: str | None, jobs: int
) -> list[SuiteReport]:
    """Run ``suites`` in order, or ``jobs`` at a time in worker processes (same reports)."""
    if jobs <= 1 or len(suites) <= 1:
        return [run_suite(s, mode, repeat=repeat, work_dir=work_dir, server=server) for s in suites]
    # spawn, not fork: the parent holds DuckDB and thread pools a forked child must not inherit
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [
            pool.submit(run_suite, s, mode, repeat=repeat, work_dir=work_dir, server=server)
            for s in suites
        ]
        return [f.result() for f in futures]


def settings_snapshot() -> dict[str, Any]:
    """All settings, secrets redacted."""
    data = get_settings().model_dump(mode="json")
    for key in ("llm_api_key", "postgres_url"):
        if data.get(key):
            data[key] = "***"
    return data


def run(
    suite_arg: str,
    mode: Mode,
    *,
    repeat: int,
    report_dir: Path,
    work_dir: Path,
    server: str | None = None,
    jobs: int = 1,
) -> tuple[bool, dict[str, Any]]:
    """Run suites, write the reports, return (all gated suites pass, report).

    In replay mode ``all`` means the suites that have recorded cassettes; a named suite
    without them is an error that says how to record them.

    Args:
        suite_arg: ``all``, a shipped suite name, a YAML file or a folder of them.
        mode: offline, replay, record or live.
        repeat: runs per case (pass^k needs more than one).
        report_dir: where report.json and report.md go.
        work_dir: where worlds and run stores are kept (worlds are cached there).
        server: in record mode, what served the model (kept in the cassettes' meta.json).
        jobs: suites run at once, each in its own process (suites share nothing: each has
            its own world, run store and cassettes). Record mode runs one at a time: a
            local model server answers one request at a time anyway.

    Raises:
        ValueError: an unknown or invalid suite.
        ReplayMismatch: replay without matching cassettes.
    """
    suites = [load_suite(p) for p in suite_paths(suite_arg)]
    if mode == "replay" and suite_arg == "all":
        suites = [s for s in suites if (cassettes.CASSETTES_DIR / s.name / "meta.json").exists()]
        if not suites:
            raise cassettes.ReplayMismatch(
                f"no suite has cassettes under {cassettes.CASSETTES_DIR}: {cassettes.RERECORD}"
            )
    reports = _run_suites(suites, mode, repeat, work_dir, server, 1 if mode == "record" else jobs)
    meta = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "repeat": repeat,
        "git_sha": cassettes.git_sha(),
        "prompts": cassettes.prompt_hashes(),
        "tool_schemas_sha256": cassettes.tool_schema_hash(),
        "model": "offline-planner" if mode == "offline" else get_settings().llm_model,
        "settings": settings_snapshot(),
        "python": platform.python_version(),
    }
    if mode == "replay":
        recorded = {s.name: cassettes.read_meta(cassettes.CASSETTES_DIR / s.name) for s in suites}
        meta["cassettes"] = recorded
        # the model that answered is the recorded one, not the settings' default
        meta["model"] = ", ".join(sorted({str(m["model"]) for m in recorded.values()}))
    ok = all(r.ok for r in reports)
    payload = {"meta": meta, "ok": ok, "suites": [r.model_dump(mode="json") for r in reports]}
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (report_dir / "report.md").write_text(markdown(reports, meta, ok))
    return ok, payload


def _fmt(m: Metric | None) -> str:
    if m is None or m.value is None:
        return "-"
    return f"{m.value:g}" + (f" ± {m.se:g}" if m.se else "") + f" (n={m.n})"


# The metrics table of each suite; the baselines get their own table beside the agent.
SHOWN = tuple(
    m
    for m in METRICS
    if not m.startswith("baseline_") and m not in ("cases_passed", "persistence_correct")
)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(reports: list[SuiteReport], meta: dict[str, Any], ok: bool) -> str:
    """Render the human report."""
    lines = [
        f"# Eval report - {meta['mode']} - {'PASS' if ok else 'FAIL'}",
        "",
        f"Git {str(meta['git_sha'])[:10]}; model {meta['model']}; prompts "
        + ", ".join(f"{k} ({v[:10]})" for k, v in meta["prompts"].items())
        + f"; repeat {meta['repeat']}.",
        "",
        "| suite | gated | verdict | recall | precision | top-1 | action | grounded | pass^k |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        m = r.metrics
        verdict = "pass" if not r.failures else ("FAIL" if r.gate else "below bar (not gated)")
        lines.append(
            _row(
                r.name,
                "yes" if r.gate else "no",
                verdict,
                *(_v(m, k) for k in ("detection_recall", "event_precision", "root_cause_top1")),
                *(_v(m, k) for k in ("action_correct", "groundedness")),
                _v({"p": r.pass_k}, "p"),
            )
        )
    for r in reports:
        m = r.metrics
        lines += [
            "",
            f"## {r.name}",
            "",
            f"`{r.source}` (sha256 {r.sha256[:12]})"
            + (f"; tags: {', '.join(r.tags)}" if r.tags else ""),
            "",
        ]
        lines += ["| metric | value | bound |", "|---|---|---|"]
        for name in SHOWN:
            if name in m and m[name].value is not None:
                bound = r.bounds.get(name, {})
                text = " ".join(f"{k} {v:g}" for k, v in bound.items()) or "-"
                lines.append(f"| {name} | {_fmt(m[name])} | {text} |")
        if m.get("root_cause_top1") and m["root_cause_top1"].value is not None:
            lines += [
                "",
                "Agent against baselines (root cause ranked first):",
                "",
                "| agent (causal) | correlation ranking | largest deviation | anomaly only |",
                "|---|---|---|---|",
                _row(
                    *(
                        _v(m, k)
                        for k in (
                            "root_cause_top1",
                            "baseline_correlation_top1",
                            "baseline_deviation_top1",
                            "baseline_anomaly_only_top1",
                        )
                    )
                ),
            ]
        if m.get("persistence_correct") and m["persistence_correct"].value is not None:
            lines += [
                "",
                "Will it persist tomorrow? (share judged right)",
                "",
                "| agent (Prophet forecast) | no forecast (today's problem is tomorrow's) |",
                "|---|---|",
                _row(_v(m, "persistence_correct"), _v(m, "baseline_no_forecast_persistence")),
            ]
        if r.per_kind:
            lines += ["", "| kind | incidents | recall | top-1 | action |", "|---|---|---|---|---|"]
            lines += [
                f"| {k} | {v['n']} | {v['recall']} | {v['top1']} | {v['action_correct']} |"
                for k, v in r.per_kind.items()
            ]
        if r.failures:
            lines += ["", "**Out of bounds:** " + "; ".join(r.failures)]
        failing = [c for c in r.cases if not c.passed]
        if failing:
            lines += ["", "Failing cases:", ""]
            for c in failing[:10]:
                detail = (
                    c.error
                    or "; ".join(
                        f"{i.incident} {i.kind}: detected={i.detected} top1={i.top1} "
                        f"action={i.action}"
                        for i in c.incidents
                    )
                    or f"expected {c.expected}, got {c.got}"
                )
                lines.append(f"- `{c.case}` (run {c.run_id}): {detail}")
                if c.plan:
                    lines.append(f"  - plan: {c.plan.get('summary')}")
    return "\n".join(lines) + "\n"


def _v(m: dict[str, Metric], name: str) -> str:
    metric = m.get(name)
    return "-" if metric is None or metric.value is None else f"{metric.value:g}"
