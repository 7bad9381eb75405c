"""Shared fixtures: tiny models of every registered architecture, and synthetic prompts."""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from anchors.models.tiny import TINY_MODEL_TYPES  # noqa: E402
from anchors.models.tiny import tiny_model  # noqa: E402


@pytest.fixture(params=TINY_MODEL_TYPES)
def model_type(request) -> str:
    return request.param


@pytest.fixture(params=["eager", "sdpa"])
def attn(request) -> str:
    return request.param


@pytest.fixture
def tiny(model_type, attn):
    return tiny_model(model_type, attn)


@pytest.fixture(scope="session")
def ndif_stack():
    """The real NDIF 0.1.2 stack on 127.0.0.1, started once per test session; nnsight's client is
    pointed at it for the session and every process is stopped (by session id) afterwards."""
    from nnsight import CONFIG

    from anchors.backends import ndif

    stack = ndif.up()
    previous = CONFIG.API.HOST
    CONFIG.API.HOST = stack.host
    try:
        yield stack
    finally:
        CONFIG.API.HOST = previous
        stack.down()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local two-CPU Ray cluster on 127.0.0.1, started once per test session."""
    from anchors.backends import cluster

    local = cluster.up(num_cpus=2)
    try:
        yield local
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        local.down()
