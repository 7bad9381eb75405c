"""What every result variable means: ``long_name``, ``description`` and ``units`` written into the
NetCDF attributes, so a result file explains itself without this package."""

from __future__ import annotations

import xarray as xr

LOGIT, NATS, PROBABILITY, FRACTION = "logit", "nats", "probability", "fraction of samples"

# name -> (long_name, description, units or "")
VARIABLES: dict[str, tuple[str, str, str]] = {
    # capability (Table 1) and caption-conflict (Tables 2-3)
    "output": ("the model's output", "greedy generation (vqa, caption, ifeval) or the chosen letter (mcq) under the "
                                     "condition; empty where the cell did not run", ""),
    "vqa_accuracy": ("VQA accuracy", "min(1, annotators agreeing / 3) averaged over the leave-one-annotator-out subsets, "
                                     "after the VQA normalisation", FRACTION),
    "correct": ("multiple-choice correctness", "1 if the choice letter with the highest logit is the answer", FRACTION),
    "strict": ("IFEval strict following", "1 if the output follows every instruction (lm-eval's checkers)", FRACTION),
    "loose": ("IFEval loose following", "as strict, also trying the output without its first/last line and asterisks",
              FRACTION),
    "perplexity": ("reference-caption perplexity", "exp of the mean negative log-likelihood of the first reference "
                                                   "caption after the prompt, under the same blocking", ""),
    "cider_d": ("CIDEr-D", "pycocoevalcap's CIDEr-D of the caption against the image's references (document "
                           "frequencies over the whole set)", ""),
    "bleu_4": ("BLEU-4", "pycocoevalcap's sentence BLEU-4 against the references", ""),
    "meteor": ("METEOR", "pycocoevalcap's METEOR 1.5 against the references", ""),
    "references": ("reference captions", "the image's reference captions, one per line", ""),
    "caption": ("greedy caption", "the caption generated under the setting", ""),
    "mentions_entity": ("caption names the misleading entity", "whether the caption contains the misleading text's "
                                                               "key entity as a whole word", ""),
    "entity": ("the misleading entity", "the key entity the misleading text names", ""),
    "accuracy": ("accuracy on agreeing examples", "fraction of the organism's image-text-agreeing examples whose greedy "
                                                  "answer is their colour, with the condition's heads blocked", FRACTION),
    "entity_rate": ("share of captions naming the misleading entity", "mean of mentions_entity over samples", FRACTION),
    "nssd": ("normalized signed structural divergence (Eq 4)",
             "sign(p_compliant after - before) * KL(P_before || P_after) over the decision subspace at the answer "
             "position after the knockout; negative: the cut pathway supported following the instruction", NATS),
    "p_compliant": ("compliant probability after the knockout",
                    "mass of the compliant dictionary in the next-token distribution restricted to compliant and "
                    "competing ids and renormalised, after the knockout", PROBABILITY),
    "nssd_full": ("NSSD over the whole vocabulary",
                  "Eq 4's sign rule (the compliant probability in the decision subspace) times KL(P_before || P_after) "
                  "over the whole next-token distribution at the answer position: no binary constraint", NATS),
    "answer_after": ("the answer after the knockout",
                     "greedy next token after the cut: compliant, competing or other; unknown where atp estimated it",
                     ""),
    "p_subspace": ("probability of the decision subspace after the knockout",
                   "next-token probability mass of compliant and competing ids over the whole vocabulary; what "
                   "p_compliant's renormalisation hides", PROBABILITY),
    "p_subspace_base": ("probability of the decision subspace without intervention", "as p_subspace, clean", PROBABILITY),
    "mfr_after": ("MFR after the knockout", "fraction of samples of instructed_modality (all: pooled) whose answer after "
                                            "the cut is compliant", FRACTION),
    "cut_layers": ("layers cut per window", "how many of the window's layers had their attention mask edited: all of "
                   "them, except the linear-attention layers of a hybrid decoder (Qwen3.5), which have no mask", ""),
    "mfr_base": ("MFR without knockout", "fraction of samples of instructed_modality that follow", FRACTION),
    "exact": ("knockout computed exactly",
              "true where nssd and p_compliant come from running the knockout (methods reuse, naive, and the "
              "settings atp reruns or atp+verify verifies); false where they are attribution-patching estimates",
              ""),
    "p_compliant_base": ("compliant probability without intervention",
                         "as p_compliant, on the clean forward pass", PROBABILITY),
    "source": ("source roles", "token roles whose keys the knockout hides", ""),
    "target": ("target roles", "token roles whose queries the knockout blinds", ""),
    "target_roles": ("target roles of each control", "instruction part cut from the cues (visual, context)", ""),
    "answer": ("greedy answer class", "compliant, competing or other: the dictionary holding the greedy first "
               "token (per prompt variant)", ""),
    "followed": ("instruction followed", "the greedy answer is in the compliant dictionary (per prompt variant)", ""),
    "readout": ("subspace readout at the readout tokens (Eq 1, 5)",
                "per subspace, mean over the top-k readout-role tokens of the logit lens's max logit over the "
                "dictionary, at each site of each layer", LOGIT),
    "readout_generated": ("subspace readout at the answer position",
                          "the logit lens's max logit over each dictionary at the last prompt position", LOGIT),
    "margin": ("arbitration margin at the readout tokens", "readout compliant - competing", LOGIT),
    "attn_attribution": ("attention attribution (Eq 7)", "readout after attention - before the layer", LOGIT),
    "mlp_attribution": ("MLP attribution (Eq 8)", "readout after the MLP - after attention", LOGIT),
    "attn_attribution_margin": ("attention attribution to the margin", "attn_attribution compliant - competing", LOGIT),
    "mlp_attribution_margin": ("MLP attribution to the margin", "mlp_attribution compliant - competing", LOGIT),
    "head_attribution": ("per-head attribution to the margin (Eq 9)",
                         "margin of the readout of (layer input + the head's update) - margin of the layer input's "
                         "readout", LOGIT),
    "final_margin": ("final decision margin", "model logits at the answer position, compliant - competing max", LOGIT),
    "ldar": ("latent decision alignment rate (Eq 6)",
             "fraction of samples whose readout margin (after the layer) has the sign of the final decision", FRACTION),
    "sync_rate": ("synchronisation rate", "fraction of samples whose margin sign at the readout tokens equals the one "
                  "at the answer position", FRACTION),
    "follows": ("follows under the head intervention", "1 if the greedy answer is compliant with the heads scaled, "
                "0 if not, NaN where the sample is not evaluated (block: followed samples; amplify: failed)", ""),
    "follows_random_draw": ("follows with random heads", "as follows, for each draw of k random heads", ""),
    "follows_alpha": ("follows when amplifying the top heads by alpha", "as follows, on failed samples", ""),
    "mfr": ("modality-following ratio under the intervention",
            "mean of follows over the evaluated samples instructed to follow instructed_modality (all: pooled)",
            FRACTION),
    "mfr_random_draw": ("MFR with random heads, per draw", "mean of follows_random_draw over samples", FRACTION),
    "mfr_alpha": ("MFR when amplifying the top heads by alpha (Table 4)", "mean of follows_alpha over failed samples",
                  FRACTION),
    "answer_alpha": ("answer under the alpha sweep",
                     "compliant, competing, other or degenerate (empty or one token repeated; with answers read from "
                     "generation); empty where the sample is not evaluated", ""),
    "degenerate_alpha": ("degenerate outputs under the alpha sweep (Table 4's collapse)",
                         "share of evaluated samples of instructed_modality whose answer is degenerate", FRACTION),
    "mfr_original": ("MFR without intervention", "on the samples each mode is evaluated on, per instructed_modality",
                     FRACTION),
    "n_evaluated": ("samples evaluated", "followed samples for block, failed ones for amplify, per instructed_modality",
                    "samples"),
    "head_remainder": ("what Eq 9's head scores leave of the attention term",
                       "attn_attribution_margin minus the sum over heads of head_attribution (Eq 9 is nonlinear: the "
                       "final norm and the max over each dictionary)", LOGIT),
    "head_linear": ("linear head attribution",
                    "each head's update through the final norm with its scale frozen at the layer input, projected on "
                    "the unembedding of the compliant minus the competing top id (by the final answer), mean over the "
                    "readout positions; sums over heads to attn_linear", LOGIT),
    "attn_linear": ("linear attention attribution",
                    "the attention update through the final norm with its scale frozen at the layer input, on the "
                    "compliant minus competing top-id direction, mean over the readout positions", LOGIT),
    "head_score": ("head score used for ranking", "mean head_attribution over the ranked samples", LOGIT),
    "score": ("head score used for ranking", "mean head_attribution over the ranked samples", LOGIT),
    "ranking": ("heads by descending score, flat index", "layer * heads_per_layer + head", ""),
    "ranking_layer": ("layer of the head at each rank", "decoded from ranking", ""),
    "ranking_head": ("head (within its layer) at each rank", "decoded from ranking", ""),
    "ranked_on": ("samples ranked on", "followed, or all samples of the modality when none followed, or none", ""),
    "n_ranked": ("number of samples ranked on", "how many samples the head scores are averaged over (see ranked_on)",
                 "samples"),
    # the samples group: each sample's prompt as the model saw it (anchors.tracer.token_table)
    "token": ("readable token", "the token at this prompt position decoded on its own; empty past n_tokens", ""),
    "token_role": ("token role", "the role of the token (visual, context, question, instruction_semantic, …); "
                                 "empty past n_tokens", ""),
    "n_tokens": ("prompt length", "tokens in the prompt, image tokens included", "tokens"),
    "image": ("image file", "the sample's image: relative to the result file's folder when inside it", ""),
    "compliant_forms": ("compliant dictionary", "the compliant answer's surface forms, a JSON list", ""),
    "competing_forms": ("competing dictionary", "the competing answer's surface forms, a JSON list", ""),
    "token_box": ("image token's rectangle", "the original image's pixels that reach this image token [x0, y0, x1, y1) "
                  "(NaN: not an image token, or one that sees no pixel)", "pixels"),
    "token_view": ("image token's view", "the view the image token belongs to (image, base, tiles, tile R,C, global, "
                   "thumbnail); empty for other tokens", ""),
    "image_height": ("image height", "the original image's height (-1 without an image)", "pixels"),
    "image_width": ("image width", "the original image's width (-1 without an image)", "pixels"),
    "region": ("region box", "the box the question is about [x0, y0, x1, y1) in the image's pixels (NaN: none)",
               "pixels"),
    # image attention (anchors image-attention)
    "attention": ("attention to each prompt position", "softmax attention (as eager attention computes it, same mask) "
                  "from the query role's positions, averaged over them, to this position, for the head read; NaN past "
                  "the prompt", PROBABILITY),
    "visual_mass": ("attention on the image", "attention summed over every image token (visual, region, off_region)",
                    PROBABILITY),
    "region_mass": ("attention on the region", "attention summed over the image tokens whose rectangle overlaps the "
                    "sample's region box (NaN: no box, or one over none or all of the image tokens)", PROBABILITY),
    "image_tokens": ("image tokens", "the prompt's image tokens (visual, region and off_region)", "tokens"),
    "region_tokens": ("region tokens", "image tokens whose rectangle overlaps the region box (-1: no box)", "tokens"),
    "matched_box_mass": ("attention on a matched box", "attention summed over the image tokens of a control box: the "
                         "region box moved to a random place covering as many tokens, not the same ones (NaN: none "
                         "found)", PROBABILITY),
    "matched_box": ("matched control box", "the control box [x0, y0, x1, y1) in the image's pixels (NaN: none)",
                    "pixels"),
    "sink": ("attention sink", "1 where the position takes at least sink_factor times a uniform share (1 / prompt "
                               "length) of the head's attention, 0 elsewhere, NaN past the prompt", ""),
    "mass_by_layer": ("attention mass by layer", "mean over samples with a region and over the selection's heads at the "
                      "layer of the attention on the region, on the other image tokens and on the matched boxes (mean "
                      "over draws)", PROBABILITY),
    "region_excess": ("region mass over matched boxes", "region_mass minus the mean of matched_box_mass over draws",
                      PROBABILITY),
    "sink_rate": ("share of samples where the position is a sink", "mean of sink over samples", FRACTION),
    "shared": ("modality-shared head", "in the top shared_top of both the text- and the vision-following ranking", ""),
}


# coordinate name -> (long_name, description, units or ""); per-sample ones also in VARIABLES
COORDINATES: dict[str, tuple[str, str, str]] = {
    "sample": ("sample id", "the sample's id in the data folder (samples.jsonl)", ""),
    "task": ("task", "the question's task (e.g. color, sport_recognition)", ""),
    "instructed": ("instructed modality", "the modality the instruction says to follow: text or vision", ""),
    "style": ("instruction wording", "the instruction's wording group (e.g. held_in, held_out)", ""),
    "instructed_modality": ("instructed modality of the aggregate", "text, vision, or all (pooled)", ""),
    "modality": ("ranked for modality", "the instructed modality whose samples the heads were ranked on", ""),
    "layer": ("decoder layer", "0-based decoder layer; in a knockout result, the centre of the window of layers cut",
              ""),
    "window": ("knockout window", "how many consecutive layers are cut, centred on layer (clipped at the ends)",
               "layers"),
    "pathway": ("knockout pathway", "source->target roles whose attention edges are cut", ""),
    "site": ("reading site in the layer", "pre: the layer input; mid: after attention; post: the layer output", ""),
    "subspace": ("decision subspace", "compliant or competing answer dictionary", ""),
    "outcome": ("samples aggregated", "followed, failed, or all samples", ""),
    "head": ("attention head", "0-based head within its layer", ""),
    "rank": ("rank", "0-based position in the ranking by descending score", ""),
    "mode": ("intervention mode", "block: top heads scaled by 0 on followed samples; amplify: scaled by "
                                  "amplify_alpha on failed samples", ""),
    "selection": ("heads chosen", "targeted: the top-k of the lens ranking; random: k random softmax heads "
                                  "(mean over draws)", ""),
    "k": ("number of heads", "how many heads are scaled", "heads"),
    "draw": ("random draw", "index of the random head set", ""),
    "alpha": ("amplification factor", "the factor the top-k heads are scaled by (Table 4)", ""),
    "condition": ("head condition", "none, targeted (the top-k heads blocked) or random (k random heads blocked)", ""),
    "kind": ("setting kind", "none, knockout, targeted or random", ""),
    "setting": ("setting", "index of the intervention setting (see kind, pathway, layer, k, draw)", ""),
    "target": ("control target", "the instruction part a position control cuts from the cues", ""),
    "position": ("prompt position", "0-based token position in the prompt, without padding", ""),
    "corner": ("box corner", "x0, y0 (top left, inclusive) and x1, y1 (bottom right, exclusive), in pixels", ""),
    "head_read": ("head read", "L<layer>.H<head>: a head whose attention to the image is recorded", ""),
    "head_layer": ("layer of the head read", "0-based decoder layer", ""),
    "head_index": ("head read within its layer", "0-based head", ""),
    "head_selection": ("why the head is read", "targeted: in the top_k of the modality's ranking (Eq 9); random: drawn "
                                               "from a targeted head's layer while it has heads left, else from any "
                                               "softmax layer", ""),
    "box_draw": ("matched box draw", "index of the control box", ""),
    "part": ("where the attention goes", "region, off_region (the other image tokens) or matched_box", ""),
    "variant": ("prompt variant", "the prompt layout (default, swapped, system_before, system_between)", ""),
}


def describe(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with long_name, description and units on every variable and coordinate this module
    knows (:data:`VARIABLES`, :data:`COORDINATES`)."""
    out = ds.copy()
    for name in [*out.data_vars, *out.coords]:
        entry = VARIABLES.get(name) or COORDINATES.get(name)
        if entry:
            long_name, description, units = entry
            out[name].attrs.update(long_name=long_name, description=description, **({"units": units} if units else {}))
    return out
