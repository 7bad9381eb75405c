"""The log-likelihood of a given continuation (a reference caption) under interventions, computed
inside one nnsight trace per prompt: teacher forcing, the continuation appended after the prompt's
assistant opener."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import nnsight
import torch

from ..interventions.plan import plan_layers
from ..interventions.specs import Intervention
from ..models.loading import LoadedModel
from ..prompts.roles import ROLE_CODE
from .encode import EncodedBatch
from .layer_edits import apply_layer
from .model_view import ModelView
from .remote import remote_kwargs


def with_continuation(batch: EncodedBatch, continuation: Sequence[int]) -> EncodedBatch:
    """A one-row batch with ``continuation`` token ids appended: attended to, role ``generated``,
    and zero in every other per-position input (text, not image, in the token-type inputs)."""
    ids = batch.inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ValueError("with_continuation takes a one-row batch")
    extra = torch.tensor([list(continuation)], dtype=ids.dtype)
    inputs = batch.inputs.copy()
    for name, value in batch.inputs.items():
        if isinstance(value, torch.Tensor) and value.shape[:2] == ids.shape:
            added = extra if name == "input_ids" else torch.ones_like(extra) if name == "attention_mask" else torch.zeros_like(extra)
            inputs[name] = torch.cat([value, added.to(value.dtype)], dim=1)
    roles = torch.cat([batch.roles, torch.full_like(extra, ROLE_CODE["generated"])], dim=1)
    return replace(batch, inputs=inputs, roles=roles)


def continuation_log_likelihood(loaded: LoadedModel, batch: EncodedBatch, continuation: Sequence[int],
                                interventions: Sequence[Intervention] = ()) -> torch.Tensor:
    """Per-token log-probabilities (C,) of ``continuation`` after the one prompt of ``batch``, with
    ``interventions`` applied as in :func:`~anchors.tracer.trace.trace_batch`. The perplexity is
    ``exp(-mean)``."""
    model, adapter = loaded.model, loaded.adapter
    full = with_continuation(batch, continuation)
    plan = plan_layers(list(interventions), adapter.shape.n_layers, adapter.attention_layers(model))
    n = len(continuation)
    targets = torch.tensor(list(continuation), device=loaded.device)
    with torch.no_grad(), model.trace(full.inputs.to(loaded.device), **remote_kwargs(loaded)):
        for i, step in plan.items():
            apply_layer(ModelView(loaded), full, i, step, prefill=True)
        logits = model.output.logits[0, -n - 1 : -1].float()
        scores = nnsight.save(logits.log_softmax(-1).gather(1, targets[:, None])[:, 0])
    return scores.cpu()
