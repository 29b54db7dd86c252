"""Real servers for tests: a throwaway PostgreSQL cluster.

Without the server binaries a test that needs one skips, saying how to install them; under
``CI=true`` it fails instead (``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_HINT = "PostgreSQL server binaries are missing: `apt-get install postgresql` (Debian)"


def missing(hint: str) -> None:
    """Skip the test on a laptop; fail it under ``CI=true``, where nothing may be missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(hint)
    pytest.skip(hint)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary folder; yield its URL; stop and remove it.

    PostgreSQL refuses to run as root, so under root (CI) the cluster runs as the
    ``postgres`` user the Debian package creates.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        missing(POSTGRES_HINT)
    assert initdb is not None and pg_ctl is not None
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="lastmile-pg-")
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = Path(root) / "data", _free_port()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "lastmile", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", f"{root}/log", "-w", "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://lastmile@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


class WebhookSink:
    """A local HTTP receiver of dispatched actions: counts every request it gets.

    ``fail_next`` answers that many requests with HTTP 503 first (a receiver that is down).
    """

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.requests: list[dict[str, object]] = []
        self.fail_next = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    failing = sink.fail_next > 0
                    sink.fail_next -= 1 if failing else 0
                    sink.requests.append(
                        {
                            "key": self.headers.get("Idempotency-Key"),
                            "auth": self.headers.get("Authorization"),
                            "body": json.loads(body),
                            "failed": failing,
                        }
                    )
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/actions"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def acknowledged(self, key_prefix: str = "") -> list[dict[str, object]]:
        """Return the requests answered 2xx whose key starts with ``key_prefix``."""
        with self._lock:
            return [
                r for r in self.requests if not r["failed"] and str(r["key"]).startswith(key_prefix)
            ]

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Served:
    """A running ``lastmile serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, kill: bool = False) -> None:
        """Stop it: SIGTERM (or SIGKILL, a crash), then wait."""
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_lastmile(
    db: Path, state_db: Path, *, host: str = "127.0.0.1", env: dict[str, str] | None = None
) -> Served:
    """Start ``lastmile serve`` in a subprocess; return once /healthz answers."""
    import sys
    import time
    import urllib.request

    port = _free_port()
    exe = Path(sys.executable).parent / "lastmile"
    log = Path(tempfile.mkstemp(prefix="lastmile-serve-", suffix=".log")[1])
    args = ["serve", "--host", host, "--port", str(port), "--db", str(db)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(exe), *args, "--state-db", str(state_db)],
            env={**os.environ, **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"lastmile serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{served.url}/healthz", timeout=2):
                return served
        except OSError:
            if time.monotonic() > deadline:
                served.stop(kill=True)
                raise
            time.sleep(0.2)


@contextmanager
def lastmile_server(
    db: Path, state_db: Path, *, host: str = "127.0.0.1", env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``lastmile serve`` for the block; yield its base URL."""
    served = start_lastmile(db, state_db, host=host, env=env)
    try:
        yield served.url
    finally:
        served.stop()
