"""The shared vocabulary: root causes, catalog actions and KPIs, each defined once.

* **Causes** come from the reviewed causal graph (``tools/causal/graph.yaml``),
* **actions** from the reviewed action catalog (``tools/catalog/actions.yaml``),
* **KPIs** from the reviewed KPI file (``tools/kpis.yaml``; a KPI that is a graph variable
  takes its missing-feed wording from the graph).

Every other place derives from these: tool argument enums, the plan schema
(:mod:`agent.schemas`), the templates' wording, the eval suites and the synthetic generator.
The ``*Id`` types below are strings checked against the vocabulary, whose JSON schema is an
``enum`` (OpenAI strict mode accepts it), so a model sees the valid values and an unknown
one is an error naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from tools.catalog import load_catalog
from tools.causal.graph import load_graph

KPI_FILE = Path(__file__).with_name("kpis.yaml")
Unit = Literal["share", "pts", "min", "h", "mm", "km", "index", "orders", "per_driver", "count"]


class KpiDef(BaseModel):
    """One KPI: how it is named, shown and where it is available."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str = Field(description="How sentences name it, e.g. 'late rate'.")
    header: str = Field(description="Short table header (may hold a line break).")
    unit: Unit
    query: bool = Field(False, description="`query_kpis` reports it.")
    forecast: bool = Field(False, description="`forecast` predicts it.")
    feed: str | None = Field(None, description="What is missing without its data (graph).")


@lru_cache(maxsize=1)
def kpis() -> dict[str, KpiDef]:
    """Return every KPI by name, in file order.

    Raises:
        ValueError: naming what is wrong with ``kpis.yaml``.
    """
    try:
        doc = yaml.safe_load(KPI_FILE.read_text())
        graph = load_graph()
        out = {}
        for name, spec in doc["kpis"].items():
            node = graph.nodes.get(name)
            # a graph variable is named and fed as the graph says: defined once
            known = {"label": node.label.split(" (")[0], "feed": node.feed} if node else {}
            if node and {"label", "feed"} & set(spec):
                raise ValueError(f"{name}: its label and feed come from the causal graph")
            out[name] = KpiDef.model_validate({"name": name, **known, **spec})
        return out
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"KPI file {KPI_FILE} is invalid: {exc}") from None


def cause_ids() -> list[str]:
    """Return the root causes of the reviewed graph, in graph order."""
    return load_graph().cause_names


def action_ids() -> list[str]:
    """Return the action ids of the reviewed catalog, in catalog order."""
    return [a.id for a in load_catalog().actions]


def query_kpis() -> list[str]:
    """Return the KPIs ``query_kpis`` reports."""
    return [k.name for k in kpis().values() if k.query]


def forecast_kpis() -> list[str]:
    """Return the KPIs ``forecast`` predicts."""
    return [k.name for k in kpis().values() if k.forecast]


def kpi_label(name: str) -> str:
    """Return how sentences name a KPI (the name itself when it is not in the vocabulary)."""
    spec = kpis().get(name)
    return spec.label if spec else name


def one_of(kind: str, values: Sequence[str], *, check: bool = True) -> Any:
    """Return a string type whose JSON schema is an ``enum`` of ``values``.

    Args:
        kind: What the values are, for the error ("root cause").
        values: The vocabulary.
        check: Refuse a value outside it ("unknown root cause 'x'; valid: a, b, ..."). Off
            for records that are stored (a plan): the enum still tells a model the valid
            values, the verifier rejects an unknown one, and a record written before the
            vocabulary changed stays readable.

    Returns:
        ``Annotated[str, ...]`` for a pydantic field.
    """
    allowed = tuple(values)
    schema = WithJsonSchema({"type": "string", "enum": list(allowed)})

    def known(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(allowed)}")
        return value

    if not check:
        return Annotated[str, schema]
    return Annotated[str, AfterValidator(known), schema]


CauseId = one_of("root cause", cause_ids())
"""A root cause of the reviewed graph."""
ActionId = one_of("catalog action", action_ids())
"""An action id of the reviewed catalog."""
PlanCause = one_of("root cause", cause_ids(), check=False)
"""A plan's root cause: the graph's causes in its schema, checked by the verifier."""
PlanAction = one_of("catalog action", action_ids(), check=False)
"""A plan's action id: the catalog's ids in its schema, checked by the verifier."""
QueryKpi = one_of("KPI", query_kpis())
"""A KPI ``query_kpis`` reports."""
ForecastKpi = one_of("forecastable KPI", forecast_kpis())
"""A KPI ``forecast`` predicts."""
