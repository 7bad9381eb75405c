"""Independent reference computations with plain PyTorch forward hooks (no nnsight)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from anchors.models.adapters import Adapter
from anchors.readouts import lens_logits


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
            adapter.mlp(module, i).register_forward_hook(post("mlp_out", i)),
        ]
        if i in adapter.attention_layers(module):  # a hybrid decoder's linear-attention layers have no heads
            handles += [adapter.out_proj(module, i).register_forward_pre_hook(pre("z", i), with_kwargs=True),
                        adapter.out_proj(module, i).register_forward_hook(post("o_proj_out", i))]
        mid_norm = adapter.paths(module).mid_norm
        if mid_norm:
            handles.append(getattr(adapter.layer(module, i), mid_norm).register_forward_pre_hook(pre("resid_mid", i),
                                                                                                with_kwargs=True))
    try:
        yield store
        for i in range(adapter.shape.n_layers):  # a parallel block: the residual after attention, by definition
            store.setdefault(("resid_mid", i), store[("resid_pre", i)] + store[("attn_out", i)])
    finally:
        for handle in handles:
            handle.remove()


def run_hooked(module: torch.nn.Module, adapter: Adapter, inputs: Any) -> tuple[dict, torch.Tensor]:
    with torch.no_grad(), hooked(module, adapter) as store:
        logits = module(**inputs).logits
    return store, logits


def reference_mask(mask, roles: list[list[str]], source: set[str], target: set[str], dtype,
                   queries: int | None = None, keys: int | None = None) -> torch.Tensor:
    """The knockout mask built element by element (loops, no vectorised shortcut). ``roles`` are the
    prompt's; key positions past the prompt (decode steps) are 'generated'."""
    batch = len(roles)
    keys = keys or (mask.shape[-1] if mask is not None else len(roles[0]))
    queries = queries or keys
    key_roles = [row[:keys] + ["generated"] * (keys - len(row)) for row in roles]
    if mask is None:
        allowed = torch.zeros(batch, 1, queries, keys, dtype=torch.bool)
        for b in range(batch):
            for q in range(queries):
                for k in range(keys - queries + q + 1):
                    allowed[b, 0, q, k] = True
        mask = allowed
    new = mask.clone().expand(batch, -1, -1, -1).clone()
    for b in range(batch):
        for q in range(queries):
            if key_roles[b][keys - queries + q] not in target:
                continue
            for k in range(keys):
                if key_roles[b][k] in source:
                    new[b, 0, q, k] = False if new.dtype == torch.bool else torch.finfo(dtype).min
    return new


@contextmanager
def knockout_hooks(module, adapter: Adapter, layers, roles, source, target) -> Iterator[None]:
    def make(layer: int):
        def hook(mod, args, kwargs):
            kwargs = dict(kwargs)
            queries = kwargs["hidden_states"].shape[1]
            mask = kwargs.get("attention_mask")
            cache = kwargs.get("past_key_values")
            past = cache.get_seq_length(layer) if cache is not None else 0
            keys = mask.shape[-1] if mask is not None else past + queries
            kwargs["attention_mask"] = reference_mask(mask, roles, source, target, kwargs["hidden_states"].dtype, queries, keys)
            return args, kwargs
        return hook

    # a hybrid decoder's linear-attention layers have no mask: a knockout cuts the softmax ones only
    softmax = adapter.attention_layers(module)
    handles = [adapter.attention(module, i).register_forward_pre_hook(make(i), with_kwargs=True)
               for i in layers if i in softmax]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def head_scale_hooks(module, adapter: Adapter, layer: int, heads, alpha: float, positions,
                     decode_alpha: float | None = None) -> Iterator[None]:
    """Scale heads at prompt ``positions`` in the prefill; with ``decode_alpha``, also every decode
    step's (single, generated) position."""
    d = adapter.shape.head_dim

    def hook(mod, args, kwargs):
        z = (args[0] if args else kwargs["hidden_states"]).clone()
        if z.shape[1] == 1 and positions and max(t for _, t in positions) > 0:  # a decode step
            if decode_alpha is not None:
                for h in heads:
                    z[:, 0, h * d:(h + 1) * d] = z[:, 0, h * d:(h + 1) * d] * decode_alpha
            return (z,) + tuple(args[1:]), kwargs
        for b, t in positions:
            for h in heads:
                z[b, t, h * d:(h + 1) * d] = z[b, t, h * d:(h + 1) * d] * alpha
        return (z,) + tuple(args[1:]), kwargs

    handle = adapter.out_proj(module, layer).register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def reference_subspace_logits(adapter: Adapter, module, hidden: torch.Tensor, positions, compliant, competing):
    """(B, P, 2) subspace max logits at explicit positions, one sample at a time."""
    out = torch.zeros(len(positions), max(len(p) for p in positions), 2)
    with torch.no_grad():
        for b, row in enumerate(positions):
            logits = lens_logits(adapter, module, hidden[b, row])
            out[b, : len(row), 0] = logits[:, compliant[b]].amax(-1)
            out[b, : len(row), 1] = logits[:, competing[b]].amax(-1)
    return out
