# generated from notebooks/07_comrope_vision.md by tools/export.py, do not edit

# %% notebooks/07_comrope_vision.md: ComRoPE on images / Training with perturbed positions
"""Training the digits ViT and the comrope-vision experiment: *ComRoPE on images*."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ropelib.experiments.records import (
    load_results,
    make_record,
    provenance,
    write_record,
)
from ropelib.experiments.runner import (
    experiment_dirs,
    register_custom_experiment,
    run_lock,
)
from ropelib.experiments.stats import mean_std
from ropelib.train.optim import parameter_groups
from ropelib.vision import (
    METHODS,
    PERTURBATIONS,
    VisionConfig,
    VisionTransformer,
    evaluate_accuracy,
    load_digits_split,
    patch_positions,
    resize_images,
)

_Digits = tuple[Tensor, Tensor, Tensor, Tensor]


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Training with perturbed positions
@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run with `threads` torch threads, restored after: *ComRoPE on images*."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _subsets(config: VisionConfig, data: _Digits | None) -> _Digits:
    train_x, train_y, test_x, test_y = data if data is not None else load_digits_split()
    train_x, train_y = train_x[: config.train_subset], train_y[: config.train_subset]
    test_x, test_y = test_x[: config.test_subset], test_y[: config.test_subset]
    if train_x.shape[-1] != config.image_size:
        train_x = resize_images(train_x, config.image_size)
    return train_x, train_y, test_x, test_y


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Training with perturbed positions
def train_vision_model(
    config: VisionConfig, data: _Digits | None = None, threads: int | None = 1
) -> tuple[VisionTransformer, dict]:
    """Train one digits ViT: the chapter *ComRoPE on images*."""
    if not isinstance(config, VisionConfig):
        raise ValueError(f"config must be a VisionConfig, got {type(config).__name__}")
    with torch_threads(threads):
        start = time.perf_counter()
        train_x, train_y, test_x, test_y = _subsets(config, data)
        torch.manual_seed(config.seed)
        model = VisionTransformer(config)
        groups = parameter_groups(model, config.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))
        warmup = math.ceil(len(train_x) / config.batch_size)  # one epoch of steps
        total = config.epochs * warmup
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _warmup_cosine(step, warmup, total)
        )
        generator = torch.Generator().manual_seed(config.seed)
        centres, grid = patch_positions(config.train_grid), config.train_grid
        history = []
        for _ in range(config.epochs):
            model.train()
            losses = []
            for batch in torch.randperm(len(train_x), generator=generator).split(
                config.batch_size
            ):
                positions = centres
                if config.perturbation == "jitter":  # up to half a patch each way
                    noise = torch.rand(centres.shape, generator=generator) - 0.5
                    positions = centres + noise / grid
                logits = model(train_x[batch], positions)
                loss = F.cross_entropy(logits, train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
            history.append(sum(losses) / len(losses))
        sizes = config.eval_sizes
        accuracy = {str(s): evaluate_accuracy(model, test_x, test_y, s) for s in sizes}
    wall_time_s = time.perf_counter() - start
    return model, {
        "train_loss": history,
        "accuracy": accuracy,
        "wall_time_s": wall_time_s,
    }


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The experiment
EXPERIMENT = "comrope-vision"


def vision_config(
    method: str, perturbation: str, seed: int, quick: bool = False
) -> VisionConfig:
    """The config of one run of the experiment: the chapter *ComRoPE on images*."""
    if not quick:
        return VisionConfig(method=method, perturbation=perturbation, seed=seed)
    return VisionConfig(
        method=method,
        perturbation=perturbation,
        seed=seed,
        dim=16,
        depth=1,
        heads=2,
        block_dim=4,
        epochs=1,
        train_subset=128,
        test_subset=64,
    )


def vision_runs(seeds: int) -> list[tuple[str, str, str, str, int]]:
    """(run, label, method, perturbation, seed) of every run: *ComRoPE on images*."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    runs = []
    for method in METHODS:
        for perturbation in PERTURBATIONS:
            label = f"{method} {perturbation}"
            runs += [
                (f"{label}-seed{s}", label, method, perturbation, s)
                for s in range(seeds)
            ]
    return runs


def _record(run, label, config: VisionConfig, quick: bool, metrics: dict, origin: dict):
    losses, wall_time_s = metrics["train_loss"], metrics["wall_time_s"]
    accuracy = metrics["accuracy"]
    return make_record(
        experiment=EXPERIMENT,
        run=run,
        label=label,
        seed=config.seed,
        quick=quick,
        config=config,
        final=dict(epochs=len(losses), train_loss=losses[-1], accuracy=accuracy),
        history=[
            {"epoch": e, "kind": "train", "loss": v} for e, v in enumerate(losses, 1)
        ],
        wall_time_s=wall_time_s,
        origin=origin,
    )


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The experiment
def run_vision_experiment(
    quick: bool = False,
    results_dir: str | Path | None = "results/comrope-vision",
    seeds: int = 3,
    threads: int | None = 1,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> list[dict]:
    """Train every run that has no record yet: the chapter *ComRoPE on images*."""
    runs = vision_runs(seeds)
    if results_dir is None or (quick and str(results_dir) == "results/comrope-vision"):
        scratch = Path(tempfile.mkdtemp(prefix="comrope-vision-quick-"))
        results_dir, runs_dir = scratch / "results" / EXPERIMENT, scratch / "runs"
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(runs_dir if runs_dir is not None else experiment_dirs(quick)[1])
    origin = provenance()  # one commit and machine for every run of this call
    origin["hardware"]["torch_threads"] = threads or origin["hardware"]["torch_threads"]
    data = None  # loaded once, if a run trains (`data_dir` is unused: sklearn ships it)
    for run, label, method, perturbation, seed in runs:
        path = results_dir / f"{run}.json"
        if path.exists():
            continue
        with run_lock(runs_dir / EXPERIMENT / f"{run}.lock") as mine:
            if not mine or path.exists():  # another worker has it, or just finished it
                continue
            if data is None:
                data = load_digits_split()
            config = vision_config(method, perturbation, seed, quick)
            _, metrics = train_vision_model(config, data, threads)
            write_record(path, _record(run, label, config, quick, metrics, origin))
    paths = [results_dir / f"{run}.json" for run, *_ in runs]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The experiment
def _accuracy_by_group(records: list[dict]) -> tuple[list[int], dict]:
    """Sizes, and {(method, perturbation): {size: [accuracy % per seed]}}."""
    sizes = sorted({int(s) for r in records for s in r["final"]["accuracy"]})
    groups: dict[tuple[str, str], dict[int, list[float]]] = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        key = (r["config"]["method"], r["config"]["perturbation"])
        for s, a in r["final"]["accuracy"].items():
            groups.setdefault(key, {}).setdefault(int(s), []).append(100.0 * a)
    order = {name: i for i, name in enumerate(METHODS + PERTURBATIONS)}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 99), order.get(k[1], 99), k))
    return sizes, {k: groups[k] for k in keys}


def vision_results_table(results_dir: str | Path = "results/comrope-vision") -> str:
    """Accuracy (%), mean ± std over seeds: the chapter *ComRoPE on images*."""
    records = load_results(EXPERIMENT, results_dir)
    if not records:
        raise ValueError(f"results_dir {str(results_dir)!r} holds no results")
    sizes, groups = _accuracy_by_group(records)
    lines = [
        "| method | jitter | seeds | " + " | ".join(f"{s} px" for s in sizes) + " |",
        "| --- | --- | --- |" + " --- |" * len(sizes),
    ]
    for (method, perturbation), by_size in groups.items():
        seeds = max(len(v) for v in by_size.values())
        cells = ["{:.1f} ± {:.1f}".format(*mean_std(by_size[s])) for s in sizes]
        jitter = "yes" if perturbation == "jitter" else "no"
        lines.append(f"| {method} | {jitter} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The experiment
def plot_vision_results(results_dir: str | Path = "results/comrope-vision"):
    """Accuracy against resolution: the chapter *ComRoPE on images*."""
    import matplotlib.pyplot as plt

    records = load_results(EXPERIMENT, results_dir)
    if not records:
        raise ValueError(f"results_dir {str(results_dir)!r} holds no results")
    sizes, groups = _accuracy_by_group(records)
    perturbations = [p for p in PERTURBATIONS if any(k[1] == p for k in groups)]
    fig, axes = plt.subplots(
        1, len(perturbations), figsize=(9, 3.8), sharey=True, squeeze=False
    )
    for ax, perturbation in zip(axes[0], perturbations, strict=True):
        for (method, p), by_size in groups.items():
            if p == perturbation:
                xs = [s for s in sizes if s in by_size]
                stats = [mean_std(by_size[s]) for s in xs]
                means, stds = [m for m, _ in stats], [e for _, e in stats]
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=method)
        ax.axvline(records[0]["config"]["image_size"], color="grey", linestyle=":")
        ax.set_title(f"training positions: {perturbation}", fontsize=10)
        ax.set_xlabel("evaluation resolution (px per side; training: 8)")
        ax.set_xticks(sizes)
    axes[0][0].set_ylabel("test accuracy (%), mean ± std")
    axes[0][-1].legend(fontsize=8)
    seeds = max(len(v) for g in groups.values() for v in g.values())
    fig.suptitle(f"Digits ViT: accuracy when the resolution changes ({seeds} seeds)")
    fig.tight_layout()
    return fig


register_custom_experiment(
    EXPERIMENT, run_vision_experiment, vision_results_table, seeds=3
)


__all__ = [
    "EXPERIMENT",
    "plot_vision_results",
    "run_vision_experiment",
    "torch_threads",
    "train_vision_model",
    "vision_config",
    "vision_results_table",
    "vision_runs",
]
