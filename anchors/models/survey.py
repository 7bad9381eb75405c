"""Which transformers vision-language model types the structural adapter fits, tried on each
type's default config as a meta-device skeleton (no weights, no download): ``anchors models
--survey``. A fit means the paths, sizes and image token were found and checked; only the types in
:data:`~anchors.models.adapters.VERIFIED` also passed the numerical references on a tiny instance.
"""

from __future__ import annotations

import warnings
from typing import Any

from .adapters import REFUSED, VERIFIED, AdapterError, adapter_class
from .loading import skeleton


def survey_types() -> list[str]:
    """Every model type transformers maps to ``AutoModelForImageTextToText``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return sorted(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


def try_type(model_type: str) -> dict[str, str]:
    """The outcome for one model type: verified, fits, refused, does not fit or cannot build."""
    from transformers import AutoConfig

    row = {"model_type": model_type, "adapter": "-", "outcome": "", "detail": ""}
    if model_type in REFUSED:
        return {**row, "outcome": "refused", "detail": REFUSED[model_type]}
    try:
        config = AutoConfig.for_model(model_type)
        adapter = adapter_class(model_type)(config, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adapter.bind(skeleton(config, True))
        adapter.image_token_ids  # noqa: B018 - raises if the config names no image token
    except AdapterError as error:
        return {**row, "outcome": "does not fit", "detail": str(error)}
    except Exception as error:  # noqa: BLE001 - the default config or model cannot be built here
        return {**row, "outcome": "cannot build", "detail": f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"}
    paths = adapter.paths(None)
    softmax = len(paths.attention_layers)
    detail = f"decoder at {paths.layers}"
    if softmax < adapter.shape.n_layers:
        detail += f"; hybrid: {softmax} of {adapter.shape.n_layers} layers have softmax attention"
    if paths.mid_norm is None:
        detail += "; parallel attention/MLP blocks"
    outcome = "verified" if model_type in VERIFIED else "fits (unverified)"
    return {**row, "adapter": adapter.family, "outcome": outcome, "detail": detail}


def survey(model_types: list[str] | None = None) -> list[dict[str, Any]]:
    return [try_type(t) for t in (model_types or survey_types())]
