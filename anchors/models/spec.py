"""Which model to run, as one string: ``organism[:NAME]`` (a shipped organism), ``tiny:TYPE`` (a
tiny random-weight instance) or a Hub id / local folder. A :class:`ModelSpec` reads the config and
processor first (:meth:`ModelSpec.adapter`) so inputs are checked before any weights load
(:meth:`ModelSpec.load`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .adapters import Adapter
from .loading import LoadedModel, check_attention, load_checkpoint, read_adapter
from .organisms import ORGANISMS, organism_path

DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "float64")
QUANTIZATIONS: tuple[str, ...] = ("8bit", "4bit")


@dataclass
class ModelSpec:
    """A parsed ``--model`` value plus how to load it; adapter and model are read once, lazily.

    >>> spec = anchors.ModelSpec("tiny:llava", attn_implementation="eager")
    >>> spec.kind, spec.name, spec.adapter().shape.n_layers  # the adapter needs no weights
    ('tiny', 'llava', 3)"""

    text: str = "organism"
    attn_implementation: str = "sdpa"
    dtype: str = "float32"
    device_map: str | None = None
    revision: str | None = None
    quantization: str | None = None
    #: run traces on the NDIF server at nnsight's CONFIG.API.HOST (``NDIF_HOST``); weights stay there
    remote: bool = False
    _adapter: Adapter | None = field(default=None, repr=False)
    _loaded: LoadedModel | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from .tiny import TINY_MODEL_TYPES

        if self.kind == "organism" and self.name not in ORGANISMS:
            raise InputError(f"--model {self.text}: no shipped organism {self.name!r}; available: {', '.join(ORGANISMS)}")
        if self.kind == "tiny" and self.name not in TINY_MODEL_TYPES:
            raise InputError(f"--model {self.text}: no tiny model {self.name!r}; choose from {', '.join(TINY_MODEL_TYPES)}")
        check_attention(self.attn_implementation)
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype {self.dtype}: not a floating-point torch dtype; use one of {', '.join(DTYPES)}")
        if self.quantization is not None:
            check_quantization(self.quantization)
        if self.device_map is not None and "cuda" in str(self.device_map) and not torch.cuda.is_available():
            raise InputError(f"--device-map {self.device_map}: no CUDA device is available on this machine "
                             "(leave it out to run on the CPU)")

    @property
    def kind(self) -> str:
        head = self.text.partition(":")[0]
        return head if head in ("organism", "tiny") else "checkpoint"

    @property
    def name(self) -> str:
        """The organism (default: the first) or tiny model type named after ``organism:``/``tiny:``."""
        name = self.text.partition(":")[2]
        return name or ORGANISMS[0] if self.kind == "organism" else name

    def _folder(self) -> str:
        from .tiny import tiny_folder

        if self.kind == "organism":
            return str(organism_path(self.name))
        if self.kind == "tiny":
            return str(tiny_folder(self.name))
        if self.remote and Path(self.text).is_dir():  # the server finds a local folder by its absolute path
            return str(Path(self.text).resolve())
        return self.text

    def adapter(self) -> Adapter:
        """The model's adapter from its config and processor only (no weights)."""
        if self._loaded is not None:
            return self._loaded.adapter
        if self._adapter is None:
            try:
                self._adapter = read_adapter(self._folder(), self.revision)
            except OSError as error:
                raise InputError(f"--model {self.text}: cannot read its config or processor ({error})") from error
        return self._adapter

    def load(self) -> LoadedModel:
        """Load the weights (once) for tracing."""
        if self._loaded is None:
            self._loaded = load_checkpoint(self._folder(), dtype=self.dtype, device_map=self.device_map,
                                      attn_implementation=self.attn_implementation, revision=self.revision,
                                      quantization=self.quantization, adapter=self.adapter(), remote=self.remote)
            if self.kind == "organism":
                self._loaded.provenance.update(model=f"organism:{self.name}", revision="shipped")
            elif self.kind == "tiny":  # a temporary folder; the seed fixes the weights
                self._loaded.provenance.update(model=f"tiny:{self.name}", revision="seed-0")
        return self._loaded


def load_model(model: str = "organism", **options: Any) -> LoadedModel:
    """Load ``model`` for tracing: ``organism[:NAME]``, ``tiny:TYPE``, a Hub id or a local folder,
    the strings ``--model`` takes. ``options`` are :class:`ModelSpec`'s (``attn_implementation``,
    ``dtype``, ``device_map``, ``revision``, ``quantization``, ``remote``); this is
    ``ModelSpec(model, **options).load()``.

    >>> loaded = load_model("organism")
    >>> loaded.provenance["model"], loaded.adapter.shape.n_layers
    ('organism:qwen2_5_vl', 6)
    """
    return ModelSpec(model, **options).load()


def check_quantization(quantization: str) -> None:
    """Refuse a quantized load that cannot work here, before anything is read: bitsandbytes' 8-/4-bit
    kernels need CUDA and the optional extra."""
    import importlib.util

    if quantization not in QUANTIZATIONS:
        raise InputError(f"--quantization {quantization}: use one of {', '.join(QUANTIZATIONS)}")
    if not torch.cuda.is_available():
        raise InputError(f"--quantization {quantization}: bitsandbytes' {quantization} loading needs a CUDA device "
                         "and this machine has none; load in bfloat16 or float32 instead")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError(f"--quantization {quantization}: bitsandbytes is not installed "
                         "(pip install 'instruction-anchors[quant]')")


def as_spec(model: ModelSpec | LoadedModel | str) -> ModelSpec | LoadedModel:
    """A model argument as accepted by the runner: a spec string, a spec, or a loaded model."""
    return ModelSpec(model) if isinstance(model, str) else model


def adapter_of(model: ModelSpec | LoadedModel) -> Adapter:
    return model.adapter() if isinstance(model, ModelSpec) else model.adapter


def loaded_of(model: ModelSpec | LoadedModel) -> LoadedModel:
    return model.load() if isinstance(model, ModelSpec) else model


__all__ = ["ModelSpec", "adapter_of", "as_spec", "load_model", "loaded_of"]
