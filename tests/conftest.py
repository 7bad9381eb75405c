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
