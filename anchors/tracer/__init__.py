"""The trace core: encode prompts with their token roles, then one nnsight trace (or generation)
per batch that applies interventions in place and returns small readout tensors."""

from .batching import Batch, batches, encode_samples
from .canary import EditsIgnoredError, check_edits_reach
from .encode import EncodedBatch, check_context, describe_row, encode_batch
from .generate import GenerationOutputs, generate_batch
from .trace import SITES, TraceOutputs, trace_batch
from .model_view import POINTS, ModelView, view
from .remote import in_one_request
from .token_table import token_table

__all__ = [
    "Batch", "EditsIgnoredError", "EncodedBatch", "GenerationOutputs", "SITES", "TraceOutputs", "batches", "check_context", "check_edits_reach", "describe_row",
    "encode_batch", "encode_samples", "generate_batch", "in_one_request", "trace_batch", "POINTS", "ModelView", "view", "token_table",
]
