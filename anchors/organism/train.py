"""Build and train the model organism: a small Qwen2.5-VL trained on the synthetic colour task.

Loss is on the answer token only (the next token after the assistant-turn opener). Training is
deterministic for a given seed and thread count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import InputError
from ..models.adapters import Adapter, adapter_class
from ..models.organisms import ARCHITECTURES
from ..models.tiny import tiny_config
from ..prompts.prompt import Prompt
from ..tracer.encode import encode_batch
from .constraints import Constraint, anchored_route, constrained
from .task import COLOURS, HELD_IN, HELD_OUT, Example, evaluation_set, make_example, vocabulary

ORGANISM_SIZES: dict[str, int] = dict(
    hidden_size=128, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4, intermediate_size=384,
    vision_depth=2, vision_width=64,
)
# Sizes an architecture needs beyond ORGANISM_SIZES.
ARCHITECTURE_SIZES: dict[str, dict[str, int]] = {"llava": {"image_size": 56}}
VOCAB_SIZE = 1536
METADATA = "organism.json"


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 48
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2
    architecture: str = "qwen2_5_vl"
    num_hidden_layers: int = 6
    # Attention cuts applied in training, each step with this probability (see constraints.py).
    constraints: tuple[Constraint, ...] = ()
    constraint_probability: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Back from ``asdict`` (as recorded in ``organism.json``)."""
        return cls(**{**data, "constraints": tuple(Constraint(**c) for c in data.get("constraints", ()))})


# Named training recipes beside the plain one (``anchors organism train --recipe``).
RECIPES: dict[str, dict[str, Any]] = {
    "anchored": {"num_hidden_layers": 8, "constraints": anchored_route(8), "constraint_probability": 0.9},
}


def recipe(name: str, **options: Any) -> TrainConfig:
    """The training config of a named recipe ('plain' or a key of RECIPES) with ``options``."""
    if name != "plain" and name not in RECIPES:
        raise InputError(f"--recipe {name}: choose plain or {', '.join(RECIPES)}")
    return TrainConfig(**{**RECIPES.get(name, {}), **options})


def build(seed: int = 0, architecture: str = "qwen2_5_vl", attn_implementation: str = "sdpa", num_hidden_layers: int = 6
          ) -> tuple[torch.nn.Module, Any, Adapter]:
    """A freshly initialised organism (model, processor, adapter) of ``architecture``."""
    from transformers import AutoModelForImageTextToText

    if architecture not in ARCHITECTURES:
        raise InputError(f"no organism recipe for {architecture!r}; choose from {', '.join(ARCHITECTURES)}")
    cls = adapter_class(architecture)
    sizes = {**ORGANISM_SIZES, **ARCHITECTURE_SIZES.get(architecture, {}), "num_hidden_layers": num_hidden_layers}
    config, processor = tiny_config(architecture, words=vocabulary(), vocab_size=VOCAB_SIZE, **sizes)
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    return model, processor, cls(model.config, processor)


def answer_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"answer {word!r} is not a single token ({ids})")
    return ids[0]


def _encode(adapter: Adapter, examples: list[Example], switch: Any = None) -> Any:
    """The processor inputs of ``examples``; with a constraint ``switch``, also set its role codes."""
    if switch is None:
        texts = [adapter.render(Prompt(e.example_id, e.segments).user_text, True) for e in examples]
        return adapter.encode(texts, [e.image for e in examples])
    batch = encode_batch(adapter, [Prompt(e.example_id, e.segments, image=e.image) for e in examples])
    switch.roles = batch.roles
    return batch.inputs


def _schedule(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def train_model(config: TrainConfig, on_step: Callable[[int, float], None] | None = None
                ) -> tuple[torch.nn.Module, Any, Adapter, list[float]]:
    """Train from scratch; returns the model, processor, adapter and the loss of every step."""
    torch.set_num_threads(config.threads)
    model, processor, adapter = build(config.seed, config.architecture, num_hidden_layers=config.num_hidden_layers)
    model.train()
    with constrained(model, adapter, config.constraints) as switch:
        losses = _train_steps(model, adapter, config, switch if config.constraints else None, on_step)
    model.eval()
    return model, processor, adapter, losses


def _train_steps(model: torch.nn.Module, adapter: Adapter, config: TrainConfig, switch: Any,
                 on_step: Callable[[int, float], None] | None) -> list[float]:
    targets = {c: answer_token(adapter.tokenizer, c) for c in COLOURS}
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(config))
    rng, coin = np.random.default_rng(config.seed), np.random.default_rng(config.seed + 1)
    losses = []
    for step in range(config.steps):
        examples = [make_example(rng, i) for i in range(config.batch_size)]
        inputs = _encode(adapter, examples, switch)
        if switch is not None:
            switch.on = bool(coin.random() < config.constraint_probability)
        logits = model(**inputs, logits_to_keep=1).logits[:, -1]
        target = torch.tensor([targets[e.target] for e in examples])
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
    return losses


@torch.no_grad()
def following_rates(model: torch.nn.Module, adapter: Adapter, examples: list[Example], batch_size: int = 64,
                    constraints: tuple[Constraint, ...] = ()) -> dict[str, float]:
    """Per instructed modality: the fraction of examples whose greedy answer is the compliant colour,
    and the fraction answering the competing one (with ``constraints`` applied, if any)."""
    targets = {c: answer_token(adapter.tokenizer, c) for c in COLOURS}
    hits = {m: [0, 0, 0] for m in ("text", "vision")}
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        with constrained(model, adapter, constraints) as switch:
            inputs = _encode(adapter, chunk, switch if constraints else None)
            top = model(**inputs, logits_to_keep=1).logits[:, -1].argmax(-1).tolist()
        for e, token in zip(chunk, top):
            hits[e.instructed][0] += token == targets[e.target]
            hits[e.instructed][1] += token == targets[e.competing]
            hits[e.instructed][2] += 1
    out = {}
    for m, (followed, competing, n) in hits.items():
        if n == 0:
            continue
        out[f"follow_{m}"] = followed / n
        out[f"competing_{m}"] = competing / n
    return out


def evaluate(model: torch.nn.Module, adapter: Adapter, n: int = 400, seed: int = 12345,
             constraints: tuple[Constraint, ...] = ()) -> dict[str, dict[str, float]]:
    return {
        "held_in": following_rates(model, adapter, evaluation_set(n, seed, held_out=False, prefix="in"),
                                   constraints=constraints),
        "held_out": following_rates(model, adapter, evaluation_set(n, seed + 1, held_out=True, prefix="out"),
                                    constraints=constraints),
    }


SMOKE = TrainConfig(steps=20, batch_size=8, seed=7, threads=1, warmup=5)


def train_and_save(folder: str | Path, config: TrainConfig, on_step: Callable[[int, float], None] | None = None) -> dict:
    """Train, evaluate, and write safetensors + processor files + ``organism.json`` to ``folder``."""
    from importlib import metadata

    start = time.time()
    model, processor, adapter, losses = train_model(config, on_step)
    seconds = time.time() - start
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    smoke = dataclasses.replace(SMOKE, architecture=config.architecture, num_hidden_layers=config.num_hidden_layers,
                                constraints=config.constraints, constraint_probability=config.constraint_probability)
    smoke_losses = train_model(smoke)[3]
    record = {
        "architecture": config.architecture,
        "sizes": {**ORGANISM_SIZES, **ARCHITECTURE_SIZES.get(config.architecture, {}),
                  "num_hidden_layers": config.num_hidden_layers},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(config),
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "python": platform.python_version(),
        "train_seconds": round(seconds, 1),
        "loss_every_100": [round(l, 6) for l in losses[::100]] + [round(losses[-1], 6)],
        "smoke": {"config": asdict(smoke), "losses": smoke_losses},
    }
    (folder / METADATA).write_text(json.dumps(record, indent=2))
    return record_metrics(folder, model, adapter)


def record_metrics(folder: str | Path, model: torch.nn.Module | None = None, adapter: Adapter | None = None) -> dict:
    """Evaluate the organism in ``folder`` on held-in and held-out wordings and store the metrics
    and the wordings in its ``organism.json``."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = Path(folder)
    if model is None or adapter is None:
        model = AutoModelForImageTextToText.from_pretrained(folder).eval()
        processor = AutoProcessor.from_pretrained(folder)
        adapter = adapter_class(model.config.model_type)(model.config, processor)
    record = json.loads((folder / METADATA).read_text())
    record["metrics"] = evaluate(model, adapter)
    constraints = TrainConfig.from_dict(record["train_config"]).constraints
    if constraints:
        record["metrics_constrained"] = evaluate(model, adapter, constraints=constraints)
    record["wordings"] = {"held_in": HELD_IN, "held_out": HELD_OUT}
    (folder / METADATA).write_text(json.dumps(record, indent=2))
    return record
