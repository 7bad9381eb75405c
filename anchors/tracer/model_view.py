"""A loaded model bound once, for your own nnsight traces: reading points by name and role-aware
edits and readouts (the same functions the package's analyses use).

Inside ``with view.trace(batch):`` (or ``view.generate``) every method below runs on the live
forward pass and returns nnsight values to ``.save()``. **nnsight reads modules in forward order**:
touch layer 3 before layer 4, and within a layer ``resid_pre`` → ``z`` → ``attn_out`` →
``resid_mid`` → ``mlp_out`` → ``resid_post``; a value cannot be fetched after its module has run.
Inside ``generate``, code outside ``tracer.iter`` acts on the prefill only; the edits also act on
decode steps (whose queries have the role ``generated``) when called inside ``tracer.iter``.

The examples in this module share ``view`` and ``batch`` from this one:

>>> import anchors
>>> from anchors.organism.task import evaluation_set
>>> view = anchors.view("organism")
>>> batch = view.encode([e.prompt for e in evaluation_set(2, 0, held_out=False, prefix="d")])
>>> with view.trace(batch):
...     view.knockout(batch, 0, source="cues", target="instruction")
...     lens = view.lens(view.mean(view.read("resid_post", 1), batch, "instruction")).save()
>>> tuple(lens.shape) == (2, view.adapter.shape.vocab_size)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..errors import InputError
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt
from ..readouts.attention import attention_probabilities
from ..readouts.lens import head_contributions, lens_logits
from .encode import EncodedBatch, encode_batch
from .positions import mean, positions, put, take
from .remote import remote_kwargs
from .role_edits import RoleEdits

#: Reading points per layer, in forward order, and whether :meth:`ModelView.write` may set them.
POINTS: dict[str, str] = {
    "resid_pre": "the decoder layer's input (B, T, hidden)",
    "z": "the attention output projection's input, heads concatenated (B, T, heads·head_dim)",
    "attn_out": "the attention sublayer's update to the residual (B, T, hidden)",
    "resid_mid": "the residual after attention, resid_pre + attn_out (B, T, hidden); read only",
    "mlp_out": "the MLP sublayer's update to the residual (B, T, hidden)",
    "resid_post": "the decoder layer's output (B, T, hidden)",
}


def view(model: str | LoadedModel = "organism", **options: Any) -> ModelView:
    """Bind a model once: a loaded model, or a ``--model`` string and :class:`~anchors.models.spec.ModelSpec` options
    (loaded by :func:`anchors.load_model <anchors.models.spec.load_model>`).

    >>> view = anchors.view("tiny:qwen2_5_vl", attn_implementation="eager")
    >>> view.attention_layers
    (0, 1, 2)
    """
    from ..models.spec import load_model

    return ModelView(model if isinstance(model, LoadedModel) else load_model(model, **options))


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ModelView(RoleEdits):
    """A :class:`~anchors.models.loading.LoadedModel` bound once. ``model`` is the nnsight model; the
    tokenizer, processor and sizes come from its adapter.

    >>> view = anchors.view("organism")
    >>> view.tokenizer is view.processor.tokenizer
    True
    """

    loaded: LoadedModel

    @property
    def model(self) -> Any:
        """The nnsight model: ``view.model.trace(...)`` is plain nnsight.

        >>> type(view.model).__name__
        'TransformersModel'
        """
        return self.loaded.model

    @property
    def adapter(self) -> Any:
        """The family's adapter: module paths, sizes, chat template and image tokens.

        >>> view.adapter.family, view.adapter.model_type
        ('mrope', 'qwen2_5_vl')
        """
        return self.loaded.adapter

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (the processor's, for a vision-language model).

        >>> view.tokenizer.decode(view.tokenizer.encode("red"))
        'red'
        """
        return self.adapter.tokenizer

    @property
    def processor(self) -> Any:
        """The processor the prompts are encoded with (images included).

        >>> type(view.processor).__name__
        'Qwen2_5_VLProcessor'
        """
        return self.adapter.processor

    @property
    def n_layers(self) -> int:
        """Decoder layers.

        >>> view.n_layers
        6
        """
        return self.adapter.shape.n_layers

    @property
    def n_heads(self) -> int:
        """Attention heads per layer.

        >>> view.n_heads
        8
        """
        return self.adapter.shape.n_heads

    @property
    def final_norm(self) -> Any:
        """The final norm's module (an nnsight envoy inside a trace: ``.input``, ``.output``).

        >>> with view.trace(batch):
        ...     normed = view.final_norm.output[:, -1].save()
        >>> tuple(normed.shape) == (2, view.adapter.shape.hidden_size)
        True
        """
        return self.adapter.final_norm(self.model)

    @property
    def unembed(self) -> Any:
        """The unembedding (``lm_head``) module; its output at the last position is the logits.

        >>> view.unembed.weight.shape[0] == view.adapter.shape.vocab_size
        True
        """
        return self.adapter.unembed(self.model)

    @property
    def attention_layers(self) -> tuple[int, ...]:
        """Layers with softmax attention heads (all but a hybrid decoder's linear-attention ones).

        >>> view.attention_layers
        (0, 1, 2, 3, 4, 5)"""
        return tuple(self.adapter.attention_layers(self.model))

    # -- inputs and traces ----------------------------------------------------------------------
    def encode(self, prompts: Sequence[Prompt]) -> EncodedBatch:
        """One left-padded batch whose positions know their roles (:class:`~anchors.tracer.encode.EncodedBatch`).

        >>> batch.mask("instruction").shape == batch.roles.shape
        True
        """
        return encode_batch(self.adapter, prompts)

    def trace(self, batch: EncodedBatch, **kwargs: Any) -> Any:
        """``model.trace`` on the batch's inputs, remote when the model was loaded so.

        >>> with view.trace(batch):
        ...     logits = view.model.output.logits[:, -1].save()
        >>> logits.shape[0]
        2"""
        return self.model.trace(batch.inputs.to(self.loaded.device), **remote_kwargs(self.loaded), **kwargs)

    def generate(self, batch: EncodedBatch, max_new_tokens: int, **kwargs: Any) -> Any:
        """Greedy ``model.generate`` on the batch (``tracer.result`` holds prompt + new tokens).

        >>> with view.generate(batch, max_new_tokens=2) as tracer:
        ...     tokens = tracer.result.save()
        >>> tokens.shape[1] == batch.roles.shape[1] + 2
        True"""
        options = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False) | kwargs
        # nnsight's ``generate`` looks for its ``with`` block in its caller's frame (here, not the
        # user's): trace the generation as ``generate`` itself does, so the block is found on entry
        generate = type(self.model).generate.__wrapped__.__get__(self.model)
        return self.model.trace(batch.inputs.to(self.loaded.device), fn=generate, **remote_kwargs(self.loaded), **options)

    # -- reading points -----------------------------------------------------------------------
    def _module(self, point: str, layer: int) -> tuple[Any, str]:
        a, m = self.adapter, self.model
        modules = {"resid_pre": (a.layer, "input"), "z": (a.out_proj, "input"), "attn_out": (a.attn_out, "output"),
                   "mlp_out": (a.mlp, "output"), "resid_post": (a.layer, "output")}
        if point not in modules:
            raise InputError(f"no writable reading point {point!r}; points: {', '.join(POINTS)}")
        get, side = modules[point]
        return get(m, layer), side

    def read(self, point: str, layer: int, *, resid_pre: Any = None) -> Any:
        """The value at ``point`` of ``layer`` (one of :data:`POINTS`). ``resid_mid`` of a parallel
        block (attention and MLP read one normed input) is ``resid_pre + attn_out``: pass the
        ``resid_pre`` read earlier in the same layer (a module's input cannot be fetched twice).

        >>> with view.trace(batch):
        ...     post = view.read("resid_post", 1).save()
        >>> tuple(post.shape) == (2, batch.roles.shape[1], view.adapter.shape.hidden_size)
        True
        """
        if point == "resid_mid":
            if resid_pre is None and not self.adapter.paths(self.model).mid_norm:
                raise InputError(f"{self.adapter.model_type} has parallel blocks: read resid_mid with "
                                 "resid_pre=<the layer's resid_pre, read first>")
            return self.adapter.resid_mid(self.model, layer, resid_pre)
        module, side = self._module(point, layer)
        return _first(getattr(module, side))

    def write(self, point: str, layer: int, value: torch.Tensor) -> None:
        """Replace the value at ``point`` of ``layer`` (a module's tuple output keeps its other parts).

        >>> with view.trace(batch):
        ...     view.write("mlp_out", 0, view.read("mlp_out", 0) * 0)
        ...     logits = view.model.output.logits[:, -1].save()"""
        module, side = self._module(point, layer)
        current = getattr(module, side)
        setattr(module, side, (value, *current[1:]) if isinstance(current, tuple) else value)

    # -- roles (module functions, also reachable from the view) ----------------------------------
    positions = staticmethod(positions)
    take = staticmethod(take)
    mean = staticmethod(mean)
    put = staticmethod(put)

    # -- readouts -----------------------------------------------------------------------------
    def lens(self, hidden: torch.Tensor, token_ids: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """The logit lens (Eq 1): final norm and unembedding of ``hidden`` (…, hidden), on
        ``token_ids`` only when given (…, len(token_ids)), with the family's logit scale/soft-cap.

        >>> with view.trace(batch):
        ...     top = view.lens(view.read("resid_post", view.n_layers - 1)[:, -1]).argmax(-1).save()
        ...     final = view.model.output.logits[:, -1].argmax(-1).save()
        >>> bool((top == final).all())  # the last layer's lens is the model's own output
        True"""
        ids = None if token_ids is None else torch.as_tensor(token_ids)
        return lens_logits(self.adapter, self.model, hidden, ids)

    def heads(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """Each head's update to the residual (…, heads, hidden) from ``z`` (…, heads·head_dim) of
        ``layer`` (Eq 9); summed over heads (plus any output bias) it is ``attn_out``.

        >>> with view.trace(batch):
        ...     shares = view.heads(1, view.mean(view.read("z", 1), batch, "instruction")).save()
        >>> tuple(shares.shape) == (2, view.n_heads, view.adapter.shape.hidden_size)
        True"""
        return head_contributions(self.adapter, self.model, layer, z)

    def attention(self, layer: int) -> torch.Tensor:
        """Attention probabilities (B, heads, queries, keys) of ``layer`` as eager attention computes
        them, whether the model runs eager or sdpa (which never forms them): recomputed from the
        rotated queries and keys and the (possibly edited) mask the layer hands its attention
        function, each key head shared by its group of query heads (GQA).

        >>> with view.trace(batch):
        ...     probs = view.attention(1).save()
        >>> torch.allclose(probs.sum(-1), torch.tensor(1.0))
        True"""
        module = self.adapter.attention(self.model, layer)
        call = [name for name in module.source.names if name.startswith("attention_interface_")][-1]
        args, kwargs = getattr(module.source, call).inputs
        mask = args[4] if len(args) > 4 else kwargs.get("attention_mask")
        scaling = kwargs.get("scaling") or args[0].scaling
        return attention_probabilities(args[1], args[2], mask, scaling, kwargs.get("softcap"))

    def image_attention(self, batch: EncodedBatch, layer: int, query_role: str | tuple[str, ...] = "instruction",
                        key_role: str | tuple[str, ...] = "visual") -> torch.Tensor:
        """Attention (B, heads, V) from each row's ``query_role`` positions (averaged) to each of its
        image tokens in order (``key_role``: ``visual``, or ``region``/``off_region``), as
        :meth:`attention` computes it. V is the most image tokens of a row; a row with fewer
        repeats its last one (``view.positions(batch, key_role)[1]`` marks the real ones), so
        ``[..., k]`` is the k-th entry of the row's image geometry.

        >>> with view.trace(batch):
        ...     to_image = view.image_attention(batch, 1).save()
        >>> tuple(to_image.shape) == (2, view.n_heads, len(batch.image_geometry(0)))
        True"""
        probs = self.attention(layer).transpose(1, 2)  # (B, Q, heads, K)
        averaged = mean(probs, batch, query_role)  # (B, heads, K)
        keys = positions(batch, key_role)[0].to(averaged.device)
        return averaged.gather(2, keys[:, None, :].expand(-1, averaged.shape[1], -1))
