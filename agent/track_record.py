"""What an action's track record does to a plan: a caveat when its estimates were corrected.

``recommend_actions`` corrects the estimate of an action whose dispatched outcomes say it
has been over- or under-promising (:mod:`tools.catalog.calibration`) and marks it. Code adds
the caveat to every plan (template or model-written) that proposes such an action, so no
plan presents a corrected figure as the model's own. Caveats carry no numbers; ``lastmile
monitor`` has them.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.results import ToolResult
from agent.schemas import ActionPlan
from tools.catalog import load_catalog

CAVEAT_START = "Track record of "
"""How the caveat begins (one per corrected action)."""


def corrected_actions(results: Sequence[ToolResult]) -> dict[str, str]:
    """Return action id -> its calibration note, for actions a recommendation corrected."""
    out: dict[str, str] = {}
    for r in results:
        if r.tool != "recommend_actions":
            continue
        for a in r.result.get("actions", []):
            if a.get("calibration"):
                out.setdefault(str(a["action_id"]), str(a["calibration"]))
    return out


_WHY = {
    "over-promising": "over-promising: its approved actions realised less than promised, "
    "below their intervals more often than those intervals allow",
    "under-promising": "under-promising: its approved actions realised more than promised, "
    "above their intervals more often than those intervals allow",
}


def _caveat(action_id: str, note: str) -> str:
    how = note.split(":")[0]
    why = _WHY.get(
        how,
        "uncalibrated: its approved actions' realised effects fell outside their intervals "
        "too often",
    )
    return (
        f"{CAVEAT_START}{action_id}: its impact estimates are {why}; the expected effect and "
        "interval shown are corrected by those outcomes, and `lastmile monitor` has the figures."
    )


def with_track_record(plan: ActionPlan, results: Sequence[ToolResult]) -> ActionPlan:
    """Return ``plan`` with a caveat for each action it proposes or quotes that was corrected.

    Idempotent: an action already named in a track-record caveat gets no second one.
    """
    corrected = corrected_actions(results)
    # proposed, or quoted in words (an answer about a past day names it without proposing)
    text = " ".join([plan.summary, *(f.text for f in plan.findings)]).lower()
    catalog = load_catalog()
    quoted = [a for a in corrected if a in text or catalog.get(a).title.lower() in text]
    proposed = [a.action_id for a in plan.actions if a.action_id in corrected] + quoted
    missing = [
        a
        for a in dict.fromkeys(proposed)
        if not any(c.startswith(f"{CAVEAT_START}{a}:") for c in plan.caveats)
    ]
    if not missing:
        return plan
    caveats = [*plan.caveats, *(_caveat(a, corrected[a]) for a in missing)]
    return plan.model_copy(update={"caveats": caveats})
