"""Mark data from the field (store names, driver notes, query rows) as data, not instructions."""

from __future__ import annotations


def untrusted(text: str) -> str:
    """Wrap data for the model; any closing tag inside the data is neutralised."""
    return "<untrusted>" + text.replace("</untrusted>", "</ untrusted>") + "</untrusted>"


def strip_untrusted(text: str) -> str:
    """Return the data inside :func:`untrusted`'s wrapping (for deterministic readers)."""
    if text.startswith("<untrusted>") and text.endswith("</untrusted>"):
        return text[len("<untrusted>") : -len("</untrusted>")]
    return text
