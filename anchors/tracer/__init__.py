"""The trace core: encode prompts with their token roles, then one nnsight trace (or generation)
per batch that applies interventions in place and returns small readout tensors."""

from .batching import Batch, batches, encode_samples
from .encode import EncodedBatch, check_context, describe_row, encode_batch
from .generate import GenerationOutputs, generate_batch
from .trace import SITES, TraceOutputs, trace_batch
from .model_view import POINTS, ModelView, view
from .token_table import token_table

__all__ = [
    "Batch", "EncodedBatch", "GenerationOutputs", "SITES", "TraceOutputs", "batches", "check_context", "describe_row",
    "encode_batch", "encode_samples", "generate_batch", "trace_batch", "POINTS", "ModelView", "view", "token_table",
]
