"""What the toolkit's traces and knockout sweeps cost, as ratios measured in one process.

    make bench        # or: .venv/bin/python benchmarks/run.py [--models organism medium] [--repeats 5]

Two models: the shipped organism (6 layers × 64 wide; per-call overheads dominate) and a medium
random Qwen2.5-VL (12 layers × 1024 wide, 137 M parameters; a 224×224 image gives 64 image
tokens; prompts of 220+ tokens; compute dominates). For each:

- trace costs: every trace (and the plain-hooks reference of the same edit) as a ratio to a plain
  forward, median of ``--repeats``; the nnsight overhead is the trace's time over the hooks';
- sweeps: the knockout profile (six pathways × every layer, windows 3 and 9) by each method, the
  methods interleaved within each repeat, as ratios to the naive sweep (median over repeats);
- peak memory: each trace's peak of live heap memory above the loaded model, in a fresh process per
  case, and its ratio to the plain forward's.

Results go to a table on stdout and to ``benchmarks/results.json`` with the machine.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from anchors.experiments.configs import DEFAULT_PATHWAYS
from anchors.interventions import HeadScale, Knockout
from anchors.interventions.edits import cut_edges, role_mask, scale_heads
from anchors.prompts import Prompt, TracedSample
from anchors.prompts.roles import ROLE_CODE, ROLES, expand_role
from anchors.results.provenance import versions
from anchors.tracer import encode_samples, trace_batch
from anchors.tracer.sweep import sweep_knockouts

RESULTS = Path(__file__).with_name("results.json")
MEDIUM = dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=12, num_attention_heads=16,
              num_key_value_heads=4, vision_depth=2, vision_width=128, image_size=224)
CONTEXT = ("The photograph was taken on a bright afternoon in the old harbour district where fishing boats line the "
           "stone quay and gulls circle above the market stalls. A tall lighthouse with a striped tower stands at the "
           "end of the pier while tourists walk slowly past the cafes and the small shops selling postcards maps and "
           "souvenirs. In the middle of the square a ball rests beside a wooden bench near the fountain.")
KNOCKOUT = Knockout("cues", "instruction", layer=2, window=3)
# samples per knockout sweep: a naive sweep of the medium model at batch 8 takes ten minutes per
# repeat on two cores, so its sweeps run at batch 2 (the ratios are what is compared)
SWEEP_BATCH = {"organism": 8, "medium": 2}


def medium_folder() -> Path:
    from anchors.models.tiny import build_tiny

    folder = Path(tempfile.gettempdir()) / "anchors-bench-medium-qwen2_5_vl"
    if not (folder / "config.json").exists():
        build_tiny("qwen2_5_vl", folder, **MEDIUM)
    return folder


def setup(model: str, batch: int) -> tuple[Any, Any, Any]:
    """The loaded model, one encoded batch and its subspaces."""
    from anchors.models import ModelSpec
    from anchors.organism import load_organism

    loaded = load_organism() if model == "organism" else ModelSpec(str(medium_folder())).load()
    return (loaded, *encode(loaded, model, batch))


def samples(model: str, batch: int) -> list[TracedSample]:
    """``batch`` samples whose prompts differ in length (so a batch is padded)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(batch):
        context = CONTEXT if model == "medium" else "The ball is red."
        words = context.split()[: len(context.split()) - (i % 4)]  # lengths differ: the batch is padded
        image = Image.fromarray((rng.random((224 if model == "medium" else 56,) * 2 + (3,)) * 255).astype("uint8"))
        prompt = Prompt(f"b{i}", (("context", " ".join(words)), ("question", "What color is the ball?"),
                                  ("instruction_semantic", "Follow the text rather than the image."),
                                  ("instruction_format", "Answer with one word.")), image=image)
        out.append(TracedSample(prompt, (11, 12, 13), (14, 15, 16), task="color", instructed="text"))
    return out


def encode(loaded: Any, model: str, batch: int) -> tuple[Any, Any]:
    """:func:`samples`, encoded, and their subspaces."""
    return encode_samples(loaded.adapter, samples(model, batch))


@contextmanager
def plain_hooks(module: torch.nn.Module, hooks: dict[torch.nn.Module, Callable]) -> Iterator[None]:
    """Forward pre-hooks (with kwargs) on the given modules, removed on exit."""
    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m, hook in hooks.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def trace_cases(loaded: Any, encoded: Any, space: Any) -> dict[str, Callable[[], Any]]:
    """Each trace, and the same edit done by plain PyTorch hooks calling the same pure-torch edit
    functions (the baseline of nnsight's overhead)."""
    module, adapter = loaded.module, loaded.adapter
    n_heads = adapter.shape.n_heads
    heads = tuple((layer, h) for layer in (1, 2) for h in range(n_heads))
    roles = encoded.roles
    edges = [([ROLE_CODE[r] for r in expand_role(KNOCKOUT.source)], [ROLE_CODE[r] for r in expand_role(KNOCKOUT.target)])]
    at_instruction = role_mask(roles, [ROLE_CODE[r] for r in expand_role("instruction")])

    def cut(mod, args, kwargs):
        hidden = kwargs["hidden_states"]
        return args, {**kwargs, "attention_mask": cut_edges(kwargs.get("attention_mask"), roles, edges, hidden.shape[1],
                                                            hidden.dtype)}

    def scale(mod, args, kwargs):
        return (scale_heads(args[0], list(range(n_heads)), 0.0, at_instruction, adapter.shape.head_dim),), kwargs

    knockout_hooks = {adapter.attention(module, i): cut for i in KNOCKOUT.layers(adapter.shape.n_layers)}
    scale_hooks = {adapter.out_proj(module, i): scale for i in (1, 2)}

    def hooked(hooks):
        def run():
            with plain_hooks(module, hooks):
                return module(**encoded.inputs, logits_to_keep=1)
        return run

    return {
        "plain forward (no nnsight)": lambda: module(**encoded.inputs, logits_to_keep=1),
        "trace: answer logits only": lambda: trace_batch(loaded, encoded, space),
        "plain hooks: knockout (window 3)": hooked(knockout_hooks),
        "trace: knockout (window 3)": lambda: trace_batch(loaded, encoded, space, [KNOCKOUT]),
        "plain hooks: head scaling (2 layers, all heads)": hooked(scale_hooks),
        "trace: head scaling (2 layers, all heads)": lambda: trace_batch(loaded, encoded, space, [HeadScale(heads, 0.0)]),
        "trace: lens readouts (3 sites x all layers)": lambda: trace_batch(loaded, encoded, space, lens=True),
        "trace: lens + per-head readouts": lambda: trace_batch(loaded, encoded, space, lens=True, heads=True),
    }


def sweep_cases(loaded: Any, encoded: Any, space: Any) -> dict[str, Callable[[], Any]]:
    n_layers = loaded.adapter.shape.n_layers
    settings = [Knockout(source, target, layer, window) for source, target in DEFAULT_PATHWAYS.values()
                for window in (3, 9) for layer in range(n_layers)]
    return {f"knockout profile: {method}": (lambda m=method: sweep_knockouts(loaded, encoded, space, settings, method=m))
            for method in ("naive", "reuse", "atp")}


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        run()
    return time.perf_counter() - start


def medians(cases: dict[str, Callable[[], Any]], repeats: int, warm_up: bool = True) -> dict[str, list[float]]:
    """Each case's times over ``repeats`` rounds, the cases interleaved within a round (after one
    warm-up round unless the cases are long enough to warm themselves)."""
    for run in cases.values() if warm_up else ():
        timed(run)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            times[name].append(timed(run))
    return times


class MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def live_heap_bytes() -> int:
    """Bytes the process holds in malloc'ed blocks right now (glibc ``mallinfo2``, all arenas):
    unlike resident memory, freed blocks the allocator keeps do not count, nor file pages of
    weights mapped but not yet read."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def peak_above_loaded(model: str, batch: int, case: str, threads: int) -> int:
    """In a fresh process: the peak of live heap memory while ``case`` runs twice, above what is
    held once the model is loaded and the batch encoded (sampled every 0.2 ms)."""
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    loaded, encoded, space = setup(model, batch)
    run = trace_cases(loaded, encoded, space)[case]
    baseline, peak, done = live_heap_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], live_heap_bytes())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.no_grad():
        run(), run()
    done.set()
    sampler.join()
    return peak[0] - baseline


def benchmark(model: str, batch: int, repeats: int, threads: int, sweeps: bool = True) -> dict[str, Any]:
    loaded, encoded, space = setup(model, batch)
    shape = loaded.adapter.shape
    info = {"model": "organism qwen2_5_vl" if model == "organism" else "random Qwen2.5-VL " + " ".join(
        f"{k}={v}" for k, v in MEDIUM.items()), "parameters_M": round(sum(p.numel() for p in loaded.module.parameters()) / 1e6, 1),
        "layers": shape.n_layers, "hidden": shape.hidden_size, "batch": batch, "sequence": int(encoded.roles.shape[1]),
        "image_tokens": int((encoded.roles[0] == ROLES.index("visual")).sum())}
    print(f"\n{info['model']}: {info['parameters_M']} M parameters, batch {batch}, sequence {info['sequence']} "
          f"({info['image_tokens']} image tokens), {threads} threads")
    traces = {name: statistics.median(t) for name, t in medians(trace_cases(loaded, encoded, space), repeats).items()}
    base = traces["plain forward (no nnsight)"]
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1, maxtasksperchild=1) as pool:
        memory = {name: pool.apply(peak_above_loaded, (model, batch, name, threads)) for name in traces}
    info["traces"] = {name: {"ms": 1000 * t, "x_plain_forward": t / base, "peak_MB_above_model": memory[name] / 2**20,
                             "x_plain_forward_peak": memory[name] / memory["plain forward (no nnsight)"]}
                      for name, t in traces.items()}
    info["nnsight_overhead"] = {
        "knockout": traces["trace: knockout (window 3)"] / traces["plain hooks: knockout (window 3)"],
        "head scaling": traces["trace: head scaling (2 layers, all heads)"] / traces["plain hooks: head scaling (2 layers, all heads)"]}
    for name, row in info["traces"].items():
        print(f"  {name:48s} {row['ms']:9.1f} ms {row['x_plain_forward']:6.2f}x   peak +{row['peak_MB_above_model']:7.1f} MB "
              f"({row['x_plain_forward_peak']:.2f}x)")
    for edit, ratio in info["nnsight_overhead"].items():
        print(f"  nnsight trace / plain hooks, {edit}: {ratio:.3f}")
    if not sweeps:
        return info
    sweep_batch = min(batch, SWEEP_BATCH[model])
    sweep_encoded, sweep_space = encode(loaded, model, sweep_batch)
    info["sweep_batch"] = sweep_batch
    sweeps = medians(sweep_cases(loaded, sweep_encoded, sweep_space), repeats, warm_up=False)
    naive = sweeps["knockout profile: naive"]
    info["sweeps"] = {name: {"s": statistics.median(t), "x_naive": statistics.median(a / b for a, b in zip(t, naive))}
                      for name, t in sweeps.items()}
    info["sweeps_settings"] = 6 * 2 * shape.n_layers
    for name, row in info["sweeps"].items():
        print(f"  {name:48s} {row['s']:9.2f} s  {row['x_naive']:6.3f}x naive  (batch {sweep_batch})")
    return info


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["organism", "medium"], choices=["organism", "medium"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-sweeps", action="store_true", help="trace costs and memory only; keep earlier sweeps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpus": os.cpu_count(), "threads": args.threads, "device": "cpu",
                          "date": time.strftime("%Y-%m-%d"), "versions": versions()}
    for model in args.models:
        results[model] = {**results.get(model, {}), **benchmark(model, args.batch, args.repeats, args.threads,
                                                                  not args.skip_sweeps)}
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
