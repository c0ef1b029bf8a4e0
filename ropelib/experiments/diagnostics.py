# generated from notebooks/11_diagnostics.md by tools/export.py, do not edit

# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
"""The diagnostics experiment: every registered scheme on the synthetic tasks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

import ropelib.schemes  # noqa: F401  (registers every position scheme)
from ropelib import tasks
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
from ropelib.model import GPT, POSITION_SCHEMES, GPTConfig
from ropelib.train.optim import parameter_groups

EXPERIMENT = "diagnostics"


@dataclass(frozen=True)
class Task:
    """A task with its training and test sizes. Defined in the chapter *Diagnostics*."""

    name: str
    generate: Callable[..., tasks.TaskBatch]  # (batch, size, generator, **options)
    vocab_size: int
    unit: str  # what a size counts
    train_sizes: tuple[int, int]  # drawn uniformly, both ends included
    test_sizes: tuple[int, ...]
    tokens_per_size: tuple[int, int]  # sequence length = a * size + b
    chance: float  # the accuracy of a uniform guess at a scored position
    variants: dict[str, dict] = field(default_factory=dict)  # at the training size

    def tokens(self, size: int) -> int:
        """The sequence length of a batch of `size`."""
        return self.tokens_per_size[0] * size + self.tokens_per_size[1]


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("copy", tasks.copy_task, tasks.COPY_VOCAB, "symbols copied", (1, 16),
             (16, 32, 64, 128), (2, 2), 1 / tasks.COPY_SYMBOLS),
        Task("mqar", tasks.mqar_task, tasks.MQAR_VOCAB, "key-value pairs", (2, 8),
             (8, 16, 32, 64), (4, 0), 1 / tasks.MQAR_VALUES),
        Task("flip-flop", tasks.flip_flop_task, tasks.FLIP_VOCAB, "instructions",
             (8, 32), (32, 64, 128, 256), (2, 0), 1 / 2,
             {"sparse": {"p_ignore": 0.98}, "dense": {"p_ignore": 0.1}}),
        Task("passkey", tasks.passkey_task, tasks.PASSKEY_VOCAB, "tokens", (40, 64),
             (64, 128, 256, 512), (1, 0), 1 / 10),
    )
}  # fmt: skip


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
QUICK_SCHEMES = ("learned", "none", "rope")  # quick mode: a few schemes, every task


@dataclass
class DiagnosticConfig:
    """One run: task, scheme, seed and scale. Defined in the chapter *Diagnostics*."""

    task: str
    pe: str
    seed: int = 0
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_sequences: int = 128  # per test size, the same for every run
    eval_seed: int = 10_000  # + the size; training seeds are 0, 1, 2, ...
    device: str = "cpu"  # batches are drawn on the CPU either way: the same data


def diagnostic_config(
    task: str, pe: str, seed: int, quick: bool = False, **overrides
) -> DiagnosticConfig:
    """A run's configuration. Defined in the chapter *Diagnostics*."""
    fields = set(DiagnosticConfig.__dataclass_fields__) - {"task", "pe", "seed"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"overrides must be among {sorted(fields)}, got {unknown}")
    small = dict(n_layer=1, n_embd=16, steps=3, batch_size=4, eval_sequences=8)
    return DiagnosticConfig(task, pe, seed, **{**(small if quick else {}), **overrides})


def diagnostic_runs(quick: bool = False, seeds: int = 3) -> list[tuple[str, ...]]:
    """(run, label, task, scheme, seed). Defined in the chapter *Diagnostics*."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    schemes = sorted(POSITION_SCHEMES)
    if quick:
        schemes = [s for s in schemes if s in QUICK_SCHEMES]
    return [
        (f"{task}-{pe}-seed{seed}", f"{task} {pe}", task, pe, seed)
        for seed in range(seeds)  # seed by seed: a partial run covers every scheme
        for task in TASKS
        for pe in schemes
    ]


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
def _lr_factor(config: DiagnosticConfig, step: int) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    low = config.min_lr_ratio
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))


def train_on_task(config: DiagnosticConfig) -> tuple[GPT, list[dict], int]:
    """(model, history, tokens) of a run. Defined in the chapter *Diagnostics*."""
    task = TASKS[config.task]
    torch.manual_seed(config.seed)
    model = GPT(
        GPTConfig(
            n_layer=config.n_layer,
            n_head=config.n_head,
            n_embd=config.n_embd,
            block_size=task.tokens(max(task.test_sizes)),  # the learned table's rows
            vocab_size=task.vocab_size,
            pe=config.pe,
        )
    ).to(config.device)
    groups = parameter_groups(model, config.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(config, step)
    )
    generator = torch.Generator().manual_seed(config.seed)
    low, high = task.train_sizes
    history, tokens = [], 0
    for step in range(config.steps):
        size = int(torch.randint(low, high + 1, (1,), generator=generator))
        batch = task.generate(config.batch_size, size, generator)
        inputs, targets = (
            batch.inputs.to(config.device),
            batch.targets.to(config.device),
        )
        _, loss = model(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        tokens += batch.inputs.numel()
        if step % 50 == 0 or step == config.steps - 1:
            history.append({"iter": step, "kind": "train", "loss": loss.item()})
    return model, history, tokens


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
@torch.no_grad()
def task_accuracy(
    model: GPT, task: Task, size: int, sequences: int, seed: int, **options
) -> tuple[float, float]:
    """(token, sequence) accuracy at `size`. Defined in the chapter *Diagnostics*."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    right = scored = whole = 0
    for start in range(0, sequences, 32):
        batch = task.generate(min(32, sequences - start), size, generator, **options)
        inputs, targets, mask = (t.to(device) for t in batch)
        logits, _ = model(inputs)
        hit = logits.argmax(dim=-1).eq(targets) | ~mask
        right += (hit & mask).sum().item()
        scored += mask.sum().item()
        whole += hit.all(dim=1).sum().item()
    return right / scored, whole / sequences


def evaluate_task(model: GPT, config: DiagnosticConfig) -> dict:
    """Accuracy at each test size and variant. Defined in the chapter *Diagnostics*."""
    task, n = TASKS[config.task], config.eval_sequences
    tokens, whole, variants = {}, {}, {}
    for size in task.test_sizes:
        acc = task_accuracy(model, task, size, n, config.eval_seed + size)
        tokens[str(size)], whole[str(size)] = acc
    size = task.train_sizes[1]
    for i, (name, options) in enumerate(task.variants.items(), 1):
        seed = config.eval_seed + 100_000 * i + size
        variants[name] = task_accuracy(model, task, size, n, seed, **options)[0]
    lengths = {str(s): task.tokens(s) for s in task.test_sizes}
    return dict(
        accuracy=tokens,
        sequence_accuracy=whole,
        variants=variants,
        sequence_lengths=lengths,
    )


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
def _record(run, label, config, quick, model, history, tokens, wall, origin) -> dict:
    final = evaluate_task(model, config)
    final.update(
        parameters=model.num_parameters(),
        train_tokens=tokens,
        train_loss=history[-1]["loss"],
    )
    return make_record(
        experiment=EXPERIMENT,
        run=run,
        label=label,
        seed=config.seed,
        quick=quick,
        config=config,
        final=final,
        history=history,
        wall_time_s=time.perf_counter() - wall,
        origin=origin,
        task=config.task,
        scheme=config.pe,
    )


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
def run_diagnostics(
    quick: bool = False,
    seeds: int = 3,
    results_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    threads: int | None = 1,
    log: bool = True,
    overrides: dict | None = None,
) -> Path:
    """Train every run without a record. Defined in the chapter *Diagnostics*."""
    overrides = dict(overrides or {})
    default_results, default_runs = experiment_dirs(quick)
    results = Path(results_dir or default_results / EXPERIMENT)
    locks = Path(runs_dir or default_runs) / EXPERIMENT
    results.mkdir(parents=True, exist_ok=True)
    origin, previous = provenance(), torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    origin["hardware"]["torch_threads"] = torch.get_num_threads()
    try:
        for run, label, task, pe, seed in diagnostic_runs(quick, seeds):
            path = results / f"{run}.json"
            if path.exists():
                continue
            with run_lock(locks / f"{run}.lock") as mine:
                if not mine or path.exists():  # another worker's, or just finished
                    continue
                wall = time.perf_counter()
                config = diagnostic_config(task, pe, seed, quick, **overrides)
                model, history, tokens = train_on_task(config)
                record = _record(
                    run, label, config, quick, model, history, tokens, wall, origin
                )
                write_record(path, record)
                if log:
                    print(
                        f"{EXPERIMENT}/{run}: {record['wall_time_s']:.1f} s", flush=True
                    )
    finally:
        torch.set_num_threads(previous)
    return results


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
def accuracy_by_scheme(records: list[dict], task: str, key: str = "accuracy") -> dict:
    """{scheme: {size: {seed: accuracy}}}. Defined in the chapter *Diagnostics*."""
    found: dict[str, dict[int, dict[int, float]]] = {}
    for r in records:
        if r["task"] == task:
            for size, value in r["final"][key].items():
                cell = found.setdefault(r["scheme"], {}).setdefault(int(size), {})
                cell[r["seed"]] = value
    return {pe: dict(sorted(found[pe].items())) for pe in sorted(found)}


def _cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {std:.1f}"


def diagnostics_table(results_dir: str | Path) -> str:
    """Accuracy (%) by task, scheme, length. Defined in the chapter *Diagnostics*."""
    records = load_results(EXPERIMENT, results_dir)
    if not records:
        return f"no diagnostics results in {results_dir}"
    lines = [
        "| task | scheme | seeds | 1x | 2x | 4x | 8x |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        for pe, by_size in accuracy_by_scheme(records, task).items():
            seeds = max(len(v) for v in by_size.values())
            cells = [_cell([100 * a for a in v.values()]) for v in by_size.values()]
            lines.append(f"| {task} | {pe} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / The
#    experiment
def plot_task(records: list[dict], task: str):
    """Accuracy against length per scheme. Defined in the chapter *Diagnostics*."""
    import matplotlib.pyplot as plt

    spec, by_scheme = TASKS[task], accuracy_by_scheme(records, task)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    colours = plt.get_cmap("tab20")
    for i, (pe, by_size) in enumerate(by_scheme.items()):
        sizes = list(by_size)
        means = [100 * mean_std(list(v.values()))[0] for v in by_size.values()]
        style = dict(color=colours(i % 20), marker="os^D"[i % 4], markersize=4)
        ax.plot(sizes, means, label=pe, **style)
        for size, seeds in by_size.items():
            points = [100 * a for a in seeds.values()]
            ax.scatter(
                [size] * len(points), points, s=8, alpha=0.4, color=style["color"]
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(spec.test_sizes, [str(s) for s in spec.test_sizes])
    ax.axvline(spec.train_sizes[1], color="grey", linestyle=":", linewidth=1)
    ax.axhline(100 * spec.chance, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 102)
    ax.set_xlabel(f"{spec.unit} (dotted: longest in training; dashed: chance)")
    ax.set_ylabel("accuracy on scored tokens (%)")
    seeds = max((len(v) for s in by_scheme.values() for v in s.values()), default=0)
    ax.set_title(
        f"{task}: accuracy against length (line: mean; dots: up to {seeds} seeds)"
    )
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


register_custom_experiment(EXPERIMENT, run_diagnostics, diagnostics_table, seeds=3)


__all__ = [
    "accuracy_by_scheme",
    "diagnostic_config",
    "diagnostic_runs",
    "DiagnosticConfig",
    "diagnostics_table",
    "evaluate_task",
    "EXPERIMENT",
    "plot_task",
    "QUICK_SCHEMES",
    "run_diagnostics",
    "Task",
    "task_accuracy",
    "TASKS",
    "train_on_task",
]
