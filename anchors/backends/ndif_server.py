"""Server-side classes for a local NDIF (``ndif`` 0.1.2) that runs on CPU; imported by Ray workers
of the stack :mod:`.ndif` starts, never by the client.

- :class:`CpuModelActor`: the stock model actor loads onto CUDA and frees CUDA memory after each
  request; this one loads onto the CPU and never parks on a GPU (``CACHEABLE = False``). Like
  ndif's own ``SandboxModelActor`` it serves a trusted request in-process and an untrusted one (an
  ordinary API key's) through ndif's process sandbox: a fresh runner process per request executes
  the block against a weightless model and drives this actor's forward over a socket. The pool
  keeps ``NDIF_SANDBOX_POOL_SIZE`` runners warm (2 in the local stack: each holds ≈0.8 GB, a torch
  import and a meta model, and starting one takes ≈6 s of a CPU; ndif's 7 do not fit a 2-core machine), and a runner may take up to :data:`RUNNER_START_S` to start.
  A checkpoint folder named in the stack folder's ``deployments.json`` (``{folder: {option: value}}``)
  is loaded with those ``from_pretrained`` options; ``"pin_attention": true`` keeps its attention
  implementation although nnsight ≥0.8 asks the server to switch to the client's with every
  request. ``{"attn_implementation": "causal-only", "pin_attention": true}`` is a deployment that
  ignores mask edits: :func:`causal_only_attention`, registered here, stands in for flash attention
  on a CPU (it never receives the 4-D mask).
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
import os
from pathlib import Path
from typing import Any

import ray
from ndif.services.ray.deployments.controller import controller as ndif_controller
from ndif.services.ray.deployments.controller.cluster.evaluator import CacheEntry, ModelEvaluator, _dtype_name
from ndif.services.ray.deployments.modeling.base import BaseModelDeployment
from ndif.services.ray.sandbox import host as sandbox_host
from ndif.services.ray.sandbox.model import SandboxModelDeployment
from nnsight.modeling.huggingface import HuggingFaceModel
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from nnsight.modeling.mixins.remotable import Remotable, bytes_per_element

logger = logging.getLogger("anchors.ndif")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
#: seconds a sandbox runner may take to import torch and build its meta model (ndif waits 30 s, too
#: little on a loaded 2-core machine)
RUNNER_START_S = 180.0


def causal_only_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """Scaled dot-product attention that drops the 4-D mask and is only causal, as flash attention
    receives no 4-D mask: a deployment that silently ignores knockouts, for tests."""
    return sdpa_attention_forward(module, query, key, value, None, **kwargs)


AttentionInterface.register("causal-only", causal_only_attention)
AttentionMaskInterface.register("causal-only", sdpa_mask)


def deployment_options(model_key: str) -> dict[str, Any]:
    """The ``from_pretrained`` options the stack folder's ``deployments.json`` gives a checkpoint folder."""
    folder, listing = _local_folder(model_key), Path(os.environ.get("NDIF_HOME", ".")) / "deployments.json"
    if folder is None or not listing.is_file():
        return {}
    return json.loads(listing.read_text()).get(str(folder), {})


class _CpuModelDeployment(BaseModelDeployment):
    CACHEABLE = False

    def load_from_disk(self) -> HuggingFaceModel:
        options = {**self.kwargs, **deployment_options(self.model_key)}
        pinned = options.pop("pin_attention", False)
        model = HuggingFaceModel.from_model_key(self.model_key, dispatch=True, dtype=self.dtype_name, **options)
        model._module.requires_grad_(False)
        if pinned:  # keep the deployment's attention whatever implementation the request asks for
            set_env = model._remoteable_set_env
            model._remoteable_set_env = lambda env: set_env({k: v for k, v in (env or {}).items()
                                                             if k != "attn_implementation"})
        logger.info(f"Loaded {self.model_key} on the CPU with {options}")
        return model

    def cleanup(self) -> None:
        import gc

        self.kill_switch.clear()
        self.kill_reason = None
        self.execution_ident = None
        self.model.interleaver.cancel()
        gc.collect()


class _PatientPool(sandbox_host.Pool):
    """ndif's pool, warmed on the first untrusted request rather than at deployment (a model only
    ever served trusted starts no runner) and patient with a slow start."""

    def __init__(self, size: int, **options: Any) -> None:
        self.warm_size = size
        super().__init__(size=0, **options)

    def _spawn(self) -> sandbox_host.Sandbox:
        return sandbox_host.spawn(python=self.python, quiet=self.quiet, peers=self.peers, model_key=self.model_key,
                                  trust_remote_code=self.trust_remote_code, timeout=RUNNER_START_S)

    def acquire(self, timeout: float = RUNNER_START_S) -> sandbox_host.Sandbox:
        if self.size < self.warm_size:
            self.size = self.warm_size
            for _ in range(self.warm_size):
                self.refill()
        return super().acquire(timeout)


class _CpuSandboxDeployment(SandboxModelDeployment, _CpuModelDeployment):
    """ndif's sandbox deployment (a trusted request in-process, any other in a fresh runner) on the
    CPU model deployment, with the patient, lazily warmed pool."""

    def open_pool(self, pool_size: int | None = None, peers: int = 1) -> None:
        self.pool = _PatientPool(size=int(os.environ.get("NDIF_SANDBOX_POOL_SIZE", "2")), peers=peers,
                                 model_key=self.model_key, trust_remote_code=self.kwargs.get("trust_remote_code", False))
        self.execution_sandbox = None


CpuModelActor = ray.remote(num_cpus=0.5, max_restarts=-1)(_CpuSandboxDeployment)


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
    ray.init(address=os.environ["RAY_ADDRESS"], namespace="NDIF", logging_level="error")
    ndif_controller.app()
