"""The monitor's figures of the causal effects' stability (:mod:`tools.causal.stability`)."""

from __future__ import annotations

from agent.storage.monitoring import Figure
from tools.causal.stability import StabilityResult


def stability_figures(result: StabilityResult) -> list[Figure]:
    """Return one figure per cause tested (value: its t), flagged when its effect moved."""
    out = []
    for e in result.effects:
        direction = "more" if e.latest > e.reference_mean else "less"
        out.append(
            Figure(
                day=result.day,
                kind="effects",
                name=e.node,
                value=e.t,
                threshold=result.critical_t,
                flagged=e.flagged,
                severity="warn" if e.flagged else None,
                message=(
                    f"{e.label} now weighs {direction} on the late rate: an effect of "
                    f"{e.latest:.3g} per unit over the {result.window_days} days to "
                    f"{result.day}, against {e.reference_mean:.3g} (SD {e.reference_sd:.2g}) "
                    f"over the {e.windows} windows before (t = {e.t:.1f}, bar "
                    f"{result.critical_t:.1f}: family-wise {result.alpha:g}, Bonferroni over "
                    f"{len(result.effects)} causes); diagnoses learned on earlier data "
                    "credit it with its old effect"
                )
                if e.flagged
                else None,
            )
        )
    return out
