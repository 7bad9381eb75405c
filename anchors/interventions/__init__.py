"""Attention knockout and head scaling: declarative specs plus the pure-torch edits behind them."""

from .specs import ROLE_GROUPS, HeadScale, Intervention, Knockout, expand_role, from_json, plan_layers, to_json

__all__ = ["ROLE_GROUPS", "HeadScale", "Intervention", "Knockout", "expand_role", "from_json", "plan_layers", "to_json"]
