"""The analyses' options as frozen dataclasses (no torch): each field carries its default and help
text, so the API and the command line (which builds its flags from these fields) share defaults
and store the same resolved ``attrs["config"]``."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from ..datasets.instructions import VARIANTS
from ..errors import InputError
from ..interventions.specs import EXACT_KNOCKOUT_METHODS, KNOCKOUT_METHODS
from ..prompts.roles import ROLE_GROUPS, ROLES, expand_role
from ..prompts.prompt import SUBSPACE_SCORES

Pathway = tuple[tuple[str, ...], tuple[str, ...]]


def option(default: Any, help: str, *, default_text: str = "", **cli: Any) -> Any:
    """A config field with its command-line help (and argparse extras such as ``choices``). The
    flag's help adds the choices and the default (``default_text`` where the value itself would
    not say it, e.g. None meaning every layer), so neither can drift from the field."""
    return dataclasses.field(default=default, metadata={"help": help, "default_text": default_text, **cli})


DEFAULT_PATHWAYS: dict[str, tuple[str, str]] = {
    "visual->instruction": ("visual", "instruction"),
    "context->instruction": ("context", "instruction"),
    "visual->generated": ("visual", "generated"),
    "context->generated": ("context", "generated"),
    "instruction->generated": ("instruction", "generated"),
    "visual->context": ("visual", "context"),
}


def positive(value: int, name: str) -> int:
    """``value`` as an int, refused unless ≥ 1."""
    if int(value) < 1:
        raise InputError(f"{name} must be a positive integer, got {value}")
    return int(value)


def parse_pathway(name: str) -> Pathway:
    """A named pathway or ``source->target`` with roles or groups joined by ``+``.

    >>> parse_pathway("visual->instruction")
    (('visual',), ('instruction',))
    >>> parse_pathway("context+visual->generated")
    (('context', 'visual'), ('generated',))
    """
    if name in DEFAULT_PATHWAYS:
        source, target = DEFAULT_PATHWAYS[name]
        return (source,), (target,)
    if "->" not in name:
        raise InputError(f"pathways: {name!r} is neither one of {', '.join(DEFAULT_PATHWAYS)} nor 'source->target' "
                         "with roles or groups joined by '+'")
    source, target = name.split("->", 1)
    pathway = tuple(source.split("+")), tuple(target.split("+"))
    expand_role(pathway[0]), expand_role(pathway[1])
    return pathway


def check_choice(value: str, choices: tuple[str, ...], name: str, what: str = "") -> None:
    if value not in choices:
        raise InputError(f"{what}{name} must be one of {', '.join(choices)}, got {value!r}")


EXACT_HELP = ("'reuse' (exact: the clean run's layer inputs, keys and values are reused), 'naive' (exact: one full "
              "trace per setting, the reference)")


@dataclass(frozen=True)
class KnockoutConfig:
    """The options of :class:`~anchors.experiments.knockout.KnockoutProfile` (``anchors knockout``).

    >>> anchors.KnockoutConfig(windows=(3,)).pathways[:2]
    ('visual->instruction', 'context->instruction')
    """

    pathways: tuple[str, ...] = option(tuple(DEFAULT_PATHWAYS),
                                       f"pathway names ({', '.join(DEFAULT_PATHWAYS)}), or 'source->target' "
                                       "with roles/groups joined by '+'", default_text="all six")
    windows: tuple[int, ...] = option((9,), "knockout window sizes in layers; several give the sensitivity sweep")
    layers: tuple[int, ...] | None = option(None, "window centres", default_text="every layer")
    method: str = option("reuse", f"{EXACT_HELP}, 'atp' (attribution-patching estimate from one forward and one "
                                  "backward pass; experimental), 'atp+verify' (atp, then the exact knockout for the "
                                  "--verify-top strongest settings per pathway)",
                         choices=KNOCKOUT_METHODS)
    max_batch_rows: int = option(64, "rows (settings x samples) stacked into one forward by 'reuse'")
    verify_top: int = option(5, "settings per pathway checked exactly by 'atp+verify'")

    def check(self) -> None:
        """Refuse values that are wrong for any model (the model-dependent checks are the analysis's)."""
        for name in self.pathways:
            parse_pathway(name)
        for window in self.windows:
            positive(window, "windows")
        positive(self.max_batch_rows, "max_batch_rows")
        check_choice(self.method, KNOCKOUT_METHODS, "method")
        if self.method == "atp+verify":
            positive(self.verify_top, "verify_top")


@dataclass(frozen=True)
class LensConfig:
    """The options of :class:`~anchors.experiments.lens.LensProfile` (``anchors lens``).

    >>> anchors.LensConfig().top_k, anchors.LensConfig().readout_role
    (5, 'instruction')
    """

    top_k: int = option(5, "readout tokens averaged per subspace, Eq 5")
    heads: bool = option(True, "per-head attribution (Eq 9)")
    readout_role: str = option("instruction", "role or group whose tokens are read: 'instruction' as in the paper, "
                                              "'generated' for the answer position",
                               choices=tuple(ROLE_GROUPS) + ROLES[1:])
    subspace_score: str = option("max", "a dictionary's subspace logit: 'max' over its ids (Eq 1) or their 'mean' "
                                        "(App. E.1's ablation)", choices=SUBSPACE_SCORES)

    def check(self) -> None:
        positive(self.top_k, "top_k")
        expand_role(self.readout_role)


ANSWER_SOURCES: tuple[str, ...] = ("first-token", "generation")


def heads_arg(value: str) -> int | str:
    """A number of heads as given: ``8``, or ``5%`` of all the model's heads (resolved per model)."""
    text = value.strip()
    try:
        count = float(text[:-1]) if text.endswith("%") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number of heads nor a percentage such as 5%") from None
    if count <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return text if text.endswith("%") else int(count)


@dataclass(frozen=True)
class InterventionConfig:
    """The options of :class:`~anchors.experiments.heads.HeadIntervention` (``anchors intervene``).

    >>> anchors.InterventionConfig(ks=("1%", 4)).ks
    ('1%', 4)
    """

    ks: tuple[int | str, ...] = option((1, 2, 4, 8), "numbers of heads, or percentages of all heads such as 1% 2% 5%",
                                       type=heads_arg)
    amplify_alpha: float = option(2.0, "scale for amplification")
    alphas: tuple[float, ...] = option((0.5, 1.0, 2.0, 4.0, 8.0), "alpha sweep values")
    alpha_k: int | str | None = option(None, "heads (or % of heads) amplified in the alpha sweep", default_text="max k",
                                       type=heads_arg)
    n_random: int = option(5, "random head draws per k")
    shared_top: int | str | None = option(None, "shared heads: those in the top N (or N%) of both rankings",
                                           default_text="max k", type=heads_arg)
    role: str = option("instruction", "positions whose head outputs are scaled")
    seed: int = option(0, "seed of the random head draws")
    answer_from: str = option("first-token", "how a sample's answer is read: the greedy 'first-token' (its dictionary), "
                                             "or greedy 'generation' of --max-new-tokens matched against the "
                                             "dictionaries' forms, empty or one-token-repeated output counting as "
                                             "'degenerate'", choices=ANSWER_SOURCES)
    max_new_tokens: int = option(8, "tokens generated per sample with --answer-from generation")

    def check(self) -> None:
        expand_role(self.role)
        check_choice(self.answer_from, ANSWER_SOURCES, "answer_from")
        if self.answer_from == "generation" and self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class ControlsConfig:
    """The options of :class:`~anchors.experiments.controls.PositionControls` (``anchors controls``).

    >>> anchors.ControlsConfig(window=3).window
    3
    """

    variants: tuple[str, ...] | None = option(None, "prompt variants", choices=VARIANTS,
                                              default_text="all four from a data folder; through the API, the keys "
                                                           "of the samples given")
    window: int = option(9, "knockout window")
    layers: tuple[int, ...] | None = option(None, "window centres", default_text="every layer")
    method: str = option("reuse", f"{EXACT_HELP}", choices=EXACT_KNOCKOUT_METHODS)
    max_batch_rows: int = option(64, "rows (settings x samples) stacked into one forward by 'reuse'")

    def check(self) -> None:
        positive(self.window, "window")
        positive(self.max_batch_rows, "max_batch_rows")
        check_choice(self.method, EXACT_KNOCKOUT_METHODS, "method", "position controls run exact knockouts: ")


CAPABILITY_SCOPES: tuple[str, ...] = ("instruction", "all")


@dataclass(frozen=True)
class CapabilityConfig:
    """The options of ``CapabilityAnalysis`` (``anchors capability``, Table 1).

    >>> anchors.CapabilityConfig(task="caption").task
    'caption'
    """

    task: str = option("vqa", "capability task of --file",
                       choices=("vqa", "caption", "mcq", "ifeval"))
    ks: tuple[int | str, ...] = option((1, 2, 4), "numbers of heads blocked, or percentages of all heads",
                                       type=heads_arg)
    modality: str = option("vision", "whose top heads are the targeted ones: the ranking of samples instructed to "
                                     "follow 'vision' or 'text'", choices=("vision", "text"))
    n_random: int = option(3, "random head draws per k")
    seed: int = option(0, "seed of the random head draws")
    scope: str = option("instruction", "where heads are blocked: at the prompt's instruction tokens (as in the paper) "
                                       "or at every position, generated tokens included",
                        choices=CAPABILITY_SCOPES)
    max_new_tokens: int = option(16, "tokens generated per sample for vqa, caption and ifeval")

    def check(self) -> None:
        if self.max_new_tokens < 1 or self.n_random < 1:
            raise InputError("max_new_tokens and n_random must be ≥ 1")


@dataclass(frozen=True)
class CaptionConflictConfig:
    """The options of ``CaptionConflict`` (``anchors caption-conflict``, App. D).

    >>> anchors.CaptionConflictConfig().layers
    (0,)
    """

    pathways: tuple[str, ...] = option(("context->instruction", "context->generated"), "knocked-out pathways "
                                       "(names or 'source->target')")
    layers: tuple[int, ...] = option((0,), "window centres of the knockouts")
    window: int = option(9, "knockout window")
    ks: tuple[int | str, ...] = option((2,), "numbers (or %) of heads amplified", type=heads_arg)
    alpha: float = option(2.0, "amplification of the heads' outputs at the instruction tokens")
    n_random: int = option(3, "random head draws per k")
    seed: int = option(0, "seed of the random head draws")
    max_new_tokens: int = option(20, "caption tokens generated per setting")

    def check(self) -> None:
        for name in self.pathways:
            parse_pathway(name)
        positive(self.window, "window")
        positive(self.max_new_tokens, "max_new_tokens")


@dataclass(frozen=True)
class ImageAttentionConfig:
    """The options of :class:`~anchors.experiments.image_attention.ImageAttention` (``anchors image-attention``).

    >>> anchors.ImageAttentionConfig().query_role, anchors.ImageAttentionConfig().top_k
    ('instruction', 8)
    """

    top_k: int = option(8, "heads read: the top K of --modality's ranking (Eq 9)")
    modality: str = option("vision", "whose ranking gives the top heads: samples instructed to follow 'vision' or "
                                     "'text'", choices=("vision", "text"))
    n_random: int = option(2, "random heads read per top head, drawn from the same layer (never a top head)")
    query_role: str = option("instruction", "role or group whose positions attend (their attention is averaged)",
                             choices=tuple(ROLE_GROUPS) + ROLES[1:])
    n_boxes: int = option(8, "control boxes per sample: the region box moved to random places covering as many "
                             "image tokens, not the same ones")
    sink_factor: float = option(10.0, "a position is flagged as an attention sink where it takes at least this "
                                      "many times a uniform share of the attention")
    seed: int = option(0, "seed of the random heads and boxes")

    def check(self) -> None:
        positive(self.top_k, "top_k")
        if self.n_random < 0 or self.n_boxes < 0 or self.sink_factor <= 0:
            raise InputError("n_random and n_boxes must be ≥ 0 and sink_factor > 0")
        expand_role(self.query_role)
