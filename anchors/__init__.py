"""instruction-anchors: dissect how multimodal LLMs arbitrate between modalities under instructions."""

from .tracer.adapters import Adapter, AdapterError
from .tracer.loading import LoadedModel, load_model
from .tracer.roles import ROLES, EncodedBatch, Prompt, PromptError, encode_batch

__version__ = "0.1.0"

__all__ = [
    "Adapter", "AdapterError", "EncodedBatch", "LoadedModel", "Prompt", "PromptError", "ROLES", "__version__",
    "encode_batch", "load_model",
]
