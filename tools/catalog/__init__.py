"""The reviewed action catalog (``actions.yaml``): the only actions a plan may propose."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

CATALOG_FILE = Path(__file__).with_name("actions.yaml")
LeverKind = Literal[
    "add_drivers",
    "defer_orders",
    "cut_dispatch",
    "shift_carrier",
    "reduce_traffic",
    "widen_windows",
    "cut_transit",
    "cut_handover",
    "extend_promises",
]


class Lever(BaseModel):
    """The causal lever an action moves, and its parameter's valid range."""

    kind: LeverKind
    parameter: str
    unit: str
    min: float
    max: float

    @model_validator(mode="after")
    def _range(self) -> Lever:
        if self.min > self.max:
            raise ValueError(f"lever {self.parameter}: min {self.min} > max {self.max}")
        return self


class Cost(BaseModel):
    """Fixed cost plus a cost per unit of the parameter (or per order when ``per`` says so)."""

    fixed: float = Field(ge=0)
    per_unit: float = Field(ge=0)
    per: Literal["unit", "order"] = "unit"


class ActionSpec(BaseModel):
    """One catalog entry."""

    id: str
    title: str
    description: str
    treats: list[str] = Field(min_length=1)
    needs: list[str] = Field(
        default_factory=list,
        description="Graph variables the lever acts through (any one); none: always applies.",
    )
    lever: Lever
    cost: Cost
    lead_time_hours: float = Field(ge=0)
    needs_approval: bool


class Catalog(BaseModel):
    """The whole catalog."""

    version: int
    currency: str
    actions: list[ActionSpec]

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        ids = [a.id for a in self.actions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate action ids: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _known_to_the_graph(self) -> Catalog:
        # Causes and variables are defined once, in the reviewed graph: the catalog may only
        # name what the graph knows.
        from tools.causal.graph import load_graph

        graph = load_graph()
        causes, nodes = set(graph.cause_names), set(graph.nodes)
        problems: list[str] = []
        for a in self.actions:
            problems += [f"{a.id} treats unknown cause {c!r}" for c in a.treats if c not in causes]
            problems += [f"{a.id} needs unknown variable {n!r}" for n in a.needs if n not in nodes]
        if problems:
            raise ValueError("; ".join(problems) + f" (graph causes: {', '.join(sorted(causes))})")
        return self

    def get(self, action_id: str) -> ActionSpec:
        """Return the action with this id.

        Raises:
            KeyError: naming the known ids.
        """
        for action in self.actions:
            if action.id == action_id:
                return action
        raise KeyError(
            f"no action {action_id!r} in the catalog "
            f"(known: {', '.join(a.id for a in self.actions)})"
        )

    def treating(self, cause: str) -> list[ActionSpec]:
        """Actions that treat a root cause."""
        return [a for a in self.actions if cause in a.treats]


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check an action catalog (default: the reviewed ``actions.yaml``).

    Raises:
        ValueError: naming what is wrong with the file.
    """
    if path is None:
        return _default()
    return _read(Path(path))


@lru_cache(maxsize=1)
def _default() -> Catalog:
    return _read(CATALOG_FILE)


def _read(path: Path) -> Catalog:
    try:
        doc = yaml.safe_load(path.read_text())
        return Catalog.model_validate(doc)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"action catalog {path} is invalid: {exc}") from None
