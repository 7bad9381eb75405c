"""One record per experiment (no torch): everything the command line, the public names, the
result schema, the figures and the report know about an experiment comes from here.

A record names code by its name (the analysis class in its module of ``anchors.experiments``, the
config class in :mod:`anchors.experiments.configs`, figure and key-number functions in
``anchors.report``) so that reading the records loads neither torch nor matplotlib;
``tests/test_records.py`` resolves every name.

>>> from anchors.results.records import RECORDS, by_command
>>> by_command("knockout").name
'knockout_profile'
>>> [r.name for r in RECORDS][:3]
['knockout_profile', 'position_controls', 'lens_profile']
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

# What a command reads besides the model: a data folder (``--data``), a lens result whose head
# ranking it uses (``--lens``), or a capability task file (``--file``).
INPUTS: tuple[str, ...] = ("data", "lens", "file")


@dataclass(frozen=True)
class Experiment:
    """One experiment.

    ``name`` is the result's ``attrs["experiment"]``; ``analysis`` is ``(module, class)`` inside
    ``anchors.experiments`` (empty for results made outside the runner's analyses); ``config`` the
    config class in :mod:`anchors.experiments.configs`; ``command`` and ``help`` its command line
    (empty: no command of its own); ``reads`` what that command reads (:data:`INPUTS`);
    ``figures`` (figure name, function in ``anchors.report.figures``) pairs; ``key_numbers`` the
    function in ``anchors.report.numbers`` that lists its few numbers; ``title`` its report
    section; ``located`` whether the section title says where it read or scaled (the role).
    """

    name: str
    title: str
    analysis: tuple[str, str] | None = None
    config: str = ""
    command: str = ""
    help: str = ""
    reads: tuple[str, ...] = ()
    figures: tuple[tuple[str, str], ...] = ()
    key_numbers: str = ""
    located: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.reads) - set(INPUTS)
        if unknown:
            raise ValueError(f"experiment {self.name}: unknown inputs {sorted(unknown)}; expected {INPUTS}")


# In the paper's order: the report's sections follow it.
RECORDS: tuple[Experiment, ...] = (
    Experiment("knockout_profile", "attention knockout profile", ("knockout", "KnockoutProfile"), "KnockoutConfig",
               "knockout", "attention knockout profile: NSSD per layer (Eq 4, Fig 2)", ("data",),
               (("fig2_knockout_nssd", "knockout_nssd"), ("fig6_window_sensitivity", "window_sensitivity"),
                ("fig3c_generated_necessity", "generated_necessity")), "knockout_numbers"),
    Experiment("position_controls", "position controls", ("controls", "PositionControls"), "ControlsConfig",
               "controls", "cues -> semantic vs format instruction knockout (Fig 3a)", ("data",),
               (("fig3a_semantic_vs_format", "semantic_vs_format"),), "controls_numbers"),
    Experiment("lens_profile", "logit lens profile", ("lens", "LensProfile"), "LensConfig",
               "lens", "logit-lens readouts, LDAR and attributions (Eq 1, 5-9)", ("data",),
               (("fig3b_ldar", "ldar_profile"), ("fig4_subspace_evolution", "subspace_evolution"),
                ("fig5a_attention_subspaces", "attention_subspaces"), ("fig5b_head_heatmap", "head_heatmap")),
               "lens_numbers", located=True),
    Experiment("head_intervention", "head intervention", ("heads", "HeadIntervention"), "InterventionConfig",
               "intervene", "block/amplify top heads vs random and shared (§4.2)", ("data", "lens"),
               (("fig5c_mfr_curves", "mfr_curves"), ("table4_alpha_sweep", "alpha_sweep"),
                ("fig5b_head_heatmap", "head_heatmap")), "intervention_numbers", located=True),
    Experiment("capability", "general capabilities", ("capability", "CapabilityAnalysis"), "CapabilityConfig",
               "capability", "general capabilities with the top heads blocked vs random heads (Table 1): vqa, caption, "
               "mcq or ifeval", ("file", "lens"), (("table1_capability", "capability_bars"),), "capability_numbers"),
    Experiment("caption_conflict", "captions under misleading text", ("caption_conflict", "CaptionConflict"),
               "CaptionConflictConfig", "caption-conflict", "captions under misleading text with knockouts and "
               "amplified top vision heads vs random heads (App. D, Tables 2-3)", ("file", "lens"),
               (("table2_3_caption_conflict", "caption_conflict_bars"),), "caption_conflict_numbers"),
    Experiment("image_attention", "attention to the image", ("image_attention", "ImageAttention"),
               "ImageAttentionConfig", "image-attention", "attention from the instruction to each image token for the "
               "top heads vs random heads of their layers, region mass vs matched random boxes", ("data", "lens"),
               (("image_overlays", "image_overlays"), ("region_mass_by_layer", "region_mass_by_layer")),
               "image_attention_numbers"),
    Experiment("head_ranking", "head ranking (Eq 9)", figures=(("fig5b_head_heatmap", "head_heatmap"),),
               key_numbers="ranking_numbers"),
    Experiment("organism_agreement", "organism: agreeing examples with heads blocked",
               figures=(("organism_agreement", "agreement_bars"),), key_numbers="agreement_numbers"),
)
NAMES: tuple[str, ...] = tuple(record.name for record in RECORDS)


def record(name: str) -> Experiment:
    """The record of the experiment ``name`` (a result's ``attrs["experiment"]``).

    >>> anchors.record("lens_profile").command, anchors.record("lens_profile").figures[0]
    ('lens', ('fig3b_ldar', 'ldar_profile'))"""
    for candidate in RECORDS:
        if candidate.name == name:
            return candidate
    raise InputError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")


def by_command(command: str) -> Experiment:
    """The record whose command line is ``anchors COMMAND``."""
    return next(r for r in RECORDS if r.command == command)


def commands() -> tuple[Experiment, ...]:
    """The records that have a command of their own (the analyses the runner drives)."""
    return tuple(r for r in RECORDS if r.command)
