"""Who may decide an action: approver scopes per user (``LASTMILE_APPROVERS``).

A scope is ``*`` (every action), ``region:<id>`` (actions on the region or any of its
stores) or ``store:<id>`` (actions on that store). With no approvers configured, every
signed-in user may decide: a single-team install needs no set-up. The service checks this
for every surface, so the web page, the Slack bot and the CLI cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def may_decide(
    approvers: Mapping[str, Sequence[str]],
    user: str,
    target: str | None,
    region_of: Mapping[str, str],
) -> bool:
    """Tell whether ``user`` may decide an action on ``target`` (a store, region or chain).

    Args:
        approvers: user -> scopes; empty means everyone may decide.
        user: who decides.
        target: the action's store or region id (None or ``all``: the whole chain, which
            only ``*`` covers).
        region_of: store id -> region id, from the data's catalog.
    """
    if not approvers:
        return True
    scopes = set(approvers.get(user, ()))
    if "*" in scopes:
        return True
    if target is None or target == "all":
        return False
    region = region_of.get(target, target)  # a region's own id is its region
    return f"store:{target}" in scopes or f"region:{region}" in scopes


def allowed_scopes(approvers: Mapping[str, Sequence[str]], user: str) -> str:
    """Say what ``user`` may decide, for an error message."""
    scopes = list(approvers.get(user, ()))
    return ", ".join(scopes) if scopes else "nothing (not in LASTMILE_APPROVERS)"
