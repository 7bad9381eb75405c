"""The client side of a remote (NDIF) run: where requests go and what travels with them.

A remote model is loaded on the meta device (structure, no weights): the server holds the weights
and runs the in-trace code, which is plain torch plus this package's own functions, shipped by
value (``nnsight.register``). The host is nnsight's ``CONFIG.API.HOST``, which ``NDIF_HOST``
overrides; the API key is nnsight's (``NDIF_API_KEY`` or ``CONFIG.set_default_api_key``). A local
checkpoint folder is addressed by its absolute path: the client would otherwise look the name up
on the Hub, so its id cache maps the path to itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nnsight
import torch

from .adapters import Adapter, hf_module
from .adapters.base import resolve


def host() -> str:
    """The NDIF API the next remote request goes to."""
    from nnsight import CONFIG

    return CONFIG.API.HOST


def prepare(model: Any) -> None:
    """Ready ``model`` (an nnsight model) for remote traces: ship ``anchors`` by value, keep the
    server's status stream off the console (the runner reports progress), and address a local
    checkpoint folder by its own path."""
    import anchors
    from nnsight import CONFIG
    from nnsight.modeling import huggingface

    nnsight.register(anchors)
    CONFIG.APP.REMOTE_LOGGING = False
    repo_id = getattr(model, "repo_id", None)
    if isinstance(repo_id, str) and Path(repo_id).is_absolute() and Path(repo_id).is_dir():
        huggingface._ID_CACHE[repo_id] = repo_id


def measure_norms(model: Any, adapter: Adapter, remote: bool | str) -> None:
    """Measure the norms' forms and gains (:func:`~.adapters.structure.classify_gain`) on the
    server's weights without reading them, which a sandboxed request cannot: one short trace calls
    the final norm (and the first attention layer's output norm, if any) on the gain probes, placed
    on the device and dtype of the hidden state the norm reads, and brings back the outputs."""
    from .adapters.structure import gain_probes, norm_eps

    module = hf_module(model)
    paths = adapter.paths(model)
    first = paths.attention_layers[0]
    names = {"final": paths.final_norm}
    if paths.attn_out_norm:
        names["attn_out"] = f"{paths.layers}.{first}.{paths.attn_out_norm}"
    probes = gain_probes(adapter.shape.hidden_size)
    tokens = adapter.tokenizer(["a"], return_tensors="pt")["input_ids"]
    envoys = {key: resolve(model, name) for key, name in names.items()}
    with torch.no_grad(), model.trace({"input_ids": tokens}, remote=remote):
        hidden = resolve(model, paths.final_norm).input
        measured = nnsight.save({key: envoy(probes.to(hidden.device, hidden.dtype)).float().cpu()
                                 for key, envoy in envoys.items()})
    eps = {key: norm_eps(module.get_submodule(name)) for key, name in names.items()}
    adapter.measured_norms({key: (out, eps[key]) for key, out in measured.items()})
