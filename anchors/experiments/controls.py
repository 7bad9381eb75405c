"""Position controls (Fig 3a, App C.2): cut attention from the modality cues (visual, context) to
the semantic instruction part versus to the format part (plus any inserted system prompt, which
counts as format), for each prompt variant (default, swapped order, system prompt before/between)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import xarray as xr

from ..datasets.folder import DataFolder
from ..datasets.subset import Subset
from ..datasets.instructions import VARIANTS
from ..errors import InputError
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt, TracedSample
from ..prompts.roles import role_label
from .base import Advance, Analysis, Cost, Resolved, check_layers, check_window
from .configs import ControlsConfig
from .knockout import Pathway, knockout_batch, knockout_cost, knockout_dataset

CUES: tuple[str, ...] = ("visual", "context")
CONTROL_TARGETS: dict[str, tuple[str, ...]] = {
    "semantic": ("instruction_semantic",),
    "format": ("instruction_format", "system"),
}


@dataclass(frozen=True)
class VariantGroup:
    """One sample in every prompt variant (same id, same dictionaries, rearranged prompt)."""

    sample_id: str
    variants: Mapping[str, TracedSample]

    def key(self) -> list:
        return [self.sample_id, {name: s.key() for name, s in self.variants.items()}]


@dataclass(frozen=True)
class ControlsPlan(Resolved):
    """Position controls resolved against a model and the variants given."""

    variants: tuple[str, ...]
    window: int
    layers: tuple[int, ...]
    method: str
    max_batch_rows: int

    def as_config(self) -> dict[str, Any]:
        return {"variants": list(self.variants), "window": self.window, "layers": list(self.layers),
                "method": self.method, "targets": {k: list(v) for k, v in CONTROL_TARGETS.items()}}


class PositionControls(Analysis[VariantGroup]):
    """Samples are given as ``{variant: [TracedSample, ...]}``, the same ids in the same order.

    >>> controls = anchors.run(anchors.PositionControls(window=1), "organism",
    ...                        {"default": samples, "swapped": samples})
    >>> controls.variant.values.tolist()
    ['default', 'swapped']"""

    experiment = "position_controls"
    Config = ControlsConfig
    pathways: dict[str, Pathway] = {target: (CUES, roles) for target, roles in CONTROL_TARGETS.items()}

    def resolve(self, adapter: Adapter, items: Sequence[VariantGroup] = ()) -> ControlsPlan:
        config, shape = self.config, adapter.shape
        config.check()
        variants = tuple(config.variants or (items[0].variants if items else ()))
        return ControlsPlan(variants, config.window, check_layers(config.layers, shape), config.method,
                            config.max_batch_rows, notes=tuple(check_window(config.window, shape)))

    def from_folder(self, folder: DataFolder, tokenizer: Any, subset: Subset, log: Callable[[str], None]) -> Any:
        return folder.variants(tokenizer, self.config.variants or VARIANTS, subset=subset, log=log)

    def items(self, samples: Mapping[str, Sequence[TracedSample]]) -> list[VariantGroup]:
        names = list(self.config.variants or samples)
        missing = [name for name in names if name not in samples]
        if not names or missing:
            raise InputError(f"position controls need samples for every variant; missing: {missing or 'all'}")
        ids = [s.sample_id for s in samples[names[0]]]
        for name in names[1:]:
            if [s.sample_id for s in samples[name]] != ids:
                raise InputError(f"variant {name!r} must hold the same samples, in the same order, as {names[0]!r}")
        return [VariantGroup(sid, {name: samples[name][n] for name in names}) for n, sid in enumerate(ids)]

    def prompts(self, item: VariantGroup) -> list[Prompt]:
        return [s.prompt for s in item.variants.values()]

    def samples_of(self, item: VariantGroup) -> list[TracedSample]:
        return list(item.variants.values())

    def steps(self, plan: ControlsPlan, chunk: Sequence[VariantGroup]) -> int:
        return len(plan.variants) * (1 + len(self.pathways) * len(plan.layers))

    def cost(self, plan: ControlsPlan, adapter: Adapter, chunk: Sequence[VariantGroup]) -> Cost:
        each = [knockout_cost(adapter, [group.variants[name] for group in chunk], self.pathways, (plan.window,),
                              plan.layers, plan.method, plan.max_batch_rows) for name in plan.variants]
        return Cost(sum(c.forwards for c in each), sum(c.naive for c in each), len(each), length=max(c.length for c in each),
                    returned=sum(c.returned for c in each), starts=max(c.starts for c in each),
                    rerun_rows=max(c.rerun_rows for c in each), settings=sum(c.settings for c in each),
                    remote_forwards=sum(c.on(remote=True) for c in each))

    def run_batch(self, plan: ControlsPlan, loaded: LoadedModel, chunk: Sequence[VariantGroup],
                  advance: Advance) -> xr.Dataset:
        profiles = []
        for name in plan.variants:
            samples = [group.variants[name] for group in chunk]
            arrays = knockout_batch(loaded, samples, self.pathways, (plan.window,), plan.layers, advance,
                                    method=plan.method, max_rows=plan.max_batch_rows)
            profile = knockout_dataset(samples, arrays, self.pathways, (plan.window,), plan.layers)
            profile = profile.isel(window=0, drop=True).drop_vars(["source", "target"]).rename(pathway="target")
            # the model's answer can differ between variants: keep it per variant
            profiles.append(profile.reset_coords(["answer", "followed"]).drop_vars(["task", "instructed", "style"]))
        merged = xr.concat(profiles, dim=xr.DataArray(list(plan.variants), dims="variant", name="variant"),
                           data_vars="all", coords="minimal", compat="override")
        first = [group.variants[plan.variants[0]] for group in chunk]
        merged = merged.assign_coords(task=("sample", [s.task for s in first]), style=("sample", [s.style for s in first]),
                                      instructed=("sample", [s.instructed for s in first]))
        merged["target_roles"] = ("target", [role_label(roles) for roles in CONTROL_TARGETS.values()])
        return merged
