"""Each sample's prompt as readable tokens with their roles: what a result carries (its ``samples``
group) so that one sample can be shown later (``anchors explore``, ``anchors roles --sample``)
without a tokenizer, a model or torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..models.adapters import Adapter
from ..prompts.prompt import Prompt, TracedSample
from ..prompts.roles import ROLE_CODE, ROLES, VISUAL_PARTS
from ..results.provenance import portable_path
from ..results.variables import describe
from .encode import encode_batch

ENCODE_CHUNK = 32  # prompts encoded together: the processor's per-call cost dominates single prompts
CORNERS = ("x0", "y0", "x1", "y1")  # a box's corners, the ``corner`` axis of token_box and region


def readable_tokens(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    r"""Each id decoded on its own, as text (``" ball"``, ``"\n"``), not as a BPE piece (``Ġball``, ``Ċ``).

    >>> readable_tokens(view.adapter.tokenizer, view.adapter.tokenizer(" red ball")["input_ids"])
    [' red', ' ball']"""
    return tokenizer.batch_decode([[int(i)] for i in ids], skip_special_tokens=False,
                                  clean_up_tokenization_spaces=False)


def prompt_tokens(adapter: Adapter, prompts: Sequence[Prompt]) -> list[list[tuple[str, str]]]:
    r"""Every prompt's (readable token, role) pairs as the model sees them (image tokens expanded,
    no padding); needs the processor only.

    >>> rows = prompt_tokens(view.adapter, [samples[0].prompt])
    >>> {role for _, role in rows[0]} >= {"region", "context", "question", "generated"}, rows[0][-1]
    (True, ('\n', 'generated'))"""
    return [pairs for pairs, _ in _encoded(adapter, prompts)]


def _encoded(adapter: Adapter, prompts: Sequence[Prompt]) -> list[tuple[list[tuple[str, str]], Any]]:
    """Each prompt's (token, role) pairs and its image geometry (None without one)."""
    out = []
    for start in range(0, len(prompts), ENCODE_CHUNK):
        batch = encode_batch(adapter, prompts[start:start + ENCODE_CHUNK], allow_text_only=True)
        for row, (ids, codes) in enumerate(zip(batch.inputs["input_ids"].tolist(), batch.roles.tolist())):
            kept = [(i, c) for i, c in zip(ids, codes) if c != ROLE_CODE["pad"]]
            pairs = list(zip(readable_tokens(adapter.tokenizer, [i for i, _ in kept]), [ROLES[c] for _, c in kept]))
            out.append((pairs, batch.geometry[row] if row < len(batch.geometry) else None))
    return out


def _token_boxes(rows: list[tuple[list[tuple[str, str]], Any]], width: int) -> dict[str, tuple]:
    """Per sample and position, the image token's rectangle in original pixels and its view (NaN
    and "" elsewhere); per sample, the image's size."""
    boxes = np.full((len(rows), width, 4), np.nan)
    views = np.full((len(rows), width), "", dtype=object)
    size = np.full((len(rows), 2), -1, dtype=int)
    for index, (pairs, geometry) in enumerate(rows):
        if geometry is None:
            continue
        visual = [p for p, (_, role) in enumerate(pairs) if role in VISUAL_PARTS]
        boxes[index, visual] = geometry.rects
        views[index, visual] = [geometry.views[v] for v in geometry.view]
        size[index] = geometry.size
    return {"token_box": (("sample", "position", "corner"), boxes), "token_view": (("sample", "position"), views),
            "image_height": ("sample", size[:, 0]), "image_width": ("sample", size[:, 1])}


def token_table(adapter: Adapter, samples: Sequence[TracedSample], base: Path | None = None) -> xr.Dataset:
    """The ``samples`` group of a result: per sample (``sample``) and prompt position (``token``),
    the readable ``token`` and its ``token_role`` (both ``""`` past the prompt's ``n_tokens``), the
    ``image`` it showed (relative to ``base``, the result's folder, when inside it), its ``variant``,
    and both answer dictionaries' surface forms (``compliant_forms``, ``competing_forms``, JSON lists);
    where the image's tokens sit: ``token_box`` (sample, position, ``corner`` x0 y0 x1 y1: the
    token's rectangle in the original image's pixels, NaN for a token that is not an image token or
    sees no pixel), ``token_view`` (its view: ``image``, ``tile 1,2``, ``global``, …), the image's
    ``image_height`` and ``image_width`` (-1 without one), and the sample's ``region`` box (NaN
    without one).

    >>> table = token_table(view.adapter, samples[:2])
    >>> dict(table.sizes)["sample"], str(table.token_role.sel(sample=samples[0].sample_id)[-1].item())
    (2, 'generated')"""
    encoded = _encoded(adapter, [s.prompt for s in samples])
    rows = [pairs for pairs, _ in encoded]
    width = max(len(row) for row in rows)

    def padded(column: int) -> np.ndarray:
        return np.array([[pair[column] for pair in row] + [""] * (width - len(row)) for row in rows], dtype=object)

    per_sample = {
        "n_tokens": [len(row) for row in rows],
        "image": [portable_path(s.image_ref, base) if s.image_ref else "" for s in samples],
        "variant": [s.variant for s in samples],
        "compliant_forms": [json.dumps(list(s.compliant_forms), ensure_ascii=False) for s in samples],
        "competing_forms": [json.dumps(list(s.competing_forms), ensure_ascii=False) for s in samples],
    }
    regions = np.array([s.prompt.region if s.prompt.region is not None else (np.nan,) * 4 for s in samples], dtype=float)
    return xr.Dataset(
        {"token": (("sample", "position"), padded(0)), "token_role": (("sample", "position"), padded(1)),
         **{name: ("sample", np.array(values, dtype=object if name != "n_tokens" else int))
            for name, values in per_sample.items()},
         **_token_boxes(encoded, width), "region": (("sample", "corner"), regions.reshape(len(samples), 4))},
        coords={"sample": [s.sample_id for s in samples], "corner": list(CORNERS)},
    )


def samples_group(adapter: Adapter, samples: Sequence[TracedSample], result: xr.Dataset,
                  out: Path | None) -> xr.Dataset | None:
    """What a result saved to ``out`` carries to show each of its samples later (:func:`token_table`,
    described), when its samples are traced samples, one prompt each: none for the position controls
    (several prompt variants per id), the capability checks (benchmark items) or a result kept in
    memory."""
    if out is None or "sample" not in result.coords or not all(isinstance(s, TracedSample) for s in samples):
        return None
    if [s.sample_id for s in samples] != [str(i) for i in result.sample.values]:
        return None
    return describe(token_table(adapter, samples, base=out.parent))

