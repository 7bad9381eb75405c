"""Greedy generation under interventions, as one nnsight ``generate`` trace per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import nnsight
import torch

from ..interventions.plan import plan_layers
from ..interventions.specs import Intervention
from ..models.loading import LoadedModel
from ..readouts.subspaces import Subspaces
from .encode import EncodedBatch
from .layer_edits import apply_layer
from .trace import to_host
from .model_view import ModelView
from .remote import remote_kwargs


@dataclass
class GenerationOutputs:
    """B = batch, T = ``max_new_tokens``, U = union of the batch's dictionary ids.

    - ``tokens`` (B, T): the generated token ids.
    - ``step_logits`` (B, T, U): each step's logits on the dictionary ids.
    """

    tokens: torch.Tensor
    step_logits: torch.Tensor


def generate_batch(
    loaded: LoadedModel,
    batch: EncodedBatch,
    subspaces: Subspaces,
    interventions: Sequence[Intervention] = (),
    *,
    max_new_tokens: int = 4,
    remote: bool | str | None = None,
) -> GenerationOutputs:
    """Greedy generation with ``interventions``: knockouts act in the prefill and in every decode
    step (decode queries are ``generated`` tokens; the prompt sits in the KV cache); a HeadScale
    acts in the prefill only, or in every step when its ``steps`` is ``"all"``.

    >>> from anchors.readouts import Subspaces
    >>> space = Subspaces.from_ids(batch.sample_ids, [[5]] * 2, [[6]] * 2)
    >>> out = anchors.generate_batch(view.loaded, batch, space, [anchors.HeadScale(((3, 1),))], max_new_tokens=2)
    >>> tuple(out.tokens.shape), tuple(out.step_logits.shape)
    ((2, 2), (2, 2, 2))"""
    model, adapter, view = loaded.model, loaded.adapter, ModelView(loaded)
    device = loaded.device
    plan = plan_layers(list(interventions), adapter.shape.n_layers, adapter.attention_layers(model))
    union = subspaces.union.to(device)
    inputs = batch.inputs.to(device)
    prompt_length = batch.roles.shape[1]
    with torch.no_grad(), model.generate(
        inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False, **remote_kwargs(loaded, remote)
    ) as tracer:
        step_logits = nnsight.save([])
        for step in tracer.iter[:max_new_tokens]:
            for i, layer_plan in plan.items():
                apply_layer(view, batch, i, layer_plan, prefill=step == 0)
            step_logits.append(adapter.unembed(model).output[:, -1, union])
        tokens = nnsight.save(tracer.result)
    return GenerationOutputs(tokens=tokens[:, prompt_length:].cpu(), step_logits=to_host(torch.stack(step_logits, 1)))
