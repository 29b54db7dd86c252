"""Synthetic last-mile worlds from a known structural causal model, with ground truth."""

from tools.data.synthetic.config import (
    CAUSES,
    DataGap,
    IncidentSpec,
    MechanismShift,
    ScmParams,
    WorldConfig,
    load_incident_specs,
)
from tools.data.synthetic.generator import World, build_world, generate_world

__all__ = [
    "CAUSES",
    "DataGap",
    "MechanismShift",
    "IncidentSpec",
    "ScmParams",
    "World",
    "WorldConfig",
    "build_world",
    "generate_world",
    "load_incident_specs",
]
