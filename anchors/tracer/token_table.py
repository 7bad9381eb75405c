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
from ..prompts.roles import ROLE_CODE, ROLES
from ..results.provenance import portable_path
from ..results.variables import describe
from .encode import encode_batch

ENCODE_CHUNK = 32  # prompts encoded together: the processor's per-call cost dominates single prompts


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
    >>> {role for _, role in rows[0]} >= {"visual", "context", "question", "generated"}, rows[0][-1]
    (True, ('\n', 'generated'))"""
    out = []
    for start in range(0, len(prompts), ENCODE_CHUNK):
        batch = encode_batch(adapter, prompts[start:start + ENCODE_CHUNK], allow_text_only=True)
        for ids, codes in zip(batch.inputs["input_ids"].tolist(), batch.roles.tolist()):
            kept = [(i, c) for i, c in zip(ids, codes) if c != ROLE_CODE["pad"]]
            out.append(list(zip(readable_tokens(adapter.tokenizer, [i for i, _ in kept]), [ROLES[c] for _, c in kept])))
    return out


def token_table(adapter: Adapter, samples: Sequence[TracedSample], base: Path | None = None) -> xr.Dataset:
    """The ``samples`` group of a result: per sample (``sample``) and prompt position (``token``),
    the readable ``token`` and its ``token_role`` (both ``""`` past the prompt's ``n_tokens``), the
    ``image`` it showed (relative to ``base``, the result's folder, when inside it), its ``variant``,
    and both answer dictionaries' surface forms (``compliant_forms``, ``competing_forms``, JSON lists).

    >>> table = token_table(view.adapter, samples[:2])
    >>> dict(table.sizes)["sample"], str(table.token_role.sel(sample=samples[0].sample_id)[-1].item())
    (2, 'generated')"""
    rows = prompt_tokens(adapter, [s.prompt for s in samples])
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
    return xr.Dataset(
        {"token": (("sample", "position"), padded(0)), "token_role": (("sample", "position"), padded(1)),
         **{name: ("sample", np.array(values, dtype=object if name != "n_tokens" else int))
            for name, values in per_sample.items()}},
        coords={"sample": [s.sample_id for s in samples]},
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

