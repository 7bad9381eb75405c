"""The adapter contract: every model-specific fact the toolkit needs, in one place per family.

Accessors take a *root* that is either the nnsight model (inside a trace: envoys) or the plain
Hugging Face module (reference computations with PyTorch hooks); both expose the same attribute
tree, so one path string serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...errors import AnchorsError

ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")


class AdapterError(AnchorsError):
    """The model does not satisfy the adapter contract (wrong family, missing module, bad setting)."""


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


class Adapter:
    """Base adapter. Subclasses set the class attributes and override what differs.

    Reading points (TransformerLens-like stable names):
    - ``resid_pre``  : input of decoder layer ``i``;
    - ``attn_out``   : output of the attention sublayer (``o_proj`` output);
    - ``resid_mid``  : residual after attention = input of ``mid_norm`` (``resid_pre + attn_out``);
    - ``mlp_out``    : output of the MLP sublayer;
    - ``resid_post`` : output of decoder layer ``i``.
    """

    family: ClassVar[str] = "base"
    model_types: ClassVar[tuple[str, ...]] = ()
    multimodal: ClassVar[bool] = True
    layers_path: ClassVar[str] = "model.language_model.layers"
    final_norm_path: ClassVar[str] = "model.language_model.norm"
    unembed_path: ClassVar[str] = "lm_head"
    attention_name: ClassVar[str] = "self_attn"
    out_proj_name: ClassVar[str] = "o_proj"
    mid_norm_name: ClassVar[str] = "post_attention_layernorm"
    # The module whose output the layer adds to the residual as "the attention output".
    attn_out_name: ClassVar[str] = "self_attn"
    mlp_name: ClassVar[str] = "mlp"
    # The norm (if any) the layer applies to the attention output before adding it to the residual.
    attn_out_norm_name: ClassVar[str | None] = None
    # That norm's scale is (offset + weight): 0 for a plain RMSNorm, 1 for Gemma's.
    norm_weight_offset: ClassVar[float] = 0.0
    # Whether the model's own forward applies the config's final logit soft-cap.
    applies_final_softcap: ClassVar[bool] = True

    def __init__(self, config: Any, processor: Any) -> None:
        self.config = config
        self.processor = processor
        text = config.get_text_config()
        n_heads = text.num_attention_heads
        self.shape = Shape(
            n_layers=text.num_hidden_layers,
            n_heads=n_heads,
            n_kv_heads=getattr(text, "num_key_value_heads", None) or n_heads,
            head_dim=getattr(text, "head_dim", None) or text.hidden_size // n_heads,
            hidden_size=text.hidden_size,
            vocab_size=text.vocab_size,
        )
        softcap = getattr(text, "final_logit_softcapping", None) or getattr(config, "final_logit_softcapping", None)
        self.logit_softcap: float | None = softcap if self.applies_final_softcap else None
        self.max_context: int | None = getattr(text, "max_position_embeddings", None)

    # -- tokens -------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def image_token_ids(self) -> tuple[int, ...]:
        """Ids of the placeholder tokens whose embeddings the vision tower replaces."""
        if not self.multimodal:
            return ()
        token_id = getattr(self.config, "image_token_id", None)
        if token_id is None:
            token_id = getattr(self.config, "image_token_index", None)
        if token_id is None:
            raise AdapterError(f"{self.family}: config has no image_token_id")
        return (int(token_id),)

    # -- module accessors ---------------------------------------------------------------------
    def layers(self, root: Any) -> Any:
        return resolve(root, self.layers_path)

    def layer(self, root: Any, index: int) -> Any:
        return self.layers(root)[index]

    def attention(self, root: Any, index: int) -> Any:
        return getattr(self.layer(root, index), self.attention_name)

    def out_proj(self, root: Any, index: int) -> Any:
        return getattr(self.attention(root, index), self.out_proj_name)

    def mid_norm(self, root: Any, index: int) -> Any:
        """The module whose *input* is the residual stream after the attention sublayer."""
        return getattr(self.layer(root, index), self.mid_norm_name)

    def attn_out(self, root: Any, index: int) -> Any:
        """The module whose (first) output is the attention sublayer's residual update."""
        return getattr(self.layer(root, index), self.attn_out_name)

    def mlp(self, root: Any, index: int) -> Any:
        return getattr(self.layer(root, index), self.mlp_name)

    def attn_out_norm(self, root: Any, index: int) -> Any | None:
        """The norm applied to the attention output before the residual add, or None."""
        return getattr(self.layer(root, index), self.attn_out_norm_name) if self.attn_out_norm_name else None

    def final_norm(self, root: Any) -> Any:
        return resolve(root, self.final_norm_path)

    def unembed(self, root: Any) -> Any:
        return resolve(root, self.unembed_path)

    def unembed_weight(self, root: Any) -> torch.Tensor:
        """W_U as (vocab, hidden), read from the plain module (no trace needed)."""
        return resolve(hf_module(root), self.unembed_path).weight

    def out_proj_weight(self, root: Any, index: int) -> torch.Tensor:
        return getattr(getattr(self.layers(hf_module(root))[index], self.attention_name), self.out_proj_name).weight

    def out_proj_bias(self, root: Any, index: int) -> torch.Tensor | None:
        return getattr(getattr(self.layers(hf_module(root))[index], self.attention_name), self.out_proj_name).bias

    def unembed_bias(self, root: Any) -> torch.Tensor | None:
        return resolve(hf_module(root), self.unembed_path).bias

    # -- prompts ------------------------------------------------------------------------------
    def messages(self, user_text: str, has_image: bool, system: str | None) -> list[dict]:
        """Chat messages in the processor's content-list format, image first."""
        messages: list[dict] = []
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        content: list[dict] = [{"type": "image"}] if has_image and self.multimodal else []
        content.append({"type": "text", "text": user_text})
        messages.append({"role": "user", "content": content})
        return messages

    def render(self, user_text: str, has_image: bool, system: str | None = None) -> str:
        """The prompt string the chat template produces, ending with the assistant turn opener."""
        return self.processor.apply_chat_template(
            self.messages(user_text, has_image, system), tokenize=False, add_generation_prompt=True
        )

    def processor_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments the processor needs for a faithful forward pass."""
        return {}

    def encode(self, texts: list[str], images: list[Any] | None) -> Any:
        """One left-padded processor call for the whole batch (multimodal inputs cannot be split
        across several nnsight invokes)."""
        self.tokenizer.padding_side = "left"
        if not self.multimodal:
            return self.tokenizer(texts, padding=True, return_tensors="pt")
        return self.processor(
            text=texts, images=self.batch_images(images), padding=True, return_tensors="pt", **self.processor_kwargs()
        )

    def batch_images(self, images: list[Any] | None) -> Any:
        """The images argument in the form this family's processor expects (one image per sample)."""
        return images

    # -- checks -------------------------------------------------------------------------------
    def check(self, model: torch.nn.Module) -> None:
        """Verify that every accessor resolves on ``model`` and the sizes agree (nnterp-style)."""
        try:
            layers = self.layers(model)
            first = layers[0]
            getattr(getattr(first, self.attention_name), self.out_proj_name)
            getattr(first, self.mid_norm_name)
            getattr(first, self.mlp_name)
            self.final_norm(model)
            unembed = self.unembed(model)
        except (AttributeError, IndexError, TypeError) as error:
            raise AdapterError(
                f"{self.family} adapter does not fit {type(model).__name__}: {error}. "
                "Is the model of another architecture family?"
            ) from error
        if len(layers) != self.shape.n_layers:
            raise AdapterError(f"{self.family}: found {len(layers)} layers, config says {self.shape.n_layers}")
        o_proj = getattr(getattr(first, self.attention_name), self.out_proj_name)
        expected_in = self.shape.n_heads * self.shape.head_dim
        if o_proj.in_features != expected_in:
            raise AdapterError(
                f"{self.family}: o_proj takes {o_proj.in_features} features, expected heads×head_dim={expected_in}"
            )
        if unembed.out_features != self.shape.vocab_size:
            raise AdapterError(f"{self.family}: lm_head has {unembed.out_features} outputs, vocab is {self.shape.vocab_size}")
