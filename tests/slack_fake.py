"""A local fake of the Slack Web API, Slack's request signing, and the payloads Slack sends.

:class:`FakeSlack` serves ``/api/<method>`` on 127.0.0.1 for ``slack_sdk`` clients
(``base_url=slack.url``), records every call, keeps posted messages and uploaded files, and can
hold or fail calls. :func:`sign` signs a body the way Slack does (v0), computed here rather than
by ``slack_sdk``; the builders (:func:`event_callback`, :func:`block_action`, ...) make the
bodies Slack posts to an app's Request URL.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

BOT_USER, BOT_ID, TEAM, APP = "UBOT", "BBOT", "T0001", "A0001"
VERIFICATION_TOKEN = "verification-token"
JSON_FIELDS = ("blocks", "attachments", "files", "metadata")
"""Form fields whose values Slack parses as JSON."""
_TS = itertools.count(1)


def new_ts() -> str:
    """Return a new message ``ts``, later than any before (from 2026-01-01T00:00:00Z on)."""
    micros = next(_TS) * 100
    return f"{1767225600 + micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass
class Call:
    """One request the fake received (``headers`` have lower-case names)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    seq: int
    path: str = ""


@dataclass
class Upload:
    """A file upload: announced (files.getUploadURLExternal), sent, then completed."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None = None
    data: bytes | None = None
    """The bytes posted to the upload URL (``None`` until then)."""
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


class SlackError(Exception):
    """A method's ``ok: false`` answer."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class FakeSlack:
    """The Slack Web API on a free local port, in a daemon thread.

    Use it as a context manager, or call :meth:`close`. State a test may set: ``usergroups``
    (usergroup id -> user ids), ``channel_members`` (channel -> user ids) and ``users`` (user id
    -> fields overriding the default profile).
    """

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.uploads: dict[str, Upload] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channel_members: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.reactions: list[tuple[str, str, str]] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._fails: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self.url = self.base + "api/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def __enter__(self) -> FakeSlack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release held calls and stop the server."""
        for event in list(self._holds.values()):
            event.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def calls_to(self, method: str) -> list[Call]:
        """Return the calls to ``method`` so far, in order."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        """Block until ``count`` calls to ``method`` were recorded, and return them.

        Raises:
            AssertionError: on timeout, listing the calls so far.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls_to(method)) >= count, timeout):
                seen = [(c.method, c.params) for c in self.calls]
                raise AssertionError(f"{count} call(s) to {method} expected; calls: {seen}")
            return self.calls_to(method)

    def hold(self, method: str) -> threading.Event:
        """Make calls to ``method`` wait (recorded, unanswered) until the event is set."""
        event = threading.Event()
        with self._lock:
            self._holds[method] = event
        return event

    def fail(self, method: str, error: str = "ratelimited", times: int = 1) -> None:
        """Answer the next ``times`` calls to ``method`` with ``ok: false`` and ``error``.

        ``ratelimited`` comes as HTTP 429 with ``Retry-After: 1``, as Slack sends it.
        """
        with self._lock:
            self._fails.setdefault(method, []).extend([error] * times)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored messages (optionally of one channel) in post order."""
        with self._lock:
            found = [m for (ch, _), m in self._messages.items() if channel in (None, ch)]
            return copy.deepcopy(found)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Return a copy of the stored message ``(channel, ts)``, if any."""
        with self._lock:
            return copy.deepcopy(self._messages.get((channel, ts)))

    def new_response_url(self) -> str:
        """Return a fresh ``response_url`` served by this fake."""
        return f"{self.base}response/{TEAM}/{next(self._ids)}/{secrets.token_hex(8)}"

    def _record(
        self, method: str, params: dict[str, Any], headers: dict[str, str], path: str
    ) -> Call:
        with self._changed:
            call = Call(method, params, headers, next(self._seq), path)
            self.calls.append(call)
            self._changed.notify_all()
            return call

    def _serve(
        self, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one API call: ``(HTTP status, body, extra headers)``."""
        auth = headers.get("authorization", "")
        if self.token not in (auth.removeprefix("Bearer "), params.get("token")):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        with self._lock:
            hold = self._holds.get(method)
        if hold is not None:
            hold.wait()
        with self._lock:
            pending = self._fails.get(method)
            error = pending.pop(0) if pending else None
        if error == "ratelimited":
            return 429, {"ok": False, "error": error}, {"Retry-After": "1"}
        if error is not None:
            return 200, {"ok": False, "error": error}, {}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        try:
            with self._lock:
                return 200, copy.deepcopy({"ok": True, **handler(params)}), {}
        except SlackError as exc:
            return 200, {"ok": False, "error": exc.error}, {}

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://example.slack.com/", "team": "Example", "user": "lastmile",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID,
                "is_enterprise_install": False}  # fmt: skip

    def _message(self, p: dict[str, Any], ts: str) -> dict[str, Any]:
        message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP,
                   "team": TEAM, "text": p.get("text", ""), "ts": ts}  # fmt: skip
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if p.get(key) is not None:
                message[key] = p[key]
        return message

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        check_blocks(p.get("blocks"))
        if not p.get("channel"):
            raise SlackError("channel_not_found")
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            raise SlackError("no_text")
        ts = new_ts()
        self._messages[(p["channel"], ts)] = message = self._message(p, ts)
        return {"channel": p["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        check_blocks(p.get("blocks"))
        old = self._messages.get((p.get("channel", ""), p.get("ts", "")))
        if old is None:
            raise SlackError("message_not_found")
        kept: dict[str, Any] = {k: old[k] for k in ("blocks", "attachments") if k in old}
        new = self._message({**kept, **p, "thread_ts": old.get("thread_ts")}, old["ts"])
        old.clear()
        old.update(new, edited={"user": BOT_USER, "ts": new_ts()})
        return {"channel": p["channel"], "ts": p["ts"], "text": old["text"], "message": old}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        check_blocks(p.get("blocks"))
        return {"message_ts": new_ts()}

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        ch, ts = p.get("channel", ""), p.get("message_ts", "")
        link = f"https://example.slack.com/archives/{ch}/p{ts.replace('.', '')}"
        return {"channel": ch, "permalink": link}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):010d}"
        upload = Upload(file_id, p["filename"], int(p["length"]), alt_txt=p.get("alt_txt"))
        self.uploads[file_id] = upload
        return {"upload_url": f"{self.base}upload/{file_id}", "file_id": file_id}

    def _file(self, u: Upload) -> dict[str, Any]:
        return {"id": u.file_id, "name": u.filename, "title": u.title or u.filename,
                "alt_txt": u.alt_txt, "size": u.length, "user": BOT_USER,
                "channels": [u.channel_id] if u.channel_id else [],
                "permalink": f"https://example.slack.com/files/{BOT_USER}/{u.file_id}"}  # fmt: skip

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        items = p.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        done = [self.uploads.get(str(item.get("id"))) for item in items]
        if any(u is None or u.data is None for u in done):
            raise SlackError("file_not_found")
        for item, u in zip(items, done, strict=True):
            assert u is not None
            u.title, u.channel_id = item.get("title") or u.filename, p.get("channel_id")
            u.thread_ts, u.initial_comment = p.get("thread_ts"), p.get("initial_comment")
            u.completed = True
        return {"files": [self._file(u) for u in done if u is not None]}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        upload = self.uploads.get(p.get("file", ""))
        if upload is None or not upload.completed:
            raise SlackError("file_not_found")
        return {"file": self._file(upload)}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("usergroup") not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[p["usergroup"]])}

    def _m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        members = self.channel_members.get(p.get("channel", ""))
        if members is None:
            raise SlackError("channel_not_found")
        cursor, limit = p.get("cursor") or "", int(p.get("limit") or 100)
        try:
            start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
        except (ValueError, IndexError) as exc:
            raise SlackError("invalid_cursor") from exc
        end = start + limit
        more = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(members) else ""
        return {"members": members[start:end], "response_metadata": {"next_cursor": more}}

    def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p.get("channel", ""), p.get("timestamp", ""), p.get("name", ""))
        if key in self.reactions:
            raise SlackError("already_reacted")
        self.reactions.append(key)
        return {}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = p.get("user", "")
        if not uid:
            raise SlackError("user_not_found")
        user = {"id": uid, "team_id": TEAM, "name": uid.lower(), "real_name": f"User {uid}",
                "tz": "Europe/London", "tz_label": "Greenwich Mean Time", "tz_offset": 0,
                "is_bot": False, "deleted": False}  # fmt: skip
        return {"user": {**user, **self.users.get(uid, {})}}


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return dict(json.loads(raw or b"{}"))
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    return {}


def _upload_bytes(raw: bytes, content_type: str) -> bytes:
    """The file in an upload: the raw body, or the file part of a multipart body."""
    if not content_type.startswith("multipart/form-data"):
        return raw
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    msg = BytesParser(policy=HTTP).parsebytes(head + raw)
    parts = list(msg.iter_parts())
    part = next((p for p in parts if p.get_filename()), parts[0] if parts else None)
    return b"" if part is None else bytes(part.get_payload(decode=True) or b"")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _reply(self, status: int, body: bytes, ctype: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": ctype, **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ctype = headers.get("content-type", "")
        if url.path.startswith("/upload/"):
            file_id = url.path.removeprefix("/upload/")
            data = _upload_bytes(raw, ctype)
            with fake._lock:
                upload = fake.uploads.get(file_id)
                if upload is not None:
                    upload.data = data
            fake._record("upload", {"file_id": file_id, "length": len(data)}, headers, url.path)
            if upload is None:
                return self._reply(404, b"file not found", "text/plain", {})
            return self._reply(200, f"OK - {len(data)}".encode(), "text/plain", {})
        if url.path.startswith("/response/"):
            fake._record("response_url", _parse(raw, "application/json"), headers, url.path)
            return self._reply(200, b'{"ok":true}', "application/json", {})
        if not url.path.startswith("/api/"):
            return self._reply(404, b"not found", "text/plain", {})
        params: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        params.update(_parse(raw, ctype))
        for key in JSON_FIELDS:
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        method = url.path.removeprefix("/api/")
        fake._record(method, params, headers, url.path)
        status, body, extra = fake._serve(method, params, headers)
        self._reply(status, json.dumps(body).encode(), "application/json; charset=utf-8", extra)

    do_GET = do_POST = _handle


LIMITS = {"blocks": 50, "section": 3000, "header": 150, "button": 75, "value": 2000}
"""Block Kit limits Slack enforces (https://docs.slack.dev/reference/block-kit/blocks)."""


def _text_ok(obj: Any, limit: int) -> bool:
    return isinstance(obj, dict) and 0 < len(str(obj.get("text", ""))) <= limit


def check_blocks(blocks: Any) -> None:
    """Refuse blocks Slack would refuse (``invalid_blocks``): sizes, empty texts, counts."""
    if blocks is None or blocks == []:
        return
    if not isinstance(blocks, list) or len(blocks) > LIMITS["blocks"]:
        raise SlackError("invalid_blocks")
    for b in blocks:
        kind = b.get("type")
        ok = True
        if kind == "section":
            ok = _text_ok(b.get("text"), LIMITS["section"])
        elif kind == "header":
            ok = _text_ok(b.get("text"), LIMITS["header"]) and b["text"]["type"] == "plain_text"
        elif kind == "context":
            ok = 0 < len(b.get("elements", [])) <= 10 and all(
                _text_ok(e, LIMITS["section"]) for e in b["elements"]
            )
        elif kind == "actions":
            ok = 0 < len(b.get("elements", [])) <= 25 and all(
                _text_ok(e.get("text"), LIMITS["button"])
                and len(str(e.get("value", ""))) <= LIMITS["value"]
                for e in b["elements"]
            )
        if not ok or len(str(b.get("block_id", ""))) > 255:
            raise SlackError("invalid_blocks")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Sign a request body the way Slack does (v0).

    Args:
        body: The raw request body.
        secret: The app's signing secret.
        timestamp: Unix seconds of the request (default: now).

    Returns:
        The ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def event_callback(
    event: dict[str, Any], *, event_id: str, team_id: str = TEAM, api_app_id: str = APP
) -> tuple[bytes, str]:
    """Wrap an event in the Events API envelope Slack posts to the Request URL.

    Returns:
        The JSON body and its content type.
    """
    envelope = {
        "token": VERIFICATION_TOKEN, "team_id": team_id, "api_app_id": api_app_id,
        "event": event, "type": "event_callback", "event_id": event_id,
        "event_time": int(time.time()), "event_context": f"4-{secrets.token_hex(8)}",
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }  # fmt: skip
    return json.dumps(envelope).encode(), "application/json"


def _message_event(
    kind: str, text: str, user: str, channel: str, ts: str | None, thread_ts: str | None
) -> dict[str, Any]:
    ts = ts or new_ts()
    event = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel,
             "event_ts": ts, "team": TEAM, "client_msg_id": secrets.token_hex(16)}  # fmt: skip
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def mention_event(
    text: str, *, user: str = "U1", channel: str = "C1", ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return an ``app_mention`` event; ``text`` gets the ``<@UBOT> `` prefix if it lacks one."""
    text = text if text.startswith(f"<@{BOT_USER}>") else f"<@{BOT_USER}> {text}"
    return _message_event("app_mention", text, user, channel, ts, thread_ts)


def dm_event(
    text: str, *, user: str = "U1", channel: str = "D1", ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return a ``message`` event in a direct message (``channel_type`` ``im``)."""
    return {**_message_event("message", text, user, channel, ts, thread_ts), "channel_type": "im"}


def thread_reply_event(
    text: str, *, thread_ts: str, user: str = "U1", channel: str = "C1", ts: str | None = None,
    parent_user_id: str = BOT_USER,
) -> dict[str, Any]:  # fmt: skip
    """Return a ``message`` event replying in a channel thread."""
    event = _message_event("message", text, user, channel, ts, thread_ts)
    return {**event, "channel_type": "channel", "parent_user_id": parent_user_id}


def block_action(
    action_id: str, value: str, *, user: str = "U1", channel: str = "C1", message_ts: str,
    thread_ts: str | None = None, block_id: str = "b", response_url: str | None = None,
    fake: FakeSlack | None = None,
) -> tuple[bytes, str]:  # fmt: skip
    """Build the ``block_actions`` interaction Slack posts when a button is clicked.

    Args:
        action_id: The button's ``action_id``.
        value: The button's ``value``.
        user: Who clicked.
        channel: The message's channel.
        message_ts: The ``ts`` of the message holding the button.
        thread_ts: The message's thread, if it is in one.
        block_id: The ``block_id`` of the button's block.
        response_url: The payload's ``response_url`` (default: one of ``fake``, or a dummy).
        fake: A :class:`FakeSlack`: serves the ``response_url`` and supplies the message.

    Returns:
        The form body (``payload=<json>``) and its content type.
    """
    if response_url is None:
        response_url = fake.new_response_url() if fake else "https://hooks.slack.com/actions/x"
    stored = fake.message(channel, message_ts) if fake else None
    message = stored or {"type": "message", "user": BOT_USER, "bot_id": BOT_ID,
                         "ts": message_ts, "text": "", "blocks": []}  # fmt: skip
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    now = time.time()
    payload: dict[str, Any] = {
        "type": "block_actions", "api_app_id": APP, "token": VERIFICATION_TOKEN,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": f"{int(now)}.1.{secrets.token_hex(16)}", "team": {"id": TEAM},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel.lower()}, "message": message,
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value,
                     "type": "button", "action_ts": f"{now:.6f}"}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


def url_verification(challenge: str) -> tuple[bytes, str]:
    """Build the ``url_verification`` request Slack sends when the Request URL is set."""
    body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return json.dumps(body).encode(), "application/json"
