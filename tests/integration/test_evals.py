"""The eval harness end to end: a suite from elsewhere, replay with no network, the gate.

These run the real agent (offline planner, or the committed SmolLM2 cassettes) on small
generated worlds; ``make eval`` runs every shipped suite.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import prompts
import tools.causal.graph as causal_graph
from agent.interfaces.cli import app
from agent.results import ToolResult
from evals import cassettes
from evals.report import run

pytestmark = pytest.mark.slow

runner = CliRunner()

# Written from evals/README.md alone: only the documented keys.
THEIR_SUITE = """\
name: their-shortages-and-storm
world: {stores: 12, days: 70, seed: 5, regions: 2, start_date: 2026-01-01}
incidents:
  - {kind: driver_shortage, store: S004, start_day: 60, days: 1, magnitude: 1.0}
  - {kind: severe_weather, region: R2, start_day: 64, days: 1}
cases:
  - {triage_day: 60}
  - {triage_day: 64}
  - {triage_day: 55}
  - {question: "why were deliveries late at store S004 on {date:60}?"}
"""


def _eval(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(
        app,
        [
            "eval",
            *args,
            "--report",
            str(tmp_path / "report"),
            "--work-dir",
            str(tmp_path / "work"),
        ],
    )


@pytest.fixture
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir shared by the tests of this module (worlds are cached there)."""
    return tmp_path_factory.getbasetemp() / "eval-work"


def test_a_suite_written_by_someone_else_runs_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "their_suite.yaml"
    path.write_text(THEIR_SUITE)
    result = _eval(tmp_path, "--suite", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (suite,) = report["suites"]
    assert suite["name"] == "their-shortages-and-storm" and suite["failures"] == []
    m = suite["metrics"]
    assert m["detection_recall"]["value"] == 1.0 and m["detection_recall"]["n"] == 2
    assert m["root_cause_top1"]["value"] == 1.0 and m["question_correct"]["value"] == 1.0
    assert m["groundedness"]["value"] == 1.0
    assert len(suite["cases"]) == 4
    # the results file says what produced it
    meta = report["meta"]
    assert meta["mode"] == "offline" and meta["model"] == "offline-planner"
    assert set(meta["prompts"]) == {"chat_system@v4", "tools@v2", "compose_plan@v4"}
    assert "llm_model" in meta["settings"] and len(meta["tool_schemas_sha256"]) == 64
    assert len(suite["sha256"]) == 64
    md = (tmp_path / "report" / "report.md").read_text()
    assert "correlation ranking" in md and "| driver_shortage |" in md


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_replay_needs_no_network_and_no_model_server(
    tmp_path: Path, work: Path, no_network: None
) -> None:
    assert importlib.util.find_spec("llama_cpp") is None  # never installed in this venv
    ok, payload = run("all", "replay", repeat=1, report_dir=tmp_path / "report", work_dir=work)
    assert ok, [s["failures"] for s in payload["suites"]]
    (suite,) = payload["suites"]  # `all` in replay = the suites that have cassettes
    assert suite["name"] == "replay_smollm2"
    m = suite["metrics"]
    # a real (tiny) model's conversation, scored: many calls, some with bad arguments that
    # the agent survived, and plans that are still valid and fully grounded
    assert m["llm_calls_per_case"]["value"] > 2 and m["tokens_per_case"]["value"] > 1000
    assert m["tool_call_validity"]["value"] < 1.0
    assert m["plan_valid"]["value"] == 1.0 and m["groundedness"]["value"] == 1.0
    recorded = payload["meta"]["cassettes"]["replay_smollm2"]
    assert recorded["model"] == "smollm2-135m-instruct" and "llama-cpp-python" in recorded["server"]
    assert payload["meta"]["model"] == "smollm2-135m-instruct"  # not the settings' default


@pytest.fixture
def edited_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "prompts"
    shutil.copytree(prompts.PROMPTS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    # the chat prompt a run sends now (the run context's default)
    name, _, version = next(p for p in cassettes.PROMPTS if p.startswith("chat_system@")).partition(
        "@"
    )
    system = copy / name / f"{version}.md"
    system.write_text(system.read_text() + "\nKeep answers under 100 words.\n")
    monkeypatch.setattr(prompts, "PROMPTS_DIR", copy)
    return copy


def test_a_changed_prompt_without_new_cassettes_says_how_to_rerecord(
    tmp_path: Path, work: Path, no_network: None, edited_prompts: Path
) -> None:
    result = _eval(
        tmp_path, "--suite", "replay_smollm2", "--mode", "replay", "--work-dir", str(work)
    )
    assert result.exit_code == 1
    assert "chat_system@v4" in result.output and "make eval-record" in result.output


def test_a_changed_tool_result_no_longer_matches_the_cassette(
    tmp_path: Path, work: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not every change shows in a hash: what a tool returns is matched request by request."""
    import agent.nodes.chat as chat

    # every recorded tool message is shorter than the 1,500-character floor: cut them at 300
    monkeypatch.setattr(chat, "tool_message_chars", lambda context: 300)
    with pytest.raises(cassettes.ReplayMismatch, match="make eval-record"):
        run("replay_smollm2", "replay", repeat=1, report_dir=tmp_path / "r", work_dir=work)


def test_a_changed_plan_request_is_named_before_any_replay() -> None:
    """The plan schema and the causes it lists derive from the vocabulary: a rename of a
    cause or an action changes what a plan request sends, and the gate says so."""
    meta = cassettes.read_meta(cassettes.CASSETTES_DIR / "replay_smollm2")
    with pytest.raises(cassettes.ReplayMismatch, match="the plan request"):
        cassettes.check_replayable({**meta, "plan_request_sha256": "0" * 64})


@pytest.fixture
def swapped_causes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """graph.yaml with two nodes' causes swapped: a one-line edit a review could miss."""
    doc = yaml.safe_load(causal_graph.GRAPH_FILE.read_text())
    nodes = doc["nodes"]
    nodes["no_show_rate"]["cause"], nodes["orders_per_scheduled_driver"]["cause"] = (
        nodes["orders_per_scheduled_driver"]["cause"],
        nodes["no_show_rate"]["cause"],
    )
    broken = tmp_path / "graph.yaml"
    broken.write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(causal_graph, "GRAPH_FILE", broken)
    causal_graph._default_graph.cache_clear()
    yield
    causal_graph._default_graph.cache_clear()


def test_a_broken_causal_graph_fails_the_gate(
    tmp_path: Path, work: Path, swapped_causes: None
) -> None:
    result = _eval(tmp_path, "--suite", "kind_driver_shortage", "--work-dir", str(work))
    assert result.exit_code == 1, result.output
    assert "root_cause_top1" in result.output and "action_correct" in result.output


def test_a_planner_that_cites_the_wrong_evidence_fails_the_gate(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its plans are rescued by the template plan, so the manager is safe; the gate is not."""
    import agent.offline as offline

    original = offline.template_plan

    def miscited(results: list[ToolResult], *args: Any, **kwargs: Any) -> Any:
        plan = original(results, *args, **kwargs)
        scan = [r.id for r in results if r.tool == "scan_anomalies"][:1]
        for hypothesis in plan.hypotheses:  # the scan does not hold the diagnosis numbers
            hypothesis.evidence_ids = scan
        return plan

    monkeypatch.setattr(offline, "template_plan", miscited)
    result = _eval(tmp_path, "--suite", "kind_driver_shortage", "--work-dir", str(work))
    assert result.exit_code == 1, result.output
    assert "template_fallback" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    m = report["suites"][0]["metrics"]
    assert m["template_fallback"]["value"] > 0.5  # every triage with a diagnosis
    assert m["groundedness"]["value"] == 1.0 and m["case_errors"]["value"] == 0


def test_make_eval_runs_every_suite_offline_then_the_cassettes() -> None:
    import subprocess

    out = subprocess.run(
        ["make", "-n", "eval"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout
    assert "lastmile eval --suite all --mode offline" in out
    assert "lastmile eval --suite all --mode replay" in out


def test_every_committed_cassette_set_was_recorded_from_this_code() -> None:
    """A cassette set is evidence of what a model did with this code: recorded from a
    committed tree, with the prompts and tool schemas the code sends now."""
    sets = sorted(p.parent for p in cassettes.CASSETTES_DIR.glob("*/meta.json"))
    assert sets, f"no cassette set under {cassettes.CASSETTES_DIR}"
    for folder in sets:
        meta = cassettes.read_meta(folder)
        assert meta.get("git_dirty") is False, f"{folder.name}: recorded from a dirty tree"
        assert meta.get("git_sha"), f"{folder.name}: no commit recorded"
        cassettes.check_replayable(meta)  # raises naming the prompt or schema that changed
