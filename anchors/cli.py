"""The ``anchors`` command line: parsing, TOML config, dispatch and display; the work is the library's.

Exit codes: 0 success; 2 an :class:`~anchors.errors.AnchorsError` or a usage error (one line on
stderr, no traceback); 1 anything else (with its traceback). Options may also come from a TOML file
(``--config``): top-level keys apply to every command, a ``[command]`` table to that command;
command-line flags win. Analysis options are built from the analyses' config dataclasses, so the
CLI and the API share defaults; CLI-only options are stored in a result's ``cli_config``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from .command_options import add_build_options, add_config_options, add_data_options, apply_config, config_from, positive_int
from .errors import AnchorsError, InputError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
# command -> (analysis class in anchors.experiments, its config class, help)
ANALYSIS_COMMANDS = {
    "knockout": ("KnockoutProfile", "KnockoutConfig", "attention knockout profile: NSSD per layer (Eq 4, Fig 2)"),
    "lens": ("LensProfile", "LensConfig", "logit-lens readouts, LDAR and attributions (Eq 1, 5-9)"),
    "intervene": ("HeadIntervention", "InterventionConfig", "block/amplify top heads vs random and shared (§4.2)"),
    "controls": ("PositionControls", "ControlsConfig", "cues -> semantic vs format instruction knockout (Fig 3a)"),
}
# command -> (analysis, config, help) of the analyses that read a task file and a lens ranking
RANKED_COMMANDS = {
    "capability": ("CapabilityAnalysis", "CapabilityConfig", "general capabilities with the top heads blocked vs random "
                   "heads (Table 1): vqa, caption, mcq or ifeval"),
    "caption-conflict": ("CaptionConflict", "CaptionConflictConfig", "captions under misleading text with knockouts "
                         "and amplified top vision heads vs random heads (App. D, Tables 2-3)"),
}
CLI_ONLY = {"handler", "config", "quiet", "out", "overwrite", "command", "ray", "ray_workers", "ray_gpus_per_worker",
            "retries"}


def _cli_config(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in CLI_ONLY}


def _model(args: argparse.Namespace) -> Any:
    from .models import ModelSpec

    return ModelSpec(args.model, attn_implementation=args.attn, dtype=args.dtype, device_map=args.device_map,
                     revision=args.revision, quantization=args.quantization, remote=getattr(args, "remote", False))


def _engine(args: argparse.Namespace) -> Any:
    """How the batches are computed: here (the resumable runner, with --retries for a remote
    model), or by Ray actors with --ray."""
    from functools import partial

    from .runner import Retry, run

    if args.ray is None:
        return partial(run, retry=Retry(attempts=args.retries))
    if args.remote:
        raise InputError("--ray and --remote do not mix: Ray workers load the model themselves")
    from .backends.ray_sweep import run_on_ray

    return partial(run_on_ray, address=args.ray, workers=args.ray_workers, gpus_per_worker=args.ray_gpus_per_worker)


def cmd_analysis(args: argparse.Namespace, console: Any) -> int:
    from . import experiments
    from .report import key_numbers
    from .results import check_writable, load_result
    from .runner import run_folder

    class_name, config_name, _ = ANALYSIS_COMMANDS[args.command]
    config = config_from(args, getattr(experiments, config_name))
    if args.command == "intervene":
        check_writable(args.out)
        analysis = experiments.HeadIntervention(load_result(args.lens, ["lens_profile"]), config)
    else:
        analysis = getattr(experiments, class_name)(config)
    result = run_folder(analysis, _model(args), args.data, limit=args.limit, fraction=args.fraction,
                        seed=args.fraction_seed, out=args.out, batch_size=args.batch_size, overwrite=args.overwrite,
                        progress=console.progress, log=console.log, cli_config=_cli_config(args), engine=_engine(args))
    console.table(f"{result.attrs['experiment']} — {args.out}", key_numbers(result))
    print(args.out)
    return EXIT_OK


def cmd_ranked_heads(args: argparse.Namespace, console: Any) -> int:
    """``capability`` and ``caption-conflict``: records of a task file, heads from a lens ranking."""
    from . import experiments
    from .datasets.capability import load_capability
    from .report import key_numbers
    from .results import check_writable, load_result
    class_name, config_name, _ = RANKED_COMMANDS[args.command]
    check_writable(args.out)
    config = config_from(args, getattr(experiments, config_name))
    analysis = getattr(experiments, class_name)(load_result(args.lens, ["lens_profile"]), config)
    items = load_capability(getattr(config, "task", "caption_conflict"), args.file)[: args.limit]
    result = _engine(args)(analysis, _model(args), items, out=args.out, batch_size=args.batch_size,
                           overwrite=args.overwrite, progress=console.progress, log=console.log,
                           cli_config=_cli_config(args))
    console.table(f"{args.command} — {args.out}", key_numbers(result))
    print(args.out)
    return EXIT_OK


def cmd_data_build(args: argparse.Namespace, console: Any) -> int:
    from .datasets.folder import build_folder

    from .datasets.dictionaries import OpenAICompatibleVerifier

    if sum(map(bool, (args.mc2, args.jsonl, args.modality_following))) != 1:
        raise InputError("give exactly one of --mc2 FILE or --modality-following FILE... (with --images DIR), or --jsonl FILE")
    if bool(args.verifier_endpoint) != bool(args.verifier_model):
        raise InputError("--verifier-endpoint and --verifier-model go together")
    verifier = (OpenAICompatibleVerifier(args.verifier_endpoint, args.verifier_model, args.verifier_key_env)
                if args.verifier_endpoint else None)
    summary = build_folder(args.out, mc2=args.mc2, images=args.images, jsonl=args.jsonl, tasks=args.tasks,
                           modality_following=args.modality_following, question=args.question,
                           styles=tuple(args.styles), variants=tuple(args.variants), extra_forms=args.extra_forms,
                           strict=args.strict, verifier=verifier, overwrite=args.overwrite, log=console.log)
    console.table("data build", summary)
    print(args.out)
    return EXIT_OK


def cmd_heads(args: argparse.Namespace, console: Any) -> int:
    from .experiments.ranking import rank_heads, top_heads
    from .results import load_result, save

    lens = load_result(args.lens, ["lens_profile"])
    ranked = rank_heads(lens)
    console.emit(f"top {args.top} heads per instructed modality, {args.lens}", top_heads(ranked, args.top), args.format)
    if args.out:
        ranked.attrs = {**lens.attrs, "experiment": "rank_heads"}
        console.log(f"ranking written to {save(ranked, args.out)}")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, console: Any) -> int:
    from .report import FIGURES, render
    from .results import load_result

    result = load_result(args.result, FIGURES)
    path = Path(args.result)
    for png in render(result, Path(args.out) if args.out else path.parent / "figures", stem=f"{path.stem}-"):
        print(png)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Any) -> int:
    from .report import write_report

    print(write_report(args.run_dir, log=console.log))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Any) -> int:
    from .organism.demo import run_demo

    out = Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    report = run_demo(out, n_samples=args.samples, batch_size=args.batch_size, organism=args.organism,
                      progress=console.progress, log=console.log)
    console.rich.print(f"[bold green]demo finished[/]: results, figures and report in {out}")
    print(report)
    return EXIT_OK


def cmd_organism_train(args: argparse.Namespace, console: Any) -> int:
    from .organism.train import recipe, train_and_save

    config = recipe(args.recipe, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    threads=args.threads, architecture=args.architecture)
    with console.progress("training", config.steps, "steps") as advance:
        record = train_and_save(args.out, config, on_step=lambda step, loss: advance(1))
    console.table("organism", [("final loss", f"{record['loss_every_100'][-1]:.4f}")]
                  + [(split, json.dumps(record["metrics"][split])) for split in ("held_in", "held_out")])
    print(args.out)
    return EXIT_OK


def cmd_roles(args: argparse.Namespace, console: Any) -> int:
    from .datasets.instructions import example_prompt
    from .tracer import describe_row, encode_batch

    adapter = _model(args).adapter()  # the processor and template label tokens; no weights needed
    batch = encode_batch(adapter, [example_prompt(adapter.multimodal)])
    rows = [(str(i), token, role) for i, (token, role) in enumerate(describe_row(adapter, batch, 0))]
    console.table(f"token roles, {args.model}", rows, ("position", "token", "role"))
    return EXIT_OK


def cmd_models(args: argparse.Namespace, console: Any) -> int:
    from .models.adapters import CHECKS, model_table
    from .models.survey import survey

    if args.survey:
        console.emit("every image-text-to-text type's default config on a meta-device skeleton", survey(), args.format)
    else:
        console.emit(f"model types ('all checks' = {CHECKS})", model_table(), args.format)
    return EXIT_OK


def cmd_ndif(args: argparse.Namespace, console: Any) -> int:
    from .backends import ndif

    if args.ndif_command == "up":
        stack = ndif.up(args.folder)
        print(f"export NDIF_HOST={stack.host}\n# stop it with: anchors ndif down {stack.folder}")
    else:
        ndif.down(args.folder)
        console.log(f"stopped the local NDIF recorded in {args.folder}")
    return EXIT_OK


def cmd_ray(args: argparse.Namespace, console: Any) -> int:
    from .backends import cluster

    if args.ray_command == "up":
        local = cluster.up(args.folder, num_cpus=args.cpus, num_gpus=args.gpus)
        print(f"{local.address}\n# stop it with: anchors ray down {local.folder}")
    else:
        cluster.down(args.folder)
        console.log(f"stopped the Ray cluster recorded in {args.folder}")
    return EXIT_OK


def _engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where it runs")
    group.add_argument("--remote", action="store_true", help="run every trace on the NDIF server at $NDIF_HOST "
                       "(nnsight's CONFIG.API.HOST; key from NDIF_API_KEY); weights stay on the server")
    group.add_argument("--retries", type=positive_int, default=3,
                       help="attempts per batch on a remote server before failing (default: 3)")
    group.add_argument("--ray", metavar="auto|ADDRESS", help="spread the batches over Ray actors of the cluster at "
                       "ADDRESS ('auto': the one this machine belongs to; 'anchors ray up' starts a local one)")
    group.add_argument("--ray-workers", type=positive_int, help="actors (model replicas; default: as many as fit)")
    group.add_argument("--ray-gpus-per-worker", type=float, default=0.0, help="GPUs per actor (default: 0; 1 on a "
                       "GPU cluster)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="organism", help="Hub id or local folder (e.g. Qwen/Qwen2.5-VL-7B-Instruct), "
                       "'organism[:NAME]' for a shipped organism, or 'tiny:TYPE' for a tiny random model (default: organism)")
    group.add_argument("--attn", default="sdpa", choices=["eager", "sdpa"],
                       help="attention implementation; flash attention cannot take edited masks (default: sdpa)")
    group.add_argument("--dtype", default="float32", help="torch dtype name for the weights (default: float32)")
    group.add_argument("--device-map", default=None, help="Accelerate device map, e.g. 'cuda' or 'auto' (default: CPU)")
    group.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    group.add_argument("--quantization", default=None, choices=["8bit", "4bit"],
                       help="bitsandbytes loading (CUDA and the 'quant' extra; no per-head readouts)")


def build_parser() -> argparse.ArgumentParser:
    from .experiments import configs
    from .models.organisms import ARCHITECTURES, ORGANISMS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML file of options (top-level keys, or a [command] table)")
    common.add_argument("--quiet", action="store_true", help="no progress bars, logs or tables (results are still written)")
    parser = argparse.ArgumentParser(prog="anchors", description="Dissect modality arbitration in multimodal LLMs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help: str, group: Any = commands) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    build = command("build", cmd_data_build, "MC2 or JSONL records -> samples.jsonl + dictionaries.jsonl",
                    commands.add_parser("data", help="build analysis data").add_subparsers(dest="data_command", required=True))
    add_build_options(build)
    for name, (_, config_name, help) in ANALYSIS_COMMANDS.items():
        sub = command(name, cmd_analysis, help)
        _model_options(sub)
        add_data_options(sub)
        sub.add_argument("--out", type=Path, required=True, help="NetCDF file to write")
        sub.add_argument("--overwrite", action="store_true", help="replace an output made with other options "
                         "(without it, re-running the same command resumes an interrupted run)")
        if name == "intervene":
            sub.add_argument("--lens", required=True, help="lens result used to rank the heads")
        _engine_options(sub)
        add_config_options(sub, getattr(configs, config_name))
    for name, (_, config_name, help) in RANKED_COMMANDS.items():
        sub = command(name, cmd_ranked_heads, help)
        _model_options(sub)
        sub.add_argument("--file", required=True, help="the task's records (JSONL or a JSON list; README: formats)")
        sub.add_argument("--lens", required=True, help="lens result whose head ranking gives the targeted heads")
        sub.add_argument("--out", type=Path, required=True, help="NetCDF file to write")
        sub.add_argument("--limit", type=positive_int, help="use only the first N records")
        sub.add_argument("--batch-size", type=positive_int, default=8, help="samples per batch (default: 8)")
        sub.add_argument("--overwrite", action="store_true", help="replace an output made with other options")
        _engine_options(sub)
        add_config_options(sub, getattr(configs, config_name))
    heads = command("heads", cmd_heads, "rank heads per instructed modality from a lens result")
    heads.add_argument("lens", help="lens result (NetCDF) made with per-head attribution")
    heads.add_argument("--top", type=positive_int, default=10, help="heads to list per modality (default: 10)")
    heads.add_argument("--format", default="table", choices=["table", "csv", "json"], help="stdout format (default: table)")
    heads.add_argument("--out", type=Path, help="also write the ranking as NetCDF")
    plot = command("plot", cmd_plot, "figures (PNG and SVG) from a result file")
    plot.add_argument("result", help="a result NetCDF file")
    plot.add_argument("--out", help="folder for the figures (default: figures/ beside the result)")
    command("report", cmd_report, "self-contained HTML report of a run directory").add_argument("run_dir")
    demo = command("demo", cmd_demo, "the whole paper on the built-in organism, with its report")
    demo.add_argument("--out", help="run directory (default: runs/demo-TIMESTAMP)")
    demo.add_argument("--samples", type=positive_int, default=128, help="samples per wording split (default: 128)")
    demo.add_argument("--batch-size", type=positive_int, default=32, help="samples per batch (default: 32)")
    demo.add_argument("--organism", default=ORGANISMS[0], choices=ORGANISMS, help="which shipped organism")
    organism = commands.add_parser("organism", help="the model organism").add_subparsers(dest="organism_command", required=True)
    train = command("train", cmd_organism_train, "train an organism from scratch", organism)
    train.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default: 2000)")
    train.add_argument("--batch-size", type=positive_int, default=48, help="examples per step (default: 48)")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--threads", type=positive_int, default=2, help="torch threads; results depend on it (default: 2)")
    train.add_argument("--architecture", default=ARCHITECTURES[0], choices=ARCHITECTURES, help="transformers architecture")
    train.add_argument("--recipe", default="plain", help="'plain', or 'anchored' (the paper's route planted by "
                       "attention constraints in training; 8 layers)")
    _model_options(command("roles", cmd_roles, "print the token-role map of an example prompt"))
    models = command("models", cmd_models, "supported model types, their adapter and what was verified on each")
    models.add_argument("--format", default="table", choices=["table", "csv", "json"], help="stdout format (default: table)")
    models.add_argument("--survey", action="store_true", help="try the structural adapter on every image-text-to-text "
                        "type of the installed transformers (default configs, no weights)")
    services = (("ndif", cmd_ndif, "a local NDIF server (ndif 0.1.2, CPU) on 127.0.0.1"),
                ("ray", cmd_ray, "a local Ray cluster on 127.0.0.1"))
    for name, handler, help in services:
        verbs = commands.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)
        start = command("up", handler, f"start {help}; prints how to use it", verbs)
        start.add_argument("--folder", help="where its record, logs and temporary files go (default: a new /tmp folder)")
        stop = command("down", handler, "stop what 'up' started (by the process sessions it recorded)", verbs)
        stop.add_argument("folder", help="the folder 'up' reported")
        if name == "ray":
            start.add_argument("--cpus", type=positive_int, default=2, help="logical CPUs: one per worker (default: 2)")
            start.add_argument("--gpus", type=int, default=0, help="GPUs of this node (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from .console import Console

    warnings.filterwarnings("ignore")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        apply_config(parser, argv)
        args = parser.parse_args(argv)
        if args.quiet:  # transformers' own bars too (read from the environment when it is imported)
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
            if "transformers" in sys.modules:
                sys.modules["transformers"].utils.logging.disable_progress_bar()
        return args.handler(args, Console(args.quiet))
    except KeyboardInterrupt:
        print("anchors: interrupted; finished batches are kept in OUT.parts: run the same command again to resume",
              file=sys.stderr)
        return 130
    except AnchorsError as error:
        print(f"anchors: error: {' '.join(str(error).split()) or type(error).__name__}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - anything else is a bug: say so with the traceback
        traceback.print_exc()
        print(f"anchors: internal error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_INTERNAL
