"""Load and check the reviewed causal graph (``graph.yaml``)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import networkx as nx
import yaml
from pydantic import BaseModel, Field, model_validator

GRAPH_FILE = Path(__file__).with_name("graph.yaml")


class NodeSpec(BaseModel):
    """A variable of the graph."""

    cause: str | None = Field(None, description="Root-cause name when this node can be one.")
    label: str
    feed: str | None = Field(
        None, description="What is missing when the node has no data (e.g. 'no weather feed')."
    )
    regional: bool = Field(
        False,
        description="Measured per region (the conditions feed): the same for every store of "
        "a region, so at a store it is the regional event's share, not the store's own.",
    )


class Identity(BaseModel):
    """An edge whose coefficient is known by definition: the mean of a measured column."""

    source: str
    target: str
    coefficient: str = Field(description="Cell column whose mean is the edge's coefficient.")


class CausalGraph(BaseModel):
    """The graph file's content, checked: a DAG whose nodes are declared and reach the target."""

    version: int
    target: str
    causes_named: dict[str, str] = Field(
        default_factory=dict, alias="causes", description="Root cause -> how plans name it."
    )
    nodes: dict[str, NodeSpec]
    edges: list[tuple[str, str]]
    identities: list[Identity] = Field(default_factory=list)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _check(self) -> CausalGraph:
        unknown = {n for e in self.edges for n in e} - set(self.nodes)
        if unknown:
            raise ValueError(f"edges use undeclared nodes: {', '.join(sorted(unknown))}")
        if self.target not in self.nodes:
            raise ValueError(f"target {self.target!r} is not a node")
        graph = self.digraph()
        if not nx.is_directed_acyclic_graph(graph):
            cycle = nx.find_cycle(graph)
            raise ValueError(f"the graph has a cycle: {cycle}")
        for name in self.causes:
            if not nx.has_path(graph, name, self.target):
                raise ValueError(f"cause node {name!r} has no path to {self.target!r}")
        for identity in self.identities:
            if (identity.source, identity.target) not in set(self.edges):
                raise ValueError(
                    f"identity {identity.source} -> {identity.target} is not an edge of the graph"
                )
        unnamed = sorted(set(self.causes.values()) - set(self.causes_named))
        if self.causes_named and unnamed:
            raise ValueError(f"causes without a name under 'causes:': {', '.join(unnamed)}")
        return self

    def cause_label(self, cause: str) -> str:
        """How plans name a root cause (the cause id itself when unnamed)."""
        return self.causes_named.get(cause, cause.replace("_", " "))

    def digraph(self) -> nx.DiGraph:
        """Return the graph as networkx."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from(self.edges)
        return graph

    @property
    def causes(self) -> dict[str, str]:
        """Candidate root-cause nodes: node -> cause name."""
        return {n: s.cause for n, s in self.nodes.items() if s.cause}

    @property
    def regional_causes(self) -> set[str]:
        """Causes measured per region (weather, traffic): shared by a region's stores."""
        return {s.cause for s in self.nodes.values() if s.cause and s.regional}

    @property
    def cause_names(self) -> list[str]:
        """Every root-cause name, in node order, once."""
        return list(dict.fromkeys(self.causes.values()))

    def node_for(self, cause: str) -> str:
        """Return the (first) node that carries a cause name."""
        for node, name in self.causes.items():
            if name == cause:
                return node
        raise KeyError(f"no node carries cause {cause!r}")

    def nodes_for(self, cause: str) -> list[str]:
        """Return every node that carries a cause name, in graph order."""
        return [node for node, name in self.causes.items() if name == cause]

    def without(self, dropped: set[str]) -> CausalGraph:
        """Return the graph with ``dropped`` nodes marginalised out.

        A dropped node's parents act on its children directly (without staffing data, volume
        acts on lateness without the load-per-driver mediator), so causal order is kept.

        Raises:
            ValueError: when the target itself is dropped.
        """
        if self.target in dropped:
            raise ValueError(f"the target {self.target!r} cannot be dropped")
        graph = self.digraph()
        for node in [n for n in self.nodes if n in dropped]:
            parents = list(graph.predecessors(node))
            children = list(graph.successors(node))
            graph.add_edges_from((p, c) for p in parents for c in children)
            graph.remove_node(node)
        return CausalGraph(
            version=self.version,
            target=self.target,
            causes=self.causes_named,
            nodes={n: s for n, s in self.nodes.items() if n not in dropped},
            edges=[(a, b) for a, b in self.edges if a in graph and b in graph]
            + sorted((a, b) for a, b in graph.edges if (a, b) not in set(self.edges)),
            identities=[i for i in self.identities if i.source in graph and i.target in graph],
        )

    @property
    def fingerprint(self) -> str:
        """Hash of the structure (target, nodes, edges, identities).

        Fitted models are cached by it, so an edited graph is never served a model fitted on
        the old one, whatever its version number says.
        """
        doc = self.model_dump(mode="json", exclude={"version"})
        doc["edges"] = sorted(doc["edges"])
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def parents(self, node: str) -> list[str]:
        """Direct causes of ``node``."""
        return sorted(self.digraph().predecessors(node))


def load_graph(path: str | Path | None = None) -> CausalGraph:
    """Read and check a causal graph file (default: the reviewed ``graph.yaml``).

    Raises:
        ValueError: naming what is wrong with the file.
    """
    if path is None:
        return _default_graph()
    return _read(Path(path))


@lru_cache(maxsize=1)
def _default_graph() -> CausalGraph:
    return _read(GRAPH_FILE)


def _read(path: Path) -> CausalGraph:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read causal graph {path}: {exc}") from None
    try:
        return CausalGraph.model_validate(doc)
    except ValueError as exc:
        raise ValueError(f"causal graph {path} is invalid: {exc}") from None
