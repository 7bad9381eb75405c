"""The command line's utility commands: data building, head ranking, figures and reports, the
demo, organisms, model tables and the local NDIF / Ray services. Each handler takes the parsed
arguments and the console and returns the exit code; the work is the library's."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .command_options import model_spec
from .errors import InputError

EXIT_OK, EXIT_INTERNAL = 0, 1


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
                           strict=args.strict, verifier=verifier, overwrite=args.overwrite,
                           dictionaries=args.dictionaries, regions=args.regions, coco_instances=args.coco_instances,
                           log=console.log)
    console.table("data build", summary)
    print(args.out)
    return EXIT_OK


def cmd_matched_regions(args: argparse.Namespace, console: Any) -> int:
    from .datasets.matched_regions import write_matched_regions

    print(write_matched_regions(args.data, model_spec(args).adapter(), args.out, draws=args.draws, seed=args.seed,
                                log=console.log))
    return EXIT_OK


def cmd_heads(args: argparse.Namespace, console: Any) -> int:
    from .experiments.ranking import rank_heads, ranking_result, top_heads
    from .results import check_writable, load_result

    if args.out:
        check_writable(args.out)
    lens = load_result(args.lens, ["lens_profile"])
    ranked = rank_heads(lens)
    console.emit(f"top {args.top} heads per instructed modality, {args.lens}", top_heads(ranked, args.top), args.format)
    if args.out:
        ranking_result(ranked, lens, args.lens, args.out)
        console.log(f"ranking written to {args.out}")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, console: Any) -> int:
    from .results.records import NAMES
    from .report import render
    from .results import load_result

    result = load_result(args.result, NAMES)
    path = Path(args.result)
    drawn = render(result, Path(args.out) if args.out else path.parent / "figures", stem=f"{path.stem}-", log=console.log)
    for png in drawn.written:
        print(png)
    return EXIT_OK if not drawn.failed else EXIT_INTERNAL


def cmd_report(args: argparse.Namespace, console: Any) -> int:
    from .report import write_report

    print(write_report(args.run_dir, log=console.log))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Any) -> int:
    from .organism.demo import run_demo

    out = Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    console.quiet_transformers()
    report = run_demo(out, n_samples=args.samples, batch_size=args.batch_size, organism=args.organism,
                      progress=console.progress, log=console.log)
    console.rich.print(f"[bold green]demo finished[/]: results, figures and report in {out}")
    print(report)
    return EXIT_OK


def cmd_organism_data(args: argparse.Namespace, console: Any) -> int:
    from .organism.task import IMAGE_SIZE, write_data

    if args.image_size % IMAGE_SIZE:
        raise InputError(f"--image-size {args.image_size} is not a multiple of the organism's {IMAGE_SIZE} pixels")
    print(write_data(args.out, args.samples, image_size=args.image_size))
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
    from .prompts.roles import role_spans
    from .tracer.token_table import prompt_tokens

    if bool(args.data) != bool(args.sample):
        raise InputError("--data and --sample go together: the data folder and one of its sample ids")
    if args.data:
        from .datasets.folder import DataFolder

        prompt = DataFolder.open(args.data).prompt(args.sample)  # an unknown id is refused before the processor loads
        title = f"token roles of sample {args.sample} ({args.data}), {args.model}"
    adapter = model_spec(args).adapter()  # the processor and template label tokens; no weights needed
    if not args.data:
        from .datasets.instructions import example_prompt

        prompt, title = example_prompt(adapter.multimodal), f"token roles of an example prompt, {args.model}"
    console.roles(title, role_spans(prompt_tokens(adapter, [prompt])[0]))
    return EXIT_OK


def cmd_explore(args: argparse.Namespace, console: Any) -> int:
    from .report.explorer import write_explorer

    print(write_explorer(args.run_dir, log=console.log))
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
        print(f"export NDIF_HOST={stack.host}\n# requests run in ndif's sandbox, as an ordinary API key's; for the "
              f"trusted path: export NDIF_API_KEY={stack.trusted_key}\n# stop it with: anchors ndif down {stack.folder}")
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
