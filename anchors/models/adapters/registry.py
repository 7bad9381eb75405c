"""Which model types the toolkit serves, with which adapter, and what was verified on each — as data.

Every type in :data:`VERIFIED` has a tiny random-weight instance on which the contract tests and
the hook-reference tests (knockout, head scaling, lens, head contributions; eager and sdpa;
padded batches equal single runs) pass. A type not listed is still tried with the structural
adapter, which checks the model at load and refuses what does not fit; :data:`REFUSED` names the
types whose architecture the token-group knockout does not apply to, with the reason.
"""

from __future__ import annotations

from .base import Adapter, AdapterError
from .gemma3 import Gemma3Adapter
from .paligemma import PaliGemmaAdapter
from .mrope import MultimodalRopeAdapter

# Families with quirks the structure cannot tell (processor arguments, image batching).
QUIRKS: dict[str, type[Adapter]] = {
    "qwen2_vl": MultimodalRopeAdapter, "qwen2_5_vl": MultimodalRopeAdapter, "glm4v": MultimodalRopeAdapter,
    "qwen3_5": MultimodalRopeAdapter, "qwen3_vl": MultimodalRopeAdapter,
    "gemma3": Gemma3Adapter,
    "paligemma": PaliGemmaAdapter,
}

# model_type -> what its image tokens and markers are (the `visual` role is exactly the positions
# the vision features replace; tokens the processor adds around them are `template`).
VERIFIED: dict[str, str] = {
    "qwen2_5_vl": "<|image_pad|> visual; <|vision_start|>/<|vision_end|> template; 3-D rotary positions",
    "qwen2_vl": "as qwen2_5_vl",
    "llava": "<image> visual (one per patch feature)",
    "llava_next": "<image> visual, including the image-newline feature after each row of tiles",
    "llava_onevision": "<image> visual, including the image-newline feature after each row of the any-resolution grid",
    "internvl": "<IMG_CONTEXT> visual; <img>/</img> template",
    "gemma3": "<image_soft_token> visual, bidirectional among themselves; <start_of_image>/<end_of_image> "
              "template; sandwich norms with 1+w scale",
    "paligemma": "<image> visual; the <bos> after the image and the closing newline template; prefix-LM: the "
                 "whole prompt attends bidirectionally",
    "idefics3": "<image> visual (4 per tile: 2×2 tiles and a global view); <fake_token_around_image>, "
                "<row_r_col_c>, <global-img> and the newlines between tile rows template",
    "smolvlm": "as idefics3",
    "glm4v": "<|image|> visual; <|begin_of_image|>/<|end_of_image|> template; 3-D rotary positions; norms after "
             "attention and after the MLP",
    "deepseek_vl": "<image_placeholder> visual; tied input and output embeddings",
    "aya_vision": "<|IMG_PATCH|> visual; <|START_OF_IMG|>, the TILE_GLOBAL text marker and <|END_OF_IMG|> template; "
                  "parallel attention/MLP blocks (resid_mid = layer input + attention update) and LayerNorms",
    "qwen3_5": "<|image_pad|> visual; <|vision_start|>/<|vision_end|> template; hybrid decoder: knockouts and "
               "head readouts act on the softmax-attention layers only (cut_layers says how many per window)",
    "qwen3_vl": "<|image_pad|> visual; <|vision_start|>/<|vision_end|> template; DeepStack adds vision-tower "
                "features to the image positions' residual after the first decoder layers",
    "mistral3": "[IMG] visual; [IMG_BREAK] after each row of image tokens and [IMG_END] template",
    "llama": "text only",
    "qwen2": "text only",
}

REFUSED: dict[str, str] = {
    "mllama": "a cross-attention VLM: the image enters through cross-attention layers, never as tokens of the "
              "self-attention sequence, so there are no visual positions whose edges a knockout could cut",
}


# What a VERIFIED type passed (tests/test_adapters.py, test_interventions.py, test_sweeps.py,
# test_batching.py, test_geometry.py, test_regions.py, all parametrised over the tiny instances).
CHECKS = ("tiny instance: accessors, roles, lens = logits, heads sum to o_proj; knockout, head scaling, lens, "
          "head attributions = plain-hook references (eager, sdpa, 1e-5); padded batch = single runs; "
          "reuse sweep = naive; image-token rectangles = what a perturbed box changes with the vision tower made "
          "local, token counts = the processor's at the released settings")


def model_table() -> list[dict[str, str]]:
    """One row per model type the toolkit knows: its adapter, status, what was verified (``all
    checks``: :data:`CHECKS`), and what its image tokens and markers are."""
    rows = [{"model_type": t, "adapter": adapter_class(t).family, "status": "verified", "verified": "all checks",
             "image tokens and roles": roles} for t, roles in VERIFIED.items()]
    rows += [{"model_type": t, "adapter": "-", "status": "refused", "verified": "-", "image tokens and roles": why}
             for t, why in REFUSED.items()]
    rows.append({"model_type": "any other", "adapter": "structural", "status": "tried at load",
                 "verified": "paths and sizes checked at load; a warning says it is unverified", "image tokens and roles":
                 "the config's image_token_id / image_token_index positions are visual"})
    return rows


def adapter_class(model_type: str) -> type[Adapter]:
    """The adapter for ``model_type``: its quirk subclass, else the structural adapter."""
    if model_type in REFUSED:
        raise AdapterError(f"model_type {model_type!r} is not supported: {REFUSED[model_type]}")
    return QUIRKS.get(model_type, Adapter)
