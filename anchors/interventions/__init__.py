"""Attention knockout and head scaling: declarative specs, per-layer plans and the pure-torch edits."""

from .plan import HeadScalePlan, LayerPlan, RoleEdges, cut_layers, plan_layers
from .specs import HeadScale, Intervention, Knockout, from_json, to_json

__all__ = ["HeadScale", "HeadScalePlan", "Intervention", "Knockout", "LayerPlan", "RoleEdges", "cut_layers", "from_json",
           "plan_layers", "to_json"]
