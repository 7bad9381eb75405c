"""Where a decoder keeps its parts, derived from the module tree rather than written per family.

Nearly every transformers VLM keeps its language decoder as a ``ModuleList`` of layers, each with a
softmax self-attention ending in an output projection, a norm in front of the MLP, and a final norm
beside the list; only the names vary. The candidate names below are the per-family mapping as
data: :func:`derive_paths` tries them in order and checks what it finds, so a model that does not
fit is refused with the accessor that failed and what was found in its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...errors import AnchorsError


class AdapterError(AnchorsError):
    """The model does not satisfy the adapter contract (wrong family, missing module, bad setting).

    >>> issubclass(anchors.AdapterError, anchors.AnchorsError)
    True"""


# Dotted paths from the top-level model to the decoder's layer list, most common first.
LAYER_LISTS: tuple[str, ...] = (
    "model.language_model.layers", "model.text_model.layers", "model.layers", "language_model.model.layers",
)
ATTENTION_NAMES: tuple[str, ...] = ("self_attn", "self_attention", "attention", "attn")
# The token mixer of a hybrid decoder's other layers (Qwen3.5's gated delta rule, LFM2's convolution).
LINEAR_ATTENTION_NAMES: tuple[str, ...] = ("linear_attn", "linear_attention", "conv")
OUT_PROJ_NAMES: tuple[str, ...] = ("o_proj", "out_proj", "dense", "wo")
MLP_NAMES: tuple[str, ...] = ("mlp", "feed_forward", "ffn")
FINAL_NORM_NAMES: tuple[str, ...] = ("norm", "final_layernorm", "final_norm", "ln_f", "embedding_norm")  # LFM2: the last
# How the norms around the attention sublayer are arranged, as (name that marks the arrangement,
# mid norm, attention-output norm): the mid norm's *input* is the residual after attention; the
# attention-output norm (if any) normalises the attention output before the residual add.
NORM_ARRANGEMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("pre_feedforward_layernorm", "pre_feedforward_layernorm", "post_attention_layernorm"),  # Gemma 2/3
    ("post_self_attn_layernorm", "post_attention_layernorm", "post_self_attn_layernorm"),  # GLM-4
    ("post_attention_layernorm", "post_attention_layernorm", None),  # Llama, Qwen, Mistral, ...
    ("ffn_norm", "ffn_norm", None),  # LFM2
)
# A layer with only this norm feeds attention and MLP from it and adds both (Cohere's parallel
# block): no module receives the residual between them, so it is computed as input + attention.
PARALLEL_NORM = "input_layernorm"


@dataclass(frozen=True)
class DecoderPaths:
    """Names of the decoder's parts: ``layers`` from the model root, the others from a layer (or,
    for ``out_proj``, from its attention). ``attention_layers`` are the layers with softmax
    self-attention (all of them except in hybrid decoders)."""

    layers: str
    attention: str
    out_proj: str
    mid_norm: str
    attn_out: str
    attn_out_norm: str | None
    mlp: str
    final_norm: str
    unembed: str
    attention_layers: tuple[int, ...]
    linear_attention: str | None = None

    def describe(self) -> dict[str, str]:
        """The paths as strings, for provenance and ``anchors models``."""
        layer = f"{self.layers}.<i>"
        return {
            "layers": self.layers, "attention": f"{layer}.{self.attention}",
            "out_proj": f"{layer}.{self.attention}.{self.out_proj}", "mid_norm": f"{layer}.{self.mid_norm}" if self.mid_norm else "none (parallel attention/MLP block)",
            "attn_out_norm": f"{layer}.{self.attn_out_norm}" if self.attn_out_norm else "none",
            "mlp": f"{layer}.{self.mlp}", "final_norm": self.final_norm, "unembed": self.unembed,
            **({"linear_attention": f"{layer}.{self.linear_attention}"} if self.linear_attention else {}),
        }


def _first_child(module: torch.nn.Module, names: tuple[str, ...]) -> str | None:
    return next((name for name in names if isinstance(getattr(module, name, None), torch.nn.Module)), None)


def _children(module: torch.nn.Module) -> str:
    return ", ".join(name for name, _ in module.named_children()) or "nothing"


def _find_layers(model: torch.nn.Module, n_layers: int) -> str:
    lists = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)}
    for path in LAYER_LISTS:
        if path in lists and len(lists[path]) == n_layers:
            return path
    found = ", ".join(f"{name} ({len(m)})" for name, m in lists.items()) or "no module list"
    raise AdapterError(
        f"decoder layers: none of {', '.join(LAYER_LISTS)} is a list of the config's {n_layers} layers; "
        f"module lists found: {found}"
    )


def _layer_part(layer: torch.nn.Module, names: tuple[str, ...], accessor: str, index: int) -> str:
    name = _first_child(layer, names)
    if name is None:
        raise AdapterError(f"{accessor}: decoder layer {index} ({type(layer).__name__}) has none of "
                           f"{', '.join(names)}; it has {_children(layer)}")
    return name


def derive_paths(model: torch.nn.Module, n_layers: int) -> DecoderPaths:
    """The decoder's paths in ``model`` (a real or meta-device module), each checked to exist."""
    layers_path = _find_layers(model, n_layers)
    layers = model.get_submodule(layers_path)
    attention_layers = tuple(i for i, layer in enumerate(layers) if _first_child(layer, ATTENTION_NAMES))
    if not attention_layers:
        _layer_part(layers[0], ATTENTION_NAMES, "attention", 0)
    others = [i for i in range(len(layers)) if i not in attention_layers]
    linear = others and _layer_part(layers[others[0]], LINEAR_ATTENTION_NAMES, "attention (softmax or linear)", others[0])
    if others and any(_first_child(layers[i], LINEAR_ATTENTION_NAMES) != linear for i in others):
        raise AdapterError(f"attention: layers {others} do not all have a {linear}")
    first = layers[attention_layers[0]]
    attention = _layer_part(first, ATTENTION_NAMES, "attention", attention_layers[0])
    attn_module = getattr(first, attention)
    out_proj = _first_child(attn_module, OUT_PROJ_NAMES)
    if out_proj is None or not isinstance(getattr(attn_module, out_proj), torch.nn.Linear):
        raise AdapterError(f"attention output projection: {layers_path}.{attention_layers[0]}.{attention} "
                           f"({type(attn_module).__name__}) has no Linear among {', '.join(OUT_PROJ_NAMES)}; "
                           f"it has {_children(attn_module)}")
    marker = next((m for m in NORM_ARRANGEMENTS if isinstance(getattr(first, m[0], None), torch.nn.Module)), None)
    norms = [name for name, m in first.named_children() if "norm" in type(m).__name__.lower() or "norm" in name]
    if marker is None and norms != [PARALLEL_NORM]:
        names = ", ".join(m[0] for m in NORM_ARRANGEMENTS)
        raise AdapterError(
            f"mid norm: decoder layer {attention_layers[0]} ({type(first).__name__}) has none of {names}, and is "
            f"not a parallel block with {PARALLEL_NORM} alone; it has {_children(first)}"
        )
    _, mid_norm, attn_out_norm = marker or (None, None, None)
    mlp = _layer_part(first, MLP_NAMES, "mlp", attention_layers[0])
    parent_path = layers_path.rpartition(".")[0]
    parent = model.get_submodule(parent_path) if parent_path else model
    final_norm = _first_child(parent, FINAL_NORM_NAMES)
    if final_norm is None:
        raise AdapterError(f"final norm: {parent_path or 'the model'} has none of {', '.join(FINAL_NORM_NAMES)} "
                           f"beside its layers; it has {_children(parent)}")
    unembed = _unembed_path(model)
    return DecoderPaths(
        layers=layers_path, attention=attention, out_proj=out_proj, mid_norm=mid_norm,
        attn_out=attn_out_norm or attention, attn_out_norm=attn_out_norm, mlp=mlp,
        final_norm=f"{parent_path}.{final_norm}" if parent_path else final_norm, unembed=unembed,
        attention_layers=attention_layers, linear_attention=linear or None,
    )


def _unembed_path(model: torch.nn.Module) -> str:
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if getter else None
    path = next((name for name, m in model.named_modules() if m is head), None) if head is not None else None
    if path is None or not isinstance(head, torch.nn.Linear):
        raise AdapterError(f"unembedding: {type(model).__name__}.get_output_embeddings() gives "
                           f"{type(head).__name__ if head is not None else 'nothing'}, not a Linear in the model")
    return path


def norm_eps(norm: Any) -> float:
    """The epsilon of an RMS norm, whatever the family calls it."""
    for name in ("variance_epsilon", "eps", "epsilon"):
        value = getattr(norm, name, None)
        if isinstance(value, float):
            return value
    raise AdapterError(f"{type(norm).__name__} has no epsilon attribute (variance_epsilon, eps or epsilon)")


@dataclass(frozen=True, eq=False)
class NormForm:
    """What a norm computes, measured: ``c(x)/rms(c(x))·(offset + w)`` where ``c`` subtracts the
    mean if ``centred`` (a bias-free LayerNorm, Cohere) and is the identity otherwise (RMSNorm).
    ``gain`` is ``offset + w`` itself (hidden,), float32, where it was measured through calls of the
    norm because its weight cannot be read (a remote model: :func:`classify_gain`)."""

    offset: float
    centred: bool
    gain: torch.Tensor | None = None

    def scale(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """``1/rms(c(x))`` over the last axis, in float32."""
        return torch.rsqrt(self.centre(x.float()).pow(2).mean(-1, keepdim=True) + eps)

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(-1, keepdim=True) if self.centred else x

    def multiplier(self, norm: Any, like: torch.Tensor) -> torch.Tensor:
        """``offset + w`` in float32 on ``like``'s device: the measured gain, else from ``norm``'s weight."""
        gain = self.gain if self.gain is not None else self.offset + norm.weight.float()
        return gain.to(like.device)


def probe_vector(width: int) -> torch.Tensor:
    """The float32 vector norms are measured on."""
    return torch.linspace(-1.0, 2.0, width, dtype=torch.float32)


def norm_form(norm: torch.nn.Module) -> NormForm:
    """The :class:`NormForm` of ``norm``, measured on :func:`probe_vector` (see :func:`classify_norm`)."""
    weight = getattr(norm, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.is_meta:
        raise AdapterError(f"{type(norm).__name__} has no weight to probe")
    probe = probe_vector(weight.shape[-1]).to(weight.device)
    with torch.no_grad():
        out = norm(probe.to(weight.dtype)[None]).float()[0]
    return classify_norm(type(norm).__name__, out, weight, norm_eps(norm))


def gain_probes(width: int) -> torch.Tensor:
    """Three float32 vectors (3, width) a norm is called on to measure it without its weight:
    alternating ±1 (centred and RMS-normalised alike, so ``out / normalised`` is the gain, exact
    even in bfloat16), all ones (zero once centred) and :func:`probe_vector`."""
    alternating = torch.where(torch.arange(width) % 2 == 0, 1.0, -1.0)
    return torch.stack([alternating, torch.ones(width), probe_vector(width)])


def classify_gain(name: str, out: torch.Tensor, eps: float) -> NormForm:
    """The form and gain that map :func:`gain_probes` to ``out`` (3, width): the gain from the
    alternating probe, the form from which of plain RMS or centred then reproduces the other two.
    A remote model's norms are measured so, since a sandboxed request cannot read weights."""
    probes = gain_probes(out.shape[-1]).to(out.device)
    out = out.float()
    for form in (NormForm(0.0, False), NormForm(0.0, True)):
        gain = out[0] / (form.centre(probes[0]) * form.scale(probes[0], eps))
        expected = form.centre(probes[1:]) * form.scale(probes[1:], eps) * gain
        if torch.allclose(out[1:], expected, rtol=2e-2, atol=2e-2):
            return NormForm(0.0, form.centred, gain.cpu())
    raise AdapterError(f"{name} is neither an RMS norm (x/rms(x)·w or ·(1+w)) nor a bias-free "
                       "LayerNorm on probe vectors")


def classify_norm(name: str, out: torch.Tensor, weight: torch.Tensor, eps: float) -> NormForm:
    """Which form maps :func:`probe_vector` to ``out`` given the norm's ``weight``: plain or
    Gemma-style (1 + w) RMS norm, or a bias-free LayerNorm. Anything else (a bias, a learned shift)
    is refused, since the linear head attribution (Eq 9) freezes the norm's scale and needs the rest
    linear."""
    probe = probe_vector(weight.shape[-1]).to(out.device)
    for form in (NormForm(0.0, False), NormForm(1.0, False), NormForm(0.0, True)):
        expected = form.centre(probe) * form.scale(probe, eps) * (form.offset + weight.float().to(out.device))
        if torch.allclose(out.float(), expected, rtol=2e-2, atol=2e-2):
            return form
    raise AdapterError(f"{name} is neither an RMS norm (x/rms(x)·w or ·(1+w)) nor a bias-free "
                       "LayerNorm on a probe vector")
