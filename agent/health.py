"""What a run's data-health check does to its plan: a caveat, and one step less confidence.

Code applies it to every plan (template or model-written) before the verifier sees it, so
no model can leave out that the data was in doubt; :mod:`agent.coherence` checks it held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.results import ToolResult
from agent.schemas import ActionPlan, Confidence

CAVEAT_START = "Data health on "
"""How the data-health caveat begins (the verifier finds it by this)."""

_LOWER: dict[Confidence, Confidence] = {"high": "medium", "medium": "low", "low": "low"}


def health_doubts(results: Sequence[ToolResult]) -> dict[str, Any] | None:
    """Return the run's first data-health result with findings worse than info, if any.

    The first one is the guardrail's (on the run's own day); a later call by the model about
    another day does not change how far this run's conclusions can be trusted.
    """
    checks = [r for r in results if r.tool == "check_data_health"]
    if not checks or checks[0].result.get("trusted", True):
        return None
    return checks[0].result


def health_caveat(result: dict[str, Any]) -> str:
    """Return the plan's caveat for an untrusted day: what was found, in words (no numbers)."""
    labels = [f["label"] for f in result["findings"] if f["severity"] != "info"]
    shown = "; ".join(labels[:4]) + (" and more" if len(labels) > 4 else "")
    return (
        f"{CAVEAT_START}{result['day']}: {shown}. Conclusions that rest on these figures are "
        "less certain, and every cause's confidence is one step lower; `lastmile monitor` "
        "has the details."
    )


def with_health(plan: ActionPlan, results: Sequence[ToolResult]) -> ActionPlan:
    """Return ``plan`` with the data-health caveat and lowered confidence, when in doubt.

    Idempotent: a plan that already carries the caveat is returned as it is.
    """
    doubts = health_doubts(results)
    if doubts is None or any(c.startswith(CAVEAT_START) for c in plan.caveats):
        return plan
    hypotheses = [
        h.model_copy(update={"confidence": _LOWER[h.confidence]}) for h in plan.hypotheses
    ]
    return plan.model_copy(
        update={"caveats": [*plan.caveats, health_caveat(doubts)], "hypotheses": hypotheses}
    )


def health_problems(plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Check that a run whose data was in doubt says so in its plan's caveats (verifier)."""
    checks = [e for e in evidence.values() if e.get("tool") == "check_data_health"]
    if not checks or checks[0].get("numbers", {}).get("trusted", True):
        return []
    if any(c.startswith(CAVEAT_START) for c in plan.caveats):
        return []
    return [
        f"the data-health check ({checks[0]['id']}) found problems: the plan must say so in "
        "its caveats"
    ]
