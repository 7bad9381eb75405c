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
from ..interventions.specs import EXACT_KNOCKOUT_METHODS
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt, TracedSample
from ..prompts.roles import role_label
from .base import Advance, Analysis, check_layers, check_window, positive
from .configs import ControlsConfig
from .knockout import Pathway, knockout_batch, knockout_dataset

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


class PositionControls(Analysis[VariantGroup]):
    """Samples are given as ``{variant: [TracedSample, ...]}``, the same ids in the same order."""

    experiment = "position_controls"
    Config = ControlsConfig
    pathways: dict[str, Pathway] = {target: (CUES, roles) for target, roles in CONTROL_TARGETS.items()}

    def resolve(self, adapter: Adapter) -> dict[str, Any]:
        shape = adapter.shape
        self.window = positive(self.config.window, "window")
        self.notes = check_window(self.window, shape)
        self.layers = check_layers(self.config.layers, shape)
        positive(self.config.max_batch_rows, "max_batch_rows")
        if self.config.method not in EXACT_KNOCKOUT_METHODS:
            raise InputError(f"position controls run exact knockouts: method must be one of {', '.join(EXACT_KNOCKOUT_METHODS)}, "
                             f"got {self.config.method!r}")
        return {"variants": list(self.variants), "window": self.window, "layers": list(self.layers),
                "method": self.config.method,
                "targets": {k: list(v) for k, v in CONTROL_TARGETS.items()}}

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
        self.variants = names
        return [VariantGroup(sid, {name: samples[name][n] for name in names}) for n, sid in enumerate(ids)]

    def prompts(self, item: VariantGroup) -> list[Prompt]:
        return [s.prompt for s in item.variants.values()]

    def samples_of(self, item: VariantGroup) -> list[TracedSample]:
        return list(item.variants.values())

    def steps(self, chunk: Sequence[VariantGroup]) -> int:
        return len(self.variants) * (1 + len(self.pathways) * len(self.layers))

    def run_batch(self, loaded: LoadedModel, chunk: Sequence[VariantGroup], advance: Advance) -> xr.Dataset:
        profiles = []
        for name in self.variants:
            samples = [group.variants[name] for group in chunk]
            arrays = knockout_batch(loaded, samples, self.pathways, (self.window,), self.layers, advance,
                                    method=self.config.method, max_rows=self.config.max_batch_rows)
            profile = knockout_dataset(samples, arrays, self.pathways, (self.window,), self.layers)
            profile = profile.isel(window=0, drop=True).drop_vars(["source", "target"]).rename(pathway="target")
            # the model's answer can differ between variants: keep it per variant
            profiles.append(profile.reset_coords(["answer", "followed"]).drop_vars(["task", "instructed", "style"]))
        merged = xr.concat(profiles, dim=xr.DataArray(self.variants, dims="variant", name="variant"), data_vars="all",
                           coords="minimal", compat="override")
        first = [group.variants[self.variants[0]] for group in chunk]
        merged = merged.assign_coords(task=("sample", [s.task for s in first]), style=("sample", [s.style for s in first]),
                                      instructed=("sample", [s.instructed for s in first]))
        merged["target_roles"] = ("target", [role_label(roles) for roles in CONTROL_TARGETS.values()])
        return merged
