# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Context
#    extension: changing the frequencies after training
"""Context extension of trained models and long-context diagnostics.

Derived in notebooks/09_long_context.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ropelib.model import RoPE
from ropelib.rope import (
    RotaryEmbedding,
    interpolated_frequencies,
    ntk_frequencies,
    rope_angles,
    rope_frequencies,
    yarn_frequencies,
    yarn_logit_scale,
)
from ropelib.train import register_custom_experiment

EXTENSIONS = ("none", "pi", "ntk", "yarn")


def extend_context(
    model: nn.Module, method: str, factor: float = 1.0, original_context: int | None = None
) -> int:
    """Set the frequencies of every RoPE layer of `model` for a context `factor` times longer.

    Returns the number of layers changed. Derived in notebooks/09_long_context.md.
    """
    if method not in EXTENSIONS:
        raise ValueError(f"method must be one of {EXTENSIONS}, got {method!r}")
    changed = 0
    for module in model.modules():
        if not isinstance(module, RoPE) or getattr(module, "rope", None) is None:
            continue
        rope: RotaryEmbedding = module.rope
        base = module.config.rope_base
        D = rope.rotary_dim
        if method == "none":
            frequencies, scale = rope_frequencies(D, base), 1.0
        elif method == "pi":
            frequencies, scale = interpolated_frequencies(D, factor, base), 1.0
        elif method == "ntk":
            frequencies, scale = ntk_frequencies(D, factor, base), 1.0
        else:
            context = original_context or module.config.block_size
            frequencies, scale = (
                yarn_frequencies(D, factor, context, base),
                yarn_logit_scale(factor),
            )
        rope.frequencies = frequencies
        rope._cache.clear()
        value_rope = getattr(module, "value_rope", None)  # RoVE rotates values by the same angles
        if value_rope is not None:
            value_rope.frequencies = frequencies
            value_rope._cache.clear()
        module.logit_scale = scale
        changed += 1
    return changed


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending trained models
FACTORS = (2, 4, 8)
INVERSION_LENGTHS = (64, 256, 1024, 4096, 16384)


def run_context_extension(
    quick: bool = False,
    seeds: int = 3,
    results_dir: str | Path = "results/context-extension",
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
) -> list[dict]:
    """Validation loss of the rove experiment's models past their context, per extension method.

    One JSON per run in `results_dir`; finished runs are skipped. The models' checkpoints are
    read from (or trained into) `runs_dir/rove/RUN`. Derived in notebooks/09_long_context.md.
    """
    from ropelib.data import prepare_dataset
    from ropelib.train import (
        _atomic_write,
        evaluate_lengths,
        experiment_runs,
        git_commit,
        hardware,
        load_model,
        train,
    )

    results_dir, runs_dir = Path(results_dir), Path(runs_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for run, label, config in experiment_runs("rove", quick, seeds):
        path = results_dir / f"{run}.json"
        if path.exists():
            print(f"context-extension/{run}: done already ({path})")
            records.append(json.loads(path.read_text()))
            continue
        print(f"context-extension/{run}: evaluating")
        start = time.perf_counter()
        config = dataclasses.replace(config, out_dir=str(runs_dir / "rove" / run), resume=True)
        if data_dir is not None:
            config = dataclasses.replace(config, data_dir=str(data_dir))
        train(config)  # returns at once when the rove experiment has trained this run already
        model, config = load_model(config.out_dir)
        data = prepare_dataset(
            config.corpus, config.tokenizer, config.vocab_size, config.data_dir,
            config.val_fraction,
        )  # fmt: skip
        batches = 2 if quick else 20
        losses: dict[str, dict[str, float]] = {
            "trained": evaluate_lengths(model, data.val, config.block_size, (1,), 32, batches)
        }
        for method in EXTENSIONS:
            for factor in FACTORS:
                extend_context(model, method, factor)
                losses.setdefault(method, {}).update(
                    evaluate_lengths(model, data.val, config.block_size, (factor,), 32, batches)
                )
        extend_context(model, "none")
        samples = 2000 if quick else 20000
        inversion = {
            str(length): model_inversion_probabilities(model, data.val, length, samples)
            for length in INVERSION_LENGTHS
        }
        record = {
            "experiment": "context-extension",
            "run": run,
            "label": label,
            "seed": config.seed,
            "quick": quick,
            "config": dataclasses.asdict(config),
            "git": git_commit(),
            "hardware": hardware(),
            "eval_tokens_per_length": batches * 32 * config.block_size,
            "loss": losses,
            "inversion": inversion,
            "inversion_samples": samples,
            "wall_time_s": time.perf_counter() - start,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())
        records.append(record)
    return records


def context_extension_summary(results_dir: str | Path) -> dict[str, dict[str, dict]]:
    """{label: {method: {length: (mean, std)}}} over seeds of the stored runs."""
    records = [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for record in records:
        for method, losses in record["loss"].items():
            for length, value in losses.items():
                entry = values.setdefault(record["label"], {}).setdefault(method, {})
                entry.setdefault(length, []).append(value)
    summary: dict[str, dict[str, dict]] = {}
    for label, methods in values.items():
        for method, lengths in methods.items():
            for length, xs in lengths.items():
                mean = sum(xs) / len(xs)
                std = math.sqrt(sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1))
                summary.setdefault(label, {}).setdefault(method, {})[length] = (mean, std, len(xs))
    return summary


def context_extension_table(results_dir: str | Path) -> str:
    """Markdown table: validation loss at 1x and, per method, at 2x, 4x, 8x (mean ± std)."""
    summary = context_extension_summary(results_dir)
    if not summary:
        return f"no results in {results_dir}"
    lengths = [f"{f}x" for f in FACTORS]
    lines = [
        "| scheme | method | 1x | " + " | ".join(lengths) + " | seeds |",
        "|---|---|---|" + "---|" * len(lengths) + "---|",
    ]
    for label, methods in summary.items():
        trained = methods["trained"]["1x"]
        for method in EXTENSIONS:
            cells = [f"{methods[method][n][0]:.3f} ± {methods[method][n][1]:.3f}" for n in lengths]
            first = f"{trained[0]:.3f} ± {trained[1]:.3f}" if method == "none" else ""
            lines.append(
                f"| {label} | {method} | {first} | " + " | ".join(cells) + f" | {trained[2]} |"
            )
    return "\n".join(lines)


register_custom_experiment(
    "context-extension", run_context_extension, context_extension_table, seeds=3
)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Does
#    RoPE still order positions and tokens in long contexts?
def _scores(q: Tensor, k: Tensor, distances: Tensor, frequencies: Tensor) -> Tensor:
    """qᵀ R(d) k for rows of q, k `[n, D]` and distances `[n]`, in float64 (complex form)."""
    qc = torch.view_as_complex(q.unflatten(-1, (-1, 2)))
    kc = torch.view_as_complex(k.unflatten(-1, (-1, 2)))
    angles = rope_angles(distances, frequencies)
    return (qc.conj() * kc * torch.polar(torch.ones_like(angles), angles)).real.sum(-1)


def inversion_probabilities(
    context_length: int,
    base: float = 10000.0,
    head_dim: int = 64,
    samples: int = 20000,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Monte Carlo probabilities of position and token inversion within `context_length`.

    Derived in notebooks/09_long_context.md.
    """
    if (
        isinstance(context_length, bool)
        or not isinstance(context_length, int)
        or context_length < 2
    ):
        raise ValueError(f"context_length must be an integer >= 2, got {context_length!r}")
    frequencies = rope_frequencies(head_dim, base)
    g = generator or torch.Generator().manual_seed(0)
    q = torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    d = torch.randint(0, context_length, (samples, 2), generator=g)
    near, far = d.min(-1).values, d.max(-1).values
    distinct = near < far
    position = (_scores(q, q, far, frequencies) > _scores(q, q, near, frequencies))[distinct]
    matching = q + noise * torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    other = torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    zero = torch.zeros(samples, dtype=torch.long)
    at_zero = _scores(q, matching, zero, frequencies) > _scores(q, other, zero, frequencies)
    at_d = _scores(q, matching, d[:, 0], frequencies) > _scores(q, other, d[:, 0], frequencies)
    return {
        "position inversion": position.double().mean().item(),
        "token inversion": (at_zero != at_d).double().mean().item(),
    }


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / The same
#    probabilities in trained models
@torch.no_grad()
def model_inversion_probabilities(
    model: nn.Module,
    tokens,
    context_length: int,
    samples: int = 20000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Position and token inversion of the first attention layer of a trained RoPE-family model.

    Tokens are drawn from `tokens`; probabilities are averaged over heads. Derived in
    notebooks/09_long_context.md.
    """
    if (
        isinstance(context_length, bool)
        or not isinstance(context_length, int)
        or context_length < 2
    ):
        raise ValueError(f"context_length must be an integer >= 2, got {context_length!r}")
    block = model.transformer.h[0]
    scheme = block.attn.pe
    if not isinstance(scheme, RoPE):
        raise ValueError(f"needs a RoPE-family scheme, got pe={model.config.pe!r}")
    g = generator or torch.Generator().manual_seed(0)
    if not isinstance(tokens, Tensor):  # a memmap of ids: copy it, torch needs it writable
        tokens = torch.from_numpy(np.array(tokens, dtype=np.int64))
    picks = tokens[torch.randint(len(tokens), (samples, 3), generator=g)]  # a, b, c
    was_training = model.training
    model.eval()
    x = block.ln_1(model.transformer.wte(picks))  # [n, 3, C]: no position enters layer 0
    q, k, _ = block.attn.qkv(x)
    H = block.attn.n_head
    q = q.unflatten(-1, (H, -1)).permute(1, 2, 0, 3)  # [3, H, n, D]: token slot, head, sample
    k = k.unflatten(-1, (H, -1)).permute(1, 2, 0, 3)
    model.train(was_training)
    zero = torch.zeros(samples, dtype=torch.long)

    def score(key: Tensor, distance: Tensor) -> Tensor:  # query a at `distance`, key at 0: [H, n]
        query, _ = scheme.rotate(q[0][None], q[0][None], distance, None, None)
        _, key = scheme.rotate(key[None], key[None], zero, None, None)
        return (query * key).sum(-1)[0].double()

    d = torch.randint(0, context_length, (samples, 2), generator=g)
    near, far = d.min(-1).values, d.max(-1).values
    distinct = near < far
    position = (score(k[0], far) > score(k[0], near))[:, distinct]
    at_zero = score(k[1], zero) > score(k[2], zero)
    at_d = score(k[1], d[:, 0]) > score(k[2], d[:, 0])
    return {
        "position inversion": position.double().mean().item(),
        "token inversion": (at_zero != at_d).double().mean().item(),
    }


__all__ = [
    "context_extension_summary",
    "context_extension_table",
    "extend_context",
    "EXTENSIONS",
    "FACTORS",
    "INVERSION_LENGTHS",
    "inversion_probabilities",
    "model_inversion_probabilities",
    "run_context_extension",
]
