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


class CausalGraph(BaseModel):
    """The graph file's content, checked: a DAG whose nodes are declared and reach the target."""

    version: int
    target: str
    nodes: dict[str, NodeSpec]
    edges: list[tuple[str, str]]

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
        return self

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

    def node_for(self, cause: str) -> str:
        """Return the node that carries a cause name."""
        for node, name in self.causes.items():
            if name == cause:
                return node
        raise KeyError(f"no node carries cause {cause!r}")

    @property
    def fingerprint(self) -> str:
        """Hash of the structure (target, nodes, edges).

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
