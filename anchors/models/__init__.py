"""Models: adapters (structural, plus subclasses for quirky families), loading (with the ``--model`` grammar), the
shipped organisms and tiny random-weight instances for tests.

Names are imported on first use, so ``anchors.models.organisms`` loads without torch.
"""

from __future__ import annotations

from ..lazy import lazy_names

_HOMES = {
    "VERIFIED": "adapters", "Adapter": "adapters", "AdapterError": "adapters", "Shape": "adapters",
    "adapter_class": "adapters", "LoadedModel": "loading", "load_checkpoint": "loading", "load_model": "spec",
    "read_adapter": "loading",
    "ORGANISMS": "organisms", "organism_path": "organisms", "ModelSpec": "spec", "adapter_of": "spec",
    "as_spec": "spec", "loaded_of": "spec",
}
__all__ = sorted(_HOMES)


__getattr__ = lazy_names(__name__, _HOMES)
