"""The adapter contract and the structural adapter that fulfils it for most families.

An adapter holds every model-specific fact the toolkit needs: where the decoder's parts are, its
sizes, which tokens the vision features replace, and how a prompt becomes processor inputs. The
base :class:`Adapter` derives the module paths from the loaded model (:mod:`.structure`), so a
family without quirks needs no code at all; a family with quirks keeps a small subclass.

Accessors take a *root* that is either the nnsight model (inside a trace: envoys) or the plain
Hugging Face module (reference computations with PyTorch hooks); both expose the same attribute
tree, so one path string serves both.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from .structure import AdapterError, DecoderPaths, NormForm, classify_gain, derive_paths, norm_form

ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")
# Config attributes that hold the image placeholder token id, in the families' various spellings.
IMAGE_TOKEN_ATTRIBUTES: tuple[str, ...] = ("image_token_id", "image_token_index")


def resolve(root: Any, path: str) -> Any:
    """Follow a dotted attribute path (integers index into module lists)."""
    node = root
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


def hf_module(root: Any) -> torch.nn.Module:
    """The plain torch module behind an nnsight model, or the module itself."""
    return getattr(root, "_module", root)


@dataclass(frozen=True)
class Shape:
    """Sizes of the language decoder that readouts and head interventions need."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    #: the MLP's width; the whole model's parameters, vision encoder included (0 until bound)
    intermediate_size: int = 0
    n_parameters: int = 0


@dataclass(frozen=True)
class Norms:
    """What the lens needs to know about the norms, measured on the loaded weights: the final
    norm's form and the attention-output norm's (None where the family has none)."""

    final: NormForm
    attn_out: NormForm | None

    @property
    def weightless(self) -> bool:
        """Measured through calls (a remote model): readouts then call modules instead of reading
        weights, which a sandboxed request cannot (:mod:`anchors.readouts.lens`)."""
        return self.final.gain is not None


class Adapter:
    """The structural adapter: paths derived from the model, sizes from the config.

    Reading points (TransformerLens-like stable names):
    - ``resid_pre``  : input of decoder layer ``i``;
    - ``attn_out``   : the attention sublayer's update to the residual (``o_proj`` output, or its
      normalised form where the family normalises it, e.g. Gemma's ``post_attention_layernorm``);
    - ``resid_mid``  : residual after attention = input of the mid norm (``resid_pre + attn_out``);
    - ``mlp_out``    : output of the MLP sublayer;
    - ``resid_post`` : output of decoder layer ``i``.

    >>> view.adapter.shape.n_heads, view.adapter.shape.head_dim, view.adapter.family
    (8, 16, 'mrope')
    """

    family: ClassVar[str] = "structural"

    def __init__(self, config: Any, processor: Any) -> None:
        self.config = config
        self.processor = processor
        self.model_type: str = config.model_type
        text = config.get_text_config()
        n_heads = text.num_attention_heads
        self.shape = Shape(
            n_layers=text.num_hidden_layers,
            n_heads=n_heads,
            n_kv_heads=getattr(text, "num_key_value_heads", None) or n_heads,
            # the o_proj input is heads × the *value* size (narrower than queries under MLA)
            head_dim=getattr(text, "v_head_dim", None) or getattr(text, "head_dim", None) or text.hidden_size // n_heads,
            hidden_size=text.hidden_size,
            vocab_size=text.vocab_size,
            intermediate_size=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        )
        self.multimodal: bool = getattr(config, "vision_config", None) is not None
        self.max_context: int | None = getattr(text, "max_position_embeddings", None)
        self._softcap = getattr(text, "final_logit_softcapping", None) or getattr(config, "final_logit_softcapping", None)
        self._logit_scale = getattr(text, "logit_scale", None)
        self.logit_softcap: float | None = None
        self.logit_scale: float | None = None
        self._paths: DecoderPaths | None = None
        self._norms: Norms | None = None

    # -- binding to a module ------------------------------------------------------------------
    def bind(self, model: torch.nn.Module) -> None:
        """Derive the paths from ``model`` (real or meta-device) and check them against the config;
        on real weights also measure the norms. Errors name the accessor that failed."""
        try:
            paths = derive_paths(model, self.shape.n_layers)
        except AdapterError as error:
            raise AdapterError(f"{self.model_type} ({type(model).__name__}) does not fit the adapter: {error}") from None
        first = model.get_submodule(paths.layers)[paths.attention_layers[0]]  # the first softmax-attention layer
        o_proj = getattr(getattr(first, paths.attention), paths.out_proj)
        expected_in = self.shape.n_heads * self.shape.head_dim
        if o_proj.in_features != expected_in:
            raise AdapterError(f"{self.model_type}: {paths.out_proj} takes {o_proj.in_features} features, expected "
                               f"heads×head_dim={self.shape.n_heads}×{self.shape.head_dim}={expected_in}")
        # the unembedding's rows are the vocabulary the logits range over (a config may count more)
        self.shape = replace(self.shape, vocab_size=model.get_submodule(paths.unembed).out_features,
                             n_parameters=sum(p.numel() for p in model.parameters()))
        self._paths = paths
        # The lens caps or scales logits only where the model's own forward does (Gemma3's VLM does
        # not cap; Cohere's causal LM scales, its VLMs do not).
        forward = inspect.getsource(type(model).forward)
        self.logit_softcap = self._softcap if "final_logit_softcapping" in forward else None
        self.logit_scale = self._logit_scale if "logit_scale" in forward else None
        final = model.get_submodule(paths.final_norm)
        if final.weight.is_meta:
            return
        try:
            attn_out = getattr(first, paths.attn_out_norm) if paths.attn_out_norm else None
            self._norms = Norms(norm_form(final), norm_form(attn_out) if attn_out else None)
        except AdapterError as error:
            raise AdapterError(f"{self.model_type}: {error}") from None

    def measured_norms(self, outputs: dict[str, tuple[torch.Tensor, float]]) -> None:
        """Set the norms from outputs on :func:`~.structure.gain_probes` measured elsewhere (a remote
        model's weights live on the server): ``{"final": (out, eps), "attn_out": ...}``, as
        :func:`~.structure.classify_gain` takes."""
        try:
            forms = {key: classify_gain(key, *values) for key, values in outputs.items()}
        except AdapterError as error:
            raise AdapterError(f"{self.model_type}: {error}") from None
        self._norms = Norms(forms["final"], forms.get("attn_out"))

    def paths(self, root: Any) -> DecoderPaths:
        """The decoder's paths, derived from ``root``'s module on first use."""
        if self._paths is None:
            if root is None:
                raise AdapterError(f"{self.model_type}: the adapter has not seen the model yet; call adapter.bind(module) "
                                   "or get it from read_adapter / load_model")
            self.bind(hf_module(root))
        return self._paths  # type: ignore[return-value]

    def attention_layers(self, root: Any) -> tuple[int, ...]:
        """The layers with softmax self-attention: all but a hybrid decoder's linear-attention ones."""
        return self.paths(root).attention_layers

    def norms(self, root: Any) -> Norms:
        if self._norms is None:
            self.bind(hf_module(root))
        if self._norms is None:
            raise AdapterError(f"{self.model_type}: the norms cannot be measured on meta-device weights")
        return self._norms

    # -- tokens -------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def image_token_ids(self) -> tuple[int, ...]:
        """Ids of the placeholder tokens whose embeddings the vision tower replaces."""
        if not self.multimodal:
            return ()
        for name in IMAGE_TOKEN_ATTRIBUTES:
            token_id = getattr(self.config, name, None)
            if token_id is not None:
                return (int(token_id),)
        raise AdapterError(f"{self.model_type}: the config has none of {', '.join(IMAGE_TOKEN_ATTRIBUTES)}")

    # -- module accessors ---------------------------------------------------------------------
    def layers(self, root: Any) -> Any:
        return resolve(root, self.paths(root).layers)

    def layer(self, root: Any, index: int) -> Any:
        return self.layers(root)[index]

    def attention(self, root: Any, index: int) -> Any:
        """Layer ``index``'s softmax self-attention (refused at a linear-attention layer)."""
        paths = self.paths(root)
        if index not in paths.attention_layers:
            raise AdapterError(f"{self.model_type}: layer {index} has linear attention ({paths.linear_attention}), "
                               "no softmax attention")
        return getattr(self.layer(root, index), paths.attention)

    def out_proj(self, root: Any, index: int) -> Any:
        return getattr(self.attention(root, index), self.paths(root).out_proj)

    def resid_mid(self, root: Any, index: int, resid_pre: Any) -> Any:
        """The residual after the attention sublayer: the mid norm's input, or, in a parallel block
        (attention and MLP read one normed input), ``resid_pre`` plus the attention update. Read
        after ``resid_pre`` and the attention (nnsight's execution order)."""
        name = self.paths(root).mid_norm
        if name:
            return getattr(self.layer(root, index), name).input
        return resid_pre + self.attn_out(root, index).output[0]

    def attn_out(self, root: Any, index: int) -> Any:
        """The module whose (first) output is the attention sublayer's residual update (at a
        hybrid decoder's linear-attention layer: that mixer)."""
        paths = self.paths(root)
        name = paths.attn_out if index in paths.attention_layers else paths.linear_attention
        return getattr(self.layer(root, index), name)

    def mlp(self, root: Any, index: int) -> Any:
        return getattr(self.layer(root, index), self.paths(root).mlp)

    def attn_out_norm(self, root: Any, index: int) -> Any | None:
        """The norm applied to the attention output before the residual add, or None."""
        name = self.paths(root).attn_out_norm
        return getattr(self.layer(root, index), name) if name else None

    def final_norm(self, root: Any) -> Any:
        return resolve(root, self.paths(root).final_norm)

    def unembed(self, root: Any) -> Any:
        return resolve(root, self.paths(root).unembed)

    def unembed_weight(self, root: Any) -> torch.Tensor:
        """W_U as (vocab, hidden), read from the plain module (no trace needed)."""
        return self.unembed(hf_module(root)).weight

    def unembed_bias(self, root: Any) -> torch.Tensor | None:
        return self.unembed(hf_module(root)).bias

    def out_proj_weight(self, root: Any, index: int) -> torch.Tensor:
        weight = self.out_proj(hf_module(root), index).weight
        if not weight.is_floating_point():
            raise AdapterError(f"{self.model_type}: layer {index}'s output projection is quantized ({weight.dtype}); "
                               "per-head readouts need its weights: load without --quantization (bfloat16 fits most "
                               "7B models on one GPU)")
        return weight

    def out_proj_bias(self, root: Any, index: int) -> torch.Tensor | None:
        return self.out_proj(hf_module(root), index).bias

    # -- prompts ------------------------------------------------------------------------------
    def messages(self, user_text: str, has_image: bool, system: str | None) -> list[dict]:
        """Chat messages, image first: the processor's content-list format for a VLM, plain
        strings for a text-only model's tokenizer."""
        if not self.multimodal:
            return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user_text}]
        messages: list[dict] = []
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        content: list[dict] = [{"type": "image"}] if has_image else []
        content.append({"type": "text", "text": user_text})
        messages.append({"role": "user", "content": content})
        return messages

    def render(self, user_text: str, has_image: bool, system: str | None = None) -> str:
        """The prompt string the chat template produces, ending with the assistant turn opener."""
        return self.processor.apply_chat_template(
            self.messages(user_text, has_image, system), tokenize=False, add_generation_prompt=True
        )

    def image_geometry(self, inputs: Any, index: int, size: tuple[int, int], n_visual: int) -> Any:
        """Where each of row ``index``'s ``n_visual`` image tokens sits in its image of ``size``
        (height, width): an :class:`~.geometry.ImageGeometry` from the family's layout
        (:data:`~.layouts.LAYOUTS`), the processor's outputs and the config, no weights."""
        from .layouts import geometry_of

        return geometry_of(self.model_type, self.processor, self.config, inputs, index, size, n_visual)

    def processor_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments the processor needs for a faithful forward pass."""
        return {}

    def encode(self, texts: list[str], images: list[Any] | None) -> Any:
        """One left-padded processor call for the whole batch (multimodal inputs cannot be split
        across several nnsight invokes)."""
        self.tokenizer.padding_side = "left"
        if not self.multimodal:
            return self.tokenizer(texts, padding=True, return_tensors="pt")
        # One list of images per prompt: the form every processor accepts (some only this one).
        nested = None if images is None else [[image] for image in images]
        return self.processor(text=texts, images=nested, padding=True, return_tensors="pt", **self.processor_kwargs())
