"""Server-side classes for a local NDIF (``ndif`` 0.1.2) that runs on CPU; imported by Ray workers
of the stack :mod:`.ndif` starts, never by the client.

- :class:`CpuModelActor`: the stock model actor loads onto CUDA and frees CUDA memory after each
  request; this one loads onto the CPU and never parks on a GPU (``CACHEABLE = False``).
- :class:`ControllerActor`: ndif 0.1.2's evaluator calls nnsight 0.8.1's ``describe_checkpoint``
  with a ``trust_remote_code=`` argument it does not take, so every auto-deploy fails with "Could
  not deploy this model"; and it sizes a checkpoint from the Hub, which a local folder is not on.
  This controller's evaluator sizes a local folder from its weight files and describes a Hub id
  with the arguments nnsight accepts.

Running this module launches the detached controller on the Ray cluster named by ``RAY_ADDRESS``
(what ndif's own ``controller`` module does, with these classes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import ray
from ndif.services.ray.deployments.controller import controller as ndif_controller
from ndif.services.ray.deployments.controller.cluster.evaluator import CacheEntry, ModelEvaluator, _dtype_name
from ndif.services.ray.deployments.modeling.base import BaseModelDeployment
from nnsight.modeling.huggingface import HuggingFaceModel
from nnsight.modeling.mixins.remotable import Remotable, bytes_per_element

logger = logging.getLogger("anchors.ndif")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


class _CpuModelDeployment(BaseModelDeployment):
    CACHEABLE = False

    def load_from_disk(self) -> HuggingFaceModel:
        model = HuggingFaceModel.from_model_key(self.model_key, dispatch=True, dtype=self.dtype_name, **self.kwargs)
        model._module.requires_grad_(False)
        logger.info(f"Loaded {self.model_key} on the CPU")
        return model

    def cleanup(self) -> None:
        import gc

        self.kill_switch.clear()
        self.kill_reason = None
        self.execution_ident = None
        self.model.interleaver.cancel()
        gc.collect()


CpuModelActor = ray.remote(num_cpus=1, max_restarts=-1)(_CpuModelDeployment)


def _local_folder(model_key: str) -> Path | None:
    try:
        repo_id = json.loads(model_key.split(":", 1)[1]).get("repo_id", "")
    except (IndexError, ValueError, AttributeError):
        return None
    path = Path(repo_id)
    return path if path.is_absolute() and path.is_dir() else None


class FolderAwareEvaluator(ModelEvaluator):
    """Sizes a local checkpoint folder from its weight files (no Hub), a Hub id through nnsight's
    ``describe_checkpoint(model_key, dtype)``; tensor parallelism stays off."""

    def _entry(self, model_key: str, dtype: Any, trust_remote_code: bool) -> CacheEntry:
        resolved = _dtype_name(dtype)
        cached = self.cache.get(model_key)
        if cached is not None and cached.dtype == resolved and cached.trust_remote_code == trust_remote_code:
            return cached
        folder = _local_folder(model_key)
        if folder is not None:
            size = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES)
            config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else None
            entry = CacheEntry(size, round(size / bytes_per_element(resolved)), config, "local", resolved,
                               trust_remote_code, None)
        else:
            described = Remotable.describe_checkpoint(model_key, resolved)
            n_params = described.n_params or round(described.size_bytes / bytes_per_element(resolved))
            entry = CacheEntry(described.size_bytes, n_params, described.config, described.revision, resolved,
                               trust_remote_code, None)
        self.cache[model_key] = entry
        return entry


class _Controller(ndif_controller._ControllerActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stock = self.cluster.evaluator
        self.cluster.evaluator = FolderAwareEvaluator(stock.padding_factor, stock.padding_bias, None)


ControllerActor = ray.remote(num_cpus=1, num_gpus=0, max_restarts=-1, resources={"head": 1})(_Controller)


if __name__ == "__main__":
    import os

    ray.init(address=os.environ["RAY_ADDRESS"], namespace="NDIF", logging_level="error")
    ndif_controller.app()
