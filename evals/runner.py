"""Run eval suites: prepare the world, run every case through the agent, score it.

Each case runs through :class:`agent.service.AgentService` - the product path - in one of
four modes: ``offline`` (the offline planner), ``replay`` (recorded HTTP traffic of a real
model), ``record`` (a real endpoint, writing cassettes), ``live`` (a real endpoint).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.coherence import COHERENCE_KINDS
from agent.errors import RunFailedError
from agent.results import ToolResult
from agent.schemas import ActionPlan
from agent.service import AgentService
from agent.verify import verify_plan
from evals import cassettes
from evals.groundtruth import Truth, load_truth, world_of
from evals.incidents import Reading, score_alarms
from evals.scoring import (
    ISO_DAY,
    SCOPE_ID,
    WHY,
    CaseResult,
    answer_facts,
    meets,
    plan_facts,
    treats,
)
from evals.suite import Case, DatasetSpec, Suite
from tools.analytics.scope import ScopeLevel, load_catalog
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import DuckDBBackend
from tools.data.olist import ingest_olist
from tools.data.synthetic import CAUSES, World, WorldConfig, generate_world
from tools.data.synthetic.generator import GENERATOR_VERSION
from tools.data.truth_file import truth_path
from tools.scan_anomalies import Anomaly, ScanAnomaliesInput, scan_anomalies

logger = logging.getLogger(__name__)
Mode = Literal["offline", "replay", "record", "live"]
REPO = Path(__file__).parents[1]


def prepare_world(suite: Suite, work_dir: Path) -> Path:
    """Build the suite's database once (cached by world, incidents and generator version)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(suite.world, DatasetSpec):
        key = json.dumps(suite.world.model_dump(mode="json"))
        db = work_dir / f"{suite.name}.duckdb"
        stamp = work_dir / f"{suite.name}.key"
        if not (db.exists() and stamp.exists() and stamp.read_text() == key):
            db.unlink(missing_ok=True)
            path = Path(suite.world.path)
            ingest_olist(path if path.is_absolute() else REPO / path, db)
            stamp.write_text(key)
        return db
    key = json.dumps(
        [
            suite.world.model_dump(mode="json"),
            [i.model_dump(mode="json") for i in suite.incidents],
            GENERATOR_VERSION,
        ]
    )
    db = work_dir / f"{suite.name}.duckdb"
    stamp = work_dir / f"{suite.name}.key"
    fresh = db.exists() and truth_path(db).exists() and stamp.exists()
    if not (fresh and stamp.read_text() == key):
        db.unlink(missing_ok=True)
        generate_world(db, suite.world, suite.incidents, progress=False)
        stamp.write_text(key)
    return db


class SuiteRun:
    """One suite's run: its world, ground truth and agent service."""

    def __init__(self, suite: Suite, mode: Mode, work_dir: Path, cassette_dir: Path | None = None):
        self.suite = suite
        self.mode = mode
        self.db = prepare_world(suite, work_dir)
        self.backend = DuckDBBackend(self.db)
        self.synthetic = isinstance(suite.world, WorldConfig)
        self.truth: Truth | None = load_truth(self.db) if self.synthetic else None
        self._world: World | None = None
        self.cassette_dir = cassette_dir or cassettes.CASSETTES_DIR / suite.name
        state = work_dir / f"{suite.name}.{mode}.state.sqlite"
        state.unlink(missing_ok=True)
        self.state_db = state

    @property
    def world(self) -> World:
        """The simulated world (for action counterfactuals)."""
        if self._world is None:
            self._world = world_of(self.db)
        return self._world

    def run(self, repeat: int = 1, *, server: str | None = None) -> list[CaseResult]:
        """Run every case ``repeat`` times.

        Args:
            repeat: runs per case.
            server: in record mode, what served the model (for the cassettes' meta.json).
        """
        meta = None
        if self.mode == "replay":
            meta = cassettes.read_meta(self.cassette_dir)
            cassettes.check_replayable(meta)
        elif self.mode == "record":  # a fresh set: no cassette of a removed case lingers
            for old in self.cassette_dir.glob("*.yaml"):
                old.unlink()
            (self.cassette_dir / "meta.json").unlink(missing_ok=True)
        out: list[CaseResult] = []
        settings = cassettes.endpoint_settings(meta, self.mode)
        service = AgentService(
            settings, db=self.db, state_db=self.state_db, offline=self.mode == "offline"
        )
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        try:
            with progress:
                task = progress.add_task(
                    f"{self.suite.name} ({self.mode})", total=len(self.suite.cases) * repeat
                )
                for i, case in enumerate(self.suite.cases):
                    for r in range(repeat):
                        cid = self.suite.case_id(i)
                        path = self.cassette_dir / f"{cid}.r{r}.yaml"
                        with cassettes.cassette(path, self.mode):
                            out.append(self.run_case(service, cid, case, r))
                        progress.advance(task)
        finally:
            service.close()
        if self.mode == "record":
            failed = [r for r in out if r.error]
            if failed:  # a half-recorded set would only fail later, in someone else's replay
                shutil.rmtree(self.cassette_dir, ignore_errors=True)
                raise cassettes.CassetteError(
                    f"recording {self.suite.name} failed, no cassettes kept: case "
                    f"{failed[0].case}: {failed[0].error}"
                )
            cassettes.write_meta(self.cassette_dir, server=server)
        return out

    # -- one case --------------------------------------------------------------------------
    def run_case(self, service: AgentService, cid: str, case: Case, repeat: int) -> CaseResult:
        """Run and score one case."""
        if case.kind == "scan":
            return self.scan_case(cid, case)
        started = time.perf_counter()
        error = None
        view = None
        run_id = None
        try:
            if case.triage_day is not None:
                level, _, ids = case.scope.partition(":")
                view = service.triage(
                    self.suite.day_of(case.triage_day),
                    cast(ScopeLevel, level),
                    [i for i in ids.split(",") if i],
                    **self._today(case),
                )
            else:
                thread = f"{cid}.r{repeat}" if case.follow_up else None
                view = service.ask(
                    self.suite.render(case.question or ""), thread_id=thread, **self._today(case)
                )
                for follow_up in case.follow_up:
                    view = service.ask(
                        self.suite.render(follow_up), thread_id=thread, **self._today(case)
                    )
        except cassettes.ReplayMismatch:
            raise
        except Exception as exc:  # scored as a failed case, with the reason
            if cassettes.is_cassette_miss(exc):
                raise  # the cassette context turns it into a ReplayMismatch
            error = f"{type(exc).__name__}: {exc}"
            run_id = exc.run_id if isinstance(exc, RunFailedError) else None
        latency = time.perf_counter() - started
        result = CaseResult(
            case=cid,
            kind=case.kind,
            repeat=repeat,
            status=view.status if view else "failed",
            run_id=view.run_id if view else run_id,
            error=error or (view.error if view else None),
            latency_s=round(latency, 2),
        )
        if view is None:
            return result
        record = service.record(view.run_id)
        trace = record.trace
        tools = [e for e in trace if e.get("kind") == "tool"]
        result.tool_calls = len(tools)
        result.tool_calls_valid = sum(
            1
            for e in tools
            if not (e.get("error") or "").startswith(("invalid arguments", "unknown tool"))
        )
        result.llm_calls = sum(1 for e in trace if e.get("kind") == "llm")
        result.input_tokens, result.output_tokens = record.input_tokens, record.output_tokens
        if record.plan is not None:
            plan = ActionPlan.model_validate(record.plan)
            report = verify_plan(
                plan, {e["id"]: e for e in record.evidence}, service.notes(view.run_id)
            )
            result.plan_valid = report.ok
            result.groundedness = report.groundedness
            result.numbers_checked = report.numbers_checked
            result.fallback = plan.fallback
            result.plan = record.plan
            # the verifier ran the coherence checks: count its problems by kind
            result.coherence = {
                kind: sum(marker in p for p in report.problems)
                for kind, marker in COHERENCE_KINDS.items()
            }
        results = service.results(view.run_id)
        result.notes = service.notes(view.run_id)
        if case.kind == "triage":
            self.score_triage(result, self.suite.day_of(case.triage_day), results)  # type: ignore[arg-type]
            if case.expect is not None:
                self.score_question(result, case, results)
        else:
            self.score_question(result, case, results)
        result.passed = self.passed(result)
        return result

    def scan_case(self, cid: str, case: Case) -> CaseResult:
        """Scan a window with the tool alone (no agent): detection and false alarms at scale.

        With ``each_day``, every day is scanned as of its own end, as the morning triage
        does (a backtest); otherwise the window is scanned at once.
        """
        assert case.scan is not None
        spec = case.scan
        ref = spec.get("start", spec.get("start_day"))
        start = self.suite.day_of(ref)  # type: ignore[arg-type]
        days = int(cast(int, spec["days"]))
        started = time.perf_counter()
        ctx = ToolContext(backend=self.backend)
        calls = (
            [(start + timedelta(days=i), 1) for i in range(days)]
            if spec.get("each_day")
            else [(start + timedelta(days=days - 1), days)]
        )
        alarms: list[Anomaly] = []
        try:
            for last, span in calls:
                args = ScanAnomaliesInput(day=last, days=span, max_results=500)
                alarms += scan_anomalies(ctx, args).anomalies
        except ToolError as exc:
            return CaseResult(case=cid, kind="scan", status="failed", error=str(exc))
        result = CaseResult(
            case=cid,
            kind="scan",
            status="done",
            latency_s=round(time.perf_counter() - started, 2),
            plan_valid=True,
            groundedness=1.0,
        )
        stores = len(load_catalog(self.backend).stores)
        result.store_weeks = stores * days / 7
        if self.truth is None:  # real data: no labels; every alarm counts
            result.alarms = len(alarms)
            result.got = {"alarms": [f"{a.target} {a.date}" for a in alarms[:20]]}
            result.expected = case.expect.model_dump(exclude_none=True) if case.expect else {}
            result.question_ok = not alarms if result.expected.get("no_anomalies") else None
        self._score_alarms(
            result, alarms, start, start + timedelta(days=days - 1), diagnoses=[], plan=None
        )
        result.passed = result.question_ok is not False
        return result

    def score_triage(self, result: CaseResult, day: date, results: list[ToolResult]) -> None:
        """Score detection, diagnosis, action and impact against the ground truth of the day."""
        scan = next((r.result for r in reversed(results) if r.tool == "scan_anomalies"), None)
        alarms = [Anomaly.model_validate(a) for a in (scan or {}).get("anomalies", [])]
        diagnoses = [r.result for r in results if r.tool == "diagnose"]
        plan = ActionPlan.model_validate(result.plan) if result.plan else None
        forecasts = [r.result for r in results if r.tool == "forecast"]
        caps = {
            (r.result["target"], a["action_id"]): a["cap"]
            for r in results
            if r.tool == "recommend_actions"
            for a in r.result["actions"]
        }
        self._score_alarms(
            result,
            alarms,
            day,
            day,
            diagnoses=diagnoses,
            plan=plan,
            forecasts=forecasts,
            caps=caps,
        )

    def _score_alarms(
        self,
        result: CaseResult,
        alarms: list[Anomaly],
        first: date,
        last: date,
        *,
        diagnoses: list[dict[str, Any]],
        plan: ActionPlan | None,
        forecasts: list[dict[str, Any]] | None = None,
        caps: dict[tuple[str, str], float] | None = None,
    ) -> None:
        """Score alarms against the ground truth (:func:`evals.incidents.score_alarms`)."""
        if self.truth is None:
            return
        score_alarms(
            result,
            alarms,
            (first, last),
            Reading(diagnoses, plan, forecasts or [], caps or {}),
            self.truth,
            lambda: self.world,
        )

    def _today(self, case: Case) -> dict[str, Any]:
        """Return the case's (or suite's) pinned today as a run context override."""
        today = self.suite.day_of(case.today) if case.today is not None else self.suite.today
        return {"today": today} if today else {}

    def score_question(self, result: CaseResult, case: Case, results: list[ToolResult]) -> None:
        """Compare the answer with the case's expectations (or the ground truth)."""
        expect = (
            case.expect.model_dump(exclude_none=True) if case.expect else {}
        ) or self._derived(case)
        if "period" in expect:
            expect["period"] = [self.suite.day_of(d).isoformat() for d in expect["period"]]
        result.expected = expect
        plan = ActionPlan.model_validate(result.plan) if result.plan else None
        if plan is None:
            result.question_ok = False
            return
        got = {**plan_facts(plan), **answer_facts(plan, results, result.notes)}
        result.got = got
        checks = [meets(key, want, got) for key, want in expect.items()]
        if expect.get("cause") not in (None, "unexplained") and "action" not in expect:
            if plan.actions:
                checks.append(expect["cause"] in treats(plan.actions[0].action_id))
        result.question_ok = all(checks)

    def _derived(self, case: Case) -> dict[str, Any]:
        """Derive expectations from the ground truth: the incident at the asked scope and day.

        Read with plain patterns, not the agent's parser, so a parser bug cannot make the
        expectation vanish along with the answer.
        """
        if self.truth is None or case.question is None:
            return {}
        text = self.suite.render(case.question)
        if not WHY.search(text):
            return {}
        days = ISO_DAY.findall(text)
        ids = set(SCOPE_ID.findall(text))
        cells = self.truth.cells
        for day in days:
            for target in sorted(ids):
                hit = cells[
                    (cells.date == date.fromisoformat(day))
                    & ((cells.store_id == target) | (cells.region == target))
                    & cells.injected
                ]
                if not hit.empty:
                    return {"target": target, "cause": CAUSES[str(hit.kind.iloc[0])][0]}
        return {}

    def passed(self, r: CaseResult) -> bool:
        """Pass a case when the run finished with a valid, grounded plan and got it right."""
        ok = r.error is None and r.plan_valid and (r.groundedness or 0) == 1.0
        if r.kind == "triage" and r.question_ok is not None:
            # the case states its right answer (where the true root cause is out of the
            # data's reach): that answer, and detection, decide
            return ok and r.question_ok and all(i.detected for i in r.incidents)
        if r.kind == "triage":
            ok = ok and all(i.detected and i.top1 and i.action_ok for i in r.incidents)
        if r.kind == "question":
            ok = ok and bool(r.question_ok)
        return ok
