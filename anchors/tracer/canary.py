"""The rule that edits reach the model: a knockout edits the 4-D attention mask (Eq 3) and a head
intervention scales the output projection's input per head (§4.2), so each must move the output.
An attention implementation that never receives the 4-D mask (flash attention gets a 2-D padding
mask or None) would turn every knockout into a silent no-op: NSSD 0 everywhere, read as a finding.

Locally the rule is checked from the config, before any weights load (``--attn-implementation``:
``anchors.models.loading.check_attention``). A remote deployment's implementation is not
known to the client, so before a remote sweep that edits, one request (:func:`check_edits_reach`)
runs one sample three ways: unedited; with every prompt token cut from the answer position in
every layer; with every softmax head scaled to zero. A deployment where an edit leaves the
answer's logits unchanged is refused, naming the edit and the likely cause.
"""

from __future__ import annotations

from ..errors import AnchorsError
from ..interventions.specs import HeadScale, Knockout
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from .batching import encode_samples
from .remote import in_one_request
from .trace import trace_batch

#: the smallest change of the answer's logits (max over the dictionary ids) that counts as moved
MOVED = 1e-4


class EditsIgnoredError(AnchorsError):
    """A remote deployment runs edits without effect; the message names the edit and the cause."""


def canary_edits(loaded: LoadedModel) -> dict[str, list]:
    """The two edits the canary applies, by what they test: the attention mask, head outputs."""
    shape, layers = loaded.adapter.shape, loaded.adapter.attention_layers(loaded.model)
    every_layer = Knockout("prompt", "generated", layer=shape.n_layers // 2, window=2 * shape.n_layers)
    every_head = HeadScale(tuple((layer, head) for layer in layers for head in range(shape.n_heads)), 0.0)
    return {"mask edits (a knockout)": [every_layer], "head scaling": [every_head]}


def check_edits_reach(loaded: LoadedModel, sample: TracedSample) -> dict[str, float]:
    """How far each canary edit moved the answer's logits on ``sample`` (one request on a remote
    model); raises :class:`EditsIgnoredError` when one moved them less than :data:`MOVED`.

    >>> moved = anchors.tracer.check_edits_reach(view.loaded, samples[0])
    >>> sorted(moved), all(v > 1e-4 for v in moved.values())
    (['head scaling', 'mask edits (a knockout)'], True)"""
    encoded, space = encode_samples(loaded.adapter, [sample])
    edits = canary_edits(loaded)
    clean, *edited = in_one_request(loaded, [lambda remote, spec=spec: trace_batch(loaded, encoded, space, spec,
                                                                                  remote=remote).answer_logits
                                             for spec in [[], *edits.values()]])
    moved = {name: float((logits - clean).abs().max()) for name, logits in zip(edits, edited)}
    ignored = [name for name, change in moved.items() if not change >= MOVED]
    if ignored:
        where = loaded.provenance.get("backend", "this model")
        raise EditsIgnoredError(
            f"the deployment at {where} ignores {' and '.join(ignored)}: the edit left the answer's logits "
            f"unchanged on sample {sample.sample_id} (largest change {max(moved[n] for n in ignored):.1e} < {MOVED}), "
            "so every result would read as 'no effect'. A server whose attention never receives the 4-D mask "
            "(flash attention) does this; ask its operator for an 'eager' or 'sdpa' deployment, or run locally.")
    return moved
