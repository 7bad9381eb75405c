"""Load a model (Hub id or local folder) as an nnsight model plus its adapter."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from .adapters import ATTENTION_IMPLEMENTATIONS, VERIFIED, Adapter, AdapterError, adapter_class, hf_module


@dataclass
class LoadedModel:
    """The nnsight model, its adapter and what is needed to reproduce the load.

    >>> loaded = anchors.load_model("organism")
    >>> loaded.provenance["attn_implementation"], loaded.device.type, loaded.remote
    ('sdpa', 'cpu', False)"""

    model: Any
    adapter: Adapter
    provenance: dict[str, str] = field(default_factory=dict)
    #: where traces run: False (here), True (the NDIF server at nnsight's CONFIG.API.HOST) or
    #: "local" (nnsight's in-process simulation of the remote round trip)
    remote: bool | str = False

    @property
    def module(self) -> torch.nn.Module:
        """The plain Hugging Face module (for reference computations with hooks)."""
        return hf_module(self.model)

    @property
    def device(self) -> torch.device:
        """Where inputs are prepared: the weights' device, or the CPU for a remote model (whose
        module here is a meta-device skeleton; in-trace code moves tensors to the server's)."""
        if self.remote is True:
            return torch.device("cpu")
        return next(self.module.parameters()).device


def check_attention(attn_implementation: str) -> None:
    if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        raise AdapterError(
            f"attn_implementation={attn_implementation!r} is not supported: attention knockout edits the 4-D "
            f"attention mask, which only {' and '.join(ATTENTION_IMPLEMENTATIONS)} receive "
            "(flash attention gets a 2-D padding mask or None). Use 'eager' or 'sdpa'."
        )


def read_adapter(name_or_path: str, revision: str | None = None) -> Adapter:
    """The adapter of a checkpoint from its config and processor alone: no weights are read, so
    inputs can be checked against the model (context length, tokenizer) before the expensive load."""
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    cls = adapter_class(config.model_type)
    multimodal = getattr(config, "vision_config", None) is not None
    loader = AutoProcessor if multimodal else AutoTokenizer
    adapter = cls(config, loader.from_pretrained(name_or_path, revision=revision))
    adapter.bind(skeleton(config, multimodal))
    if config.model_type not in VERIFIED:
        warnings.warn(f"model_type {config.model_type!r} has not been verified with this toolkit; the structural "
                      f"adapter fits it ({adapter.paths(None).describe()}). Run the contract tests on a tiny "
                      "instance before trusting results (docs/how-to/new-family.md).", stacklevel=2)
    return adapter


def skeleton(config: Any, multimodal: bool) -> torch.nn.Module:
    """The model's module tree on the meta device: structure without weights, in about a second
    even for a 7B config, so the adapter is checked before any weights are read."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    auto = AutoModelForImageTextToText if multimodal else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config)


def load_checkpoint(
    name_or_path: str,
    *,
    dtype: torch.dtype | str = torch.float32,
    device_map: str | dict | None = None,
    attn_implementation: str = "eager",
    revision: str | None = None,
    quantization: str | None = None,
    adapter: Adapter | None = None,
    remote: bool = False,
) -> LoadedModel:
    """Load a Hub id (e.g. ``"Qwen/Qwen2.5-VL-7B-Instruct"``) or a local folder for tracing; users
    call :func:`anchors.load_model <anchors.models.spec.load_model>`, which also takes ``organism`` and ``tiny:TYPE``.

    Vision-language checkpoints load through nnsight's transformers wrapper with
    ``task="image-text-to-text"`` and their processor; text-only ones with their tokenizer.
    The attention implementation is pinned and verified after loading. ``device_map="auto"``
    spreads the layers over the GPUs (accelerate); every edit is made on its layer's device.
    ``quantization`` ("8bit"/"4bit", CUDA and the ``quant`` extra) loads through bitsandbytes;
    per-head readouts then refuse, since they read the output projections' (quantized) weights.
    ``adapter`` (from :func:`read_adapter`) saves reading the config and processor again.
    ``remote=True`` loads the structure only (meta device) for traces run on an NDIF server, and
    measures the norms there (:mod:`.remote`); a local folder must then be an absolute path the
    server can read.
    """
    from nnsight import TransformersModel

    check_attention(attn_implementation)
    adapter = adapter or read_adapter(name_or_path, revision)
    config, processor, cls = adapter.config, adapter.processor, type(adapter)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = dict(dtype=dtype, attn_implementation=attn_implementation, revision=revision,
                                  dispatch=not remote)
    if device_map is not None:
        kwargs["device_map"] = device_map
    if quantization is not None:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=quantization == "8bit",
                                                           load_in_4bit=quantization == "4bit", bnb_4bit_compute_dtype=dtype)
    if adapter.multimodal:
        model = TransformersModel(name_or_path, task="image-text-to-text", processor=processor, **kwargs)
    else:
        model = TransformersModel(name_or_path, task="text-generation", tokenizer=processor, **kwargs)
    module = hf_module(model)
    module.eval()
    adapter = cls(module.config, processor)
    adapter.bind(module)
    if remote:
        from . import remote as remote_client

        remote_client.prepare(model)
        remote_client.measure_norms(model, adapter, remote)
    actual = module.config.get_text_config()._attn_implementation
    if actual != attn_implementation:
        raise AdapterError(f"asked for attn_implementation={attn_implementation!r} but the model uses {actual!r}")
    provenance = {
        "model": str(name_or_path),
        "revision": revision or getattr(module.config, "_commit_hash", None) or "local",
        "model_type": config.model_type,
        "adapter": adapter.family,
        "attn_implementation": attn_implementation,
        "dtype": str(dtype).removeprefix("torch."),
        "quantization": quantization or "none",
    }
    if remote:  # the server loads the weights in the dtype it deploys with
        provenance.update(backend=f"ndif:{remote_client.host()}", dtype="as deployed by the server")
    return LoadedModel(model=model, adapter=adapter, provenance=provenance, remote=remote)
