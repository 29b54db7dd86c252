r"""Keep data from the field (store names, driver notes, query rows) from acting as instructions.

* :func:`fence` wraps data for a model as JSON whose ``<``, ``>`` and ``&`` are escaped
  (``\u003c``...), inside ``<data>`` tags: no string in the data can close the fence, open a
  tag or pass for markup, and the JSON still parses to the same values.
* :func:`markup_problems` finds what a plan or answer must not carry: raw HTML, images, and
  links or mentions the evidence did not contain (the Slack and web surfaces would render
  them); :func:`neutralise` removes them from text code writes (the template plan).
"""

from __future__ import annotations

import json
import re
from typing import Any

DATA_NAME = "data"
"""Name of a user message that carries data (the database's facts), not a question."""

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_OPEN, _CLOSE = "<data>", "</data>"


def safe_json(value: Any) -> str:
    """JSON of ``value`` with ``<``, ``>`` and ``&`` escaped (still valid, same values)."""
    text = json.dumps(value, default=str)
    for char, escaped in _ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def fence(value: Any) -> str:
    """Wrap data for a model: ``<data>`` + escaped JSON + ``</data>``."""
    return _OPEN + safe_json(value) + _CLOSE


def unfence(text: str) -> Any:
    """Return the value :func:`fence` wrapped (for readers such as the offline planner).

    Raises:
        ValueError: ``text`` is not a fenced value.
    """
    if not (text.startswith(_OPEN) and text.endswith(_CLOSE)):
        raise ValueError("not fenced data")
    return json.loads(text[len(_OPEN) : -len(_CLOSE)])


_FENCED = re.compile(re.escape(_OPEN) + r"(.*?)" + re.escape(_CLOSE), re.S)


def fenced_values(text: str) -> list[Any]:
    """Return every value fenced in ``text``.

    No fenced JSON contains ``<``, so the first closing tag after an opening one ends it.
    """
    out = []
    for body in _FENCED.findall(text):
        try:
            out.append(json.loads(body))
        except json.JSONDecodeError:  # a prompt naming the tags, not fenced data
            continue
    return out


def compose_data(text: str) -> dict[str, Any]:
    """Return the compose data (``request``, ``tool_results``, ``evidence``) in a prompt.

    Empty when the text carries none.
    """
    for value in fenced_values(text):
        if isinstance(value, dict) and "tool_results" in value:
            return value
    return {}


_HTML = re.compile(r"</?[A-Za-z!][^<>]*>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[[^\]]+\]\(\s*([^)\s]+)[^)]*\)")
# no word boundary before a scheme: "dashboardhttps://..." (brackets stripped) is a link too
_URL = re.compile(r"(?i)(?:https?://|ftp://|\bwww\.)[^\s<>()\"']+|\b(?:mailto|javascript|data):\S+")
_SLACK = re.compile(r"<[@#!][^>]*>")
_MENTION = re.compile(r"(?<![\w.])@(?:here|channel|everyone|[A-Za-z0-9_][\w.-]*)")


def _links(text: str) -> list[str]:
    return [m.rstrip(".,;:") for m in _URL.findall(text)] + _MD_LINK.findall(text)


def markup_problems(text: str, evidence_text: str = "") -> list[str]:
    """List what ``text`` carries that a plan must not: HTML, images, foreign links, mentions.

    Args:
        text: a plan's or answer's text.
        evidence_text: the evidence's text; a link or mention found there may be quoted.

    Returns:
        One short description per kind found (empty: clean).
    """
    problems = []
    if _SLACK.search(text):
        problems.append("a Slack mention or link markup (<@...>, <!...>, <#...>)")
    if _IMAGE.search(text):
        problems.append("an image (![...](...))")
    if _HTML.search(text):
        problems.append("raw HTML")
    foreign = [u for u in _links(text) if u not in evidence_text]
    if foreign:
        problems.append(f"a link the evidence does not contain ({foreign[0][:60]})")
    mentions = [m for m in _MENTION.findall(text) if m not in evidence_text]
    if mentions:
        problems.append(f"a mention the evidence does not contain ({mentions[0][:40]})")
    return problems


def neutralise(text: str, evidence_text: str = "") -> str:
    """Remove what :func:`markup_problems` flags (HTML, images, foreign links and mentions).

    The words around them are kept.
    """
    text = _SLACK.sub("", text)
    text = _IMAGE.sub("", text)
    text = _HTML.sub("", text)
    text = _MD_LINK.sub(lambda m: m.group(0).split("](")[0].lstrip("["), text)
    for url in _links(text):
        if url not in evidence_text:
            text = text.replace(url, "")
    return _MENTION.sub(
        lambda m: m.group(0) if m.group(0) in evidence_text else m.group(0)[1:], text
    )
