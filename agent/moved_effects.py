"""What a moved causal effect does to a plan: a caveat on the causes the monitor flagged.

``lastmile monitor`` opens an ``effects`` alert when a cause's effect on the late rate left
the range its earlier windows predict (:mod:`tools.causal.stability`). A diagnosis still
weighs that cause with the effect learned on the data before, so code adds a caveat to every
plan (template or model-written) whose causes include it, while the alert is open. Caveats
carry no numbers; the monitor's report has them.
"""

from __future__ import annotations

from agent.schemas import ActionPlan

CAVEAT_START = "Monitor: the effect of "
"""How the caveat begins (one per moved cause the plan names)."""


def with_moved_effects(plan: ActionPlan, moved: dict[str, str]) -> ActionPlan:
    """Return ``plan`` with a caveat for each hypothesis variable whose effect moved.

    Args:
        plan: the composed plan.
        moved: graph variable -> its label, for the open ``effects`` alerts.

    Idempotent: a variable already named in a caveat gets no second one.
    """
    named = [h.variable for h in plan.hypotheses if h.variable in moved]
    missing = [
        v
        for v in dict.fromkeys(named)
        if v is not None
        and not any(c.startswith(f"{CAVEAT_START}{moved[v]} ") for c in plan.caveats)
    ]
    if not missing:
        return plan
    caveats = [
        *plan.caveats,
        *(
            f"{CAVEAT_START}{moved[v]} on the late rate has moved away from its earlier level "
            "(an open monitor alert): this diagnosis weighs it as learned on earlier data, so "
            "its share may be off; `lastmile monitor` has the figures."
            for v in missing
        ),
    ]
    return plan.model_copy(update={"caveats": caveats})
