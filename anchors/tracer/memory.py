"""What a batch's traces hold in memory, estimated from the model's sizes alone (the dry run).

A forward of R rows of T tokens holds, besides the weights: a layer's temporaries (the residual,
the normed input, queries, keys, values, the attention output and the MLP's gate, up and product:
about ``6·hidden + 3·MLP width`` values per token), every layer's keys and values (the cache a
trace fills), one layer's attention scores (R, heads, T, T) (eager attention, or sdpa's math
kernel, which is what a CPU runs with a mask), the 4-D mask the knockouts edit and the answer
position's logits in float32. The prefix-reuse sweep (``--method reuse``) also keeps the clean
run's layer inputs at every start layer while it reruns up to ``max_rows`` rows. The vision
encoder's activations are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Sequence

from ..models.adapters import Shape

ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Held:
    """One tensor (or set of tensors) a batch holds: what it is, its shape and bytes per value."""

    name: str
    shape: tuple[int, ...]
    itemsize: int

    @property
    def bytes(self) -> int:
        return prod(self.shape) * self.itemsize


def itemsize(dtype: str) -> int:
    """Bytes per value of the weights' dtype (``torch.bfloat16`` or ``bfloat16``)."""
    return ITEMSIZE.get(str(dtype).removeprefix("torch."), 4)


def forward_held(shape: Shape, rows: int, length: int, size: int) -> list[Held]:
    """What one forward of ``rows`` × ``length`` tokens holds at its peak (module docstring)."""
    layers, kv = shape.n_layers, shape.n_kv_heads
    return [
        Held("a layer's temporaries (rows, tokens, 6·hidden + 3·MLP width)",
             (rows, length, 6 * shape.hidden_size + 3 * shape.intermediate_size), size),
        Held("keys and values of every layer (2, layers, rows, KV heads, tokens, head dim)",
             (2, layers, rows, kv, length, shape.head_dim), size),
        Held("one layer's attention scores (rows, heads, tokens, tokens)", (rows, shape.n_heads, length, length), size),
        Held("the 4-D attention mask (rows, 1, tokens, tokens)", (rows, 1, length, length), 4),
        Held("the answer position's logits, float32 (rows, 3 × vocabulary)", (rows, 3 * shape.vocab_size), 4),
    ]


def batch_held(shape: Shape, dtype: str, batch: int, length: int, method: str | None = None, starts: int = 0,
               rerun_rows: int = 0) -> list[Held]:
    """The largest of what a batch's traces hold, phase by phase: the clean or edited forwards,
    and under ``reuse`` the clean run's keys, values and layer inputs at ``starts`` start layers
    kept while a rerun of ``rerun_rows`` rows runs."""
    size = itemsize(dtype)
    held = forward_held(shape, batch, length, size)
    if method == "reuse" and rerun_rows:
        kept = [h for h in held if h.name.startswith("keys")]
        kept.append(Held("the clean run's layer inputs (start layers, rows, tokens, hidden)",
                         (starts, batch, length, shape.hidden_size), size))
        rerun = [Held(f"rerun: {h.name}", h.shape, h.itemsize) for h in forward_held(shape, rerun_rows, length, size)]
        if sum(h.bytes for h in kept + rerun) > sum(h.bytes for h in held):
            held = kept + rerun
    return sorted(held, key=lambda h: -h.bytes)


def peak_bytes(weights: int, held: Sequence[Held]) -> int:
    """The weights plus everything held at the peak."""
    return weights + sum(h.bytes for h in held)
