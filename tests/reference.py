"""Independent reference computations with plain PyTorch forward hooks (no nnsight)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from anchors.tracer.adapters import Adapter


def first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


@contextmanager
def hooked(module: torch.nn.Module, adapter: Adapter) -> Iterator[dict]:
    """Record, per layer, the layer input/output, attention update, mid residual, o_proj in/out."""
    store: dict = {}
    handles = []

    def pre(name: str, i: int):
        def hook(mod, args, kwargs):
            store[(name, i)] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        return hook

    def post(name: str, i: int):
        def hook(mod, args, output):
            store[(name, i)] = first(output).detach().clone()
        return hook

    for i in range(adapter.shape.n_layers):
        handles += [
            adapter.layer(module, i).register_forward_pre_hook(pre("resid_pre", i), with_kwargs=True),
            adapter.layer(module, i).register_forward_hook(post("resid_post", i)),
            adapter.attn_out(module, i).register_forward_hook(post("attn_out", i)),
            adapter.mid_norm(module, i).register_forward_pre_hook(pre("resid_mid", i), with_kwargs=True),
            adapter.out_proj(module, i).register_forward_pre_hook(pre("z", i), with_kwargs=True),
            adapter.out_proj(module, i).register_forward_hook(post("o_proj_out", i)),
            adapter.mlp(module, i).register_forward_hook(post("mlp_out", i)),
        ]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def run_hooked(module: torch.nn.Module, adapter: Adapter, inputs: Any) -> tuple[dict, torch.Tensor]:
    with torch.no_grad(), hooked(module, adapter) as store:
        logits = module(**inputs).logits
    return store, logits
