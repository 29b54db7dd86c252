"""Record and replay a model endpoint's HTTP traffic with vcrpy, one cassette per case.

A cassette set (``evals/cassettes/<suite>/``) holds one YAML cassette per case and repeat,
plus ``meta.json``: the model, endpoint and settings that made it, the prompt ids and hashes
and the tool schemas' hash. Replay matches requests on method, URI and body, so a changed
prompt or tool description no longer matches: the run stops and says how to re-record.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import vcr
from pydantic import SecretStr
from vcr.errors import CannotOverwriteExistingCassetteException

from agent.context import Context, ModelConfig
from agent.nodes.compose import plan_request_hash
from agent.settings import Settings, get_settings
from agent.tool_schemas import tool_definitions_hash
from prompts import load_prompt

REPO_ROOT = Path(__file__).resolve().parent.parent
CASSETTES_DIR = REPO_ROOT / "evals" / "cassettes"
PROMPTS = tuple(
    str(f.default)
    for f in dataclasses.fields(Context)
    if f.name in ("chat_prompt", "tools_prompt", "compose_prompt")
)
"""The prompts a run sends: the run context's defaults."""
RERECORD = (
    "re-record the cassettes against a model endpoint: `make eval-record` "
    "(see evals/README.md, 'Recording cassettes')"
)


class CassetteError(RuntimeError):
    """Cassettes cannot be replayed or recorded; the message says how to fix it."""


class ReplayMismatch(CassetteError):
    """Replay met a request its cassette does not hold (or prompts changed since)."""


def prompt_hashes() -> dict[str, str]:
    """Ids and hashes of the prompts a run sends."""
    out = {}
    for pid in PROMPTS:
        name, _, version = pid.partition("@")
        out[pid] = load_prompt(name, version).sha256
    return out


def tool_schema_hash() -> str:
    """Hash of the tool definitions a run sends (descriptions are prompts too)."""
    # the defaults, whatever this process's environment says: what a recorded run sent
    context = Context(
        db="unused.duckdb", model=ModelConfig(), late_grace_min=0.0, late_failed_is_late=True
    )
    return tool_definitions_hash(context)


def git_sha() -> str | None:
    """Return the repository's commit, if there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> bool | None:
    """Return whether tracked files had uncommitted changes (then the code is not git_sha).

    The cassettes themselves are left out: a recording rewrites them before this is read.
    """
    shipped = REPO_ROOT / "evals" / "cassettes"
    try:
        out = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                f":(exclude){shipped.relative_to(REPO_ROOT).as_posix()}",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


def read_meta(folder: Path) -> dict[str, Any]:
    """Read a cassette set's metadata.

    Raises:
        ReplayMismatch: the set is missing.
    """
    meta = folder / "meta.json"
    if not meta.exists():
        raise ReplayMismatch(f"no cassettes in {folder}: {RERECORD}")
    return dict(json.loads(meta.read_text()))


def write_meta(folder: Path, server: str | None) -> dict[str, Any]:
    """Record what made a cassette set."""
    s = get_settings()
    meta = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": s.llm_model,
        "base_url": s.llm_base_url,
        "server": server,
        "settings": {
            "llm_max_tokens": s.llm_max_tokens,
            "llm_temperature": s.llm_temperature,
            "llm_structured_output": s.llm_structured_output,
            "llm_timeout_s": s.llm_timeout_s,
            "llm_context_tokens": s.llm_context_tokens,
            "llm_strict_tools": s.llm_strict_tools,
            "llm_redact": s.redacts,
        },
        "prompts": prompt_hashes(),
        "tool_schemas_sha256": tool_schema_hash(),
        "plan_request_sha256": plan_request_hash(),
        "git_sha": git_sha(),
        "git_dirty": git_dirty(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def check_replayable(meta: dict[str, Any]) -> None:
    """Fail fast, with the way out, when prompts or tool schemas changed since recording.

    Raises:
        ReplayMismatch: naming what changed.
    """
    changed = []
    now = prompt_hashes()
    for pid, sha in now.items():
        if meta.get("prompts", {}).get(pid) != sha:
            changed.append(
                f"prompt {pid} (recorded {str(meta.get('prompts', {}).get(pid))[:10]}, "
                f"now {sha[:10]})"
            )
    if meta.get("tool_schemas_sha256") != tool_schema_hash():
        changed.append("the tool schemas (a tool's arguments or docstring)")
    if meta.get("plan_request_sha256") != plan_request_hash():
        changed.append("the plan request (the ActionPlan schema or the vocabulary)")
    if changed:
        raise ReplayMismatch(
            "cassettes no longer match: "
            + "; ".join(changed)
            + f" changed since recording; {RERECORD}"
        )


def endpoint_settings(
    meta: dict[str, Any] | None, mode: Literal["offline", "replay", "record", "live"]
) -> Settings:
    """Return the settings a mode runs with: the process's, pointed at its endpoint.

    Nothing in the process environment changes: the service passes these settings to each
    run through its context.
    """
    settings = get_settings()
    if mode == "offline":
        return settings.model_copy(update={"llm_offline": True})
    if mode != "replay":
        return settings
    assert meta is not None
    update: dict[str, Any] = {
        "llm_offline": False,
        "llm_base_url": str(meta["base_url"]),
        "llm_model": str(meta["model"]),
        "llm_api_key": SecretStr("replay"),
        "llm_max_retries": 0,
    }
    for key, value in meta.get("settings", {}).items():
        update[key] = value
    return Settings.model_validate({**settings.model_dump(), **update})


def is_cassette_miss(exc: BaseException) -> bool:
    """Whether a cassette miss is anywhere in the chain (the openai client and the run wrap it)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, CannotOverwriteExistingCassetteException):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


@contextmanager
def cassette(path: Path, mode: Literal["offline", "replay", "record", "live"]) -> Iterator[None]:
    """Record or replay one case's HTTP traffic (nothing for offline and live runs).

    Raises:
        ReplayMismatch: in replay, a request the cassette does not hold.
    """
    if mode in ("offline", "live"):
        yield
        return
    if mode == "replay" and not path.exists():
        raise ReplayMismatch(f"no cassette {path}: {RERECORD}")
    recorder = vcr.VCR(
        record_mode="none" if mode == "replay" else "all",
        match_on=["method", "uri", "body"],
        filter_headers=[
            ("authorization", "REDACTED"),
            ("api-key", "REDACTED"),
            ("x-api-key", "REDACTED"),
        ],
        decode_compressed_response=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with recorder.use_cassette(str(path)):
            yield
    except Exception as exc:
        if is_cassette_miss(exc):
            raise ReplayMismatch(
                f"a request is not in cassette {path} (the run asked something the recording "
                f"never saw); {RERECORD}"
            ) from exc
        raise
