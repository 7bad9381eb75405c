"""What every analysis is to the runner: a serialisable config, resolved against a model into
an immutable plan, how many steps a batch takes, one batch's per-sample results, and the
aggregates computed after merging.

An analysis's options are a frozen dataclass in :mod:`anchors.experiments.configs`; the command
line builds its flags from the same fields, so the API and the CLI share defaults and store the
same ``attrs["config"]``. :meth:`Analysis.resolve` returns a frozen :class:`Resolved` plan that
the runner hands to :meth:`~Analysis.steps`, :meth:`~Analysis.run_batch` and
:meth:`~Analysis.finalise`: an analysis keeps no state set after construction, so what a Ray
worker receives is its config and that plain value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Generic, Sequence, TypeVar

import xarray as xr

from ..datasets.folder import DataFolder
from ..datasets.subset import Subset
from ..errors import InputError
from ..interventions.specs import check_remote_method
from ..models.adapters import Adapter, Shape
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt, TracedSample
from ..tracer.encode import encode_batch
from .ranking import rank_heads

Advance = Callable[[int], None]
Item = TypeVar("Item")
Heads = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Resolved:
    """A config resolved against one model's sizes (no weights): everything the batches and the
    aggregation need, as plain immutable data. ``notes`` are remarks worth a user's attention;
    :meth:`as_config` is the JSON-ready ``attrs["config"]`` (defaults made explicit)."""

    notes: tuple[str, ...] = field(default=(), kw_only=True)

    def as_config(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Cost:
    """What one batch costs, counted without a model (the dry run): ``forwards`` (traces, ``atp``'s
    with its backward pass, and stacked reruns) for the chosen method and ``naive`` for one trace
    per setting; ``requests`` on a remote model; ``bound``: whether the counts are upper bounds,
    reached only when the outcomes the batch meets make every trace necessary (which samples
    followed; which settings get verified); ``length``: the batch's tokens per row (padded);
    ``returned``: bytes a remote batch brings back (0: not estimated); under ``reuse``, the start
    layers whose inputs the clean run keeps and the rows of the largest stacked rerun; ``settings``:
    the edits it compares with the unedited batch (knockouts, head scalings); ``remote_forwards``:
    the forwards on a remote model, where they differ (``reuse`` there runs its clean trace twice).

    >>> Cost(forwards=5, naive=37, requests=1, remote_forwards=6).on(remote=True)
    6"""

    forwards: int
    naive: int
    requests: int
    bound: bool = False
    length: int = 0
    returned: int = 0
    starts: int = 0
    rerun_rows: int = 0
    settings: int = 0
    remote_forwards: int | None = None

    def on(self, remote: bool) -> int:
        """The forwards on a remote model (``remote``) or a local one."""
        return self.remote_forwards if remote and self.remote_forwards is not None else self.forwards


def head_count(value: int | str, total: int) -> int:
    """A number of heads: ``value`` itself, or ``"P%"`` of the model's ``total`` heads rounded half
    up (at least one)."""
    text = str(value).strip()
    if text.endswith("%"):
        return max(1, int(float(text[:-1]) * total / 100 + 0.5))
    return int(text)


def check_window(window: int, shape: Shape) -> list[str]:
    """A note when a knockout window covers more layers than the model has."""
    if window > shape.n_layers:
        return [f"window {window} is wider than the model's {shape.n_layers} layers: each knockout covers layers "
                f"centre-{window // 2}…centre+{(window - 1) // 2}, clipped, so most cover every layer"]
    return []


def check_layers(layers: Sequence[int] | None, shape: Shape) -> tuple[int, ...]:
    """The chosen layers (all when None), refused when outside the model."""
    n = shape.n_layers
    chosen = tuple(range(n)) if layers is None else tuple(int(l) for l in layers)
    bad = [l for l in chosen if not 0 <= l < n]
    if bad:
        raise InputError(f"layers {bad} outside 0…{n - 1}")
    return chosen


def softmax_pool(adapter: Adapter) -> list[int]:
    """Every head (flat index ``layer * n_heads + head``) of the layers with softmax attention: the
    pool random heads are drawn from, so a draw never lands on a hybrid decoder's linear-attention
    layer, where head scaling is refused."""
    n_heads, softmax = adapter.shape.n_heads, set(adapter.attention_layers(None))
    return [h for h in range(adapter.shape.n_layers * n_heads) if h // n_heads in softmax]


def draw_heads(rng: Any, pool: Sequence[int], k: int) -> list[int]:
    """``k`` distinct heads of ``pool`` drawn by ``rng`` (a numpy Generator)."""
    return [int(h) for h in rng.choice(pool, size=k, replace=False)]


class Analysis(Generic[Item]):
    """Base class. Subclasses set ``experiment`` and ``Config`` and implement :meth:`resolve` and
    :meth:`run_batch`. Nothing is assigned to an analysis after ``__init__``."""

    experiment: ClassVar[str]
    Config: ClassVar[type]
    unit: ClassVar[str] = "traces"
    #: whether it edits the forward (knockouts, head scaling): a remote run first checks that the
    #: deployment's edits take effect (:func:`~anchors.tracer.canary.check_edits_reach`)
    edits: ClassVar[bool] = True

    def __init__(self, config: Any = None, **options: Any) -> None:
        self.config = config if config is not None else self.Config(**options)

    def resolve(self, adapter: Adapter, items: Sequence[Item]) -> Resolved:
        """Check the config against the model (its adapter: sizes, model type; no weights) and the
        items, and return the resolved plan."""
        raise NotImplementedError

    def check_remote(self) -> None:
        """Refuse options that cannot run on a remote (NDIF) server; called before the model loads:
        a knockout ``method`` (knockout profile, position controls) must be one that runs there."""
        method = getattr(self.config, "method", None)
        if method is not None:
            check_remote_method(method)

    def from_folder(self, folder: DataFolder, tokenizer: Any, subset: Subset, log: Callable[[str], None]) -> Any:
        """The samples this analysis takes, read from a data folder (tokenised with ``tokenizer``)."""
        return folder.traced(tokenizer, subset=subset, log=log)

    def items(self, samples: Any) -> list[Item]:
        """The units batched along ``sample`` (each has ``sample_id`` and ``key()``)."""
        return list(samples)

    def prompts(self, item: Item) -> list[Prompt]:
        """Every prompt an item will run (checked against the context length before loading)."""
        return [item.prompt]  # type: ignore[attr-defined]

    def samples_of(self, item: Item) -> list[TracedSample]:
        """The traced samples behind an item (hashed into the result's ``dictionary_hash``)."""
        return [item]  # type: ignore[list-item]

    def identity(self) -> dict[str, Any]:
        """Inputs besides the config and samples that decide the result (fingerprinted for resuming)."""
        return {}

    def steps(self, plan: Any, chunk: Sequence[Item]) -> int:
        """How many times :meth:`run_batch` calls ``advance(1)`` for ``chunk``."""
        return 1

    def cost(self, plan: Any, adapter: Adapter, chunk: Sequence[Item]) -> Cost:
        """What :meth:`run_batch` costs on ``chunk``, counted without a model (the dry run): by
        default one trace, and one request, per step, as an upper bound."""
        steps = self.steps(plan, chunk)
        prompts = [prompt for item in chunk for prompt in self.prompts(item)]
        length = int(encode_batch(adapter, prompts, allow_text_only=True).roles.shape[1])
        return Cost(steps, steps, steps, bound=True, settings=steps, length=length)

    def run_batch(self, plan: Any, loaded: LoadedModel, chunk: Sequence[Item], advance: Advance) -> xr.Dataset:
        """One batch's per-sample results under the resolved ``plan``."""
        raise NotImplementedError

    def finalise(self, plan: Any, merged: xr.Dataset) -> xr.Dataset:
        """Aggregates over all samples, computed after the batches are merged."""
        return merged


class RankedHeadsAnalysis(Analysis[Item]):
    """An analysis that blocks or scales heads chosen from a ranking: pass the lens result
    (``lens``) the heads are ranked from (Eq 9)."""

    def __init__(self, lens: xr.Dataset, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.ranked = rank_heads(lens)

    def identity(self) -> dict[str, Any]:
        return {"ranking": hashlib.sha256(self.ranked.ranking.values.tobytes()).hexdigest()[:16]}

    def head_counts(self, adapter: Adapter, ks: Sequence[int | str]) -> tuple[int, ...]:
        """``ks`` as numbers of heads (``"P%"`` of the model's heads resolved), sorted and unique;
        refused outside 1…(all heads)."""
        total = adapter.shape.n_layers * adapter.shape.n_heads
        counts = [head_count(k, total) for k in ks]
        if not counts or any(k < 1 or k > total for k in counts):
            raise InputError(f"every k must be in 1…{total} (the model's heads), got {list(ks)}")
        return tuple(sorted(set(counts)))

    def softmax_heads(self, adapter: Adapter, modality: str) -> tuple[list[int], list[int]]:
        """``modality``'s ranking (flat head indices, best first) and every head, both restricted to
        the layers with softmax attention (all but a hybrid decoder's linear-attention ones)."""
        pool = softmax_pool(adapter)
        allowed = set(pool)
        return [int(h) for h in self.ranked.ranking.sel(modality=modality).values if int(h) in allowed], pool

    def check_ranking(self, adapter: Adapter) -> None:
        """Refuse a ranking made on another model (its head grid or model type differs)."""
        shape = adapter.shape
        grid, lens_type = (self.ranked.sizes["layer"], self.ranked.sizes["head"]), self.ranked.attrs.get("model_type")
        if grid != (shape.n_layers, shape.n_heads) or lens_type not in (None, "", adapter.config.model_type):
            raise InputError(f"the lens result comes from another model ({lens_type}, {grid[0]} layers × {grid[1]} heads); "
                             f"this model is {adapter.config.model_type}, {shape.n_layers} layers × {shape.n_heads} heads")
