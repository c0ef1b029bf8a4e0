# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Experiment: does it converge
#    faster?
"""The hdd experiments. Chapter *HDD-RoPE: data-dependent rotations*."""

from __future__ import annotations

from ropelib.experiments.runner import register_experiment
from ropelib.train.config import PRESETS, TrainConfig


def _hdd_configs(base: dict) -> dict[str, TrainConfig]:
    return {
        "rope": TrainConfig(**{**base, "pe": "rope"}),
        "xpos": TrainConfig(**{**base, "pe": "xpos"}),
        "hdd b=2": TrainConfig(**{**base, "pe": "hdd", "pe_options": {"block_dim": 2}}),
        "hdd b=4": TrainConfig(**{**base, "pe": "hdd", "pe_options": {"block_dim": 4}}),
    }


_QUICK_RUN = dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3)


@register_experiment("hdd", seeds=3)
def hdd_experiment(quick: bool) -> dict[str, TrainConfig]:
    """HDD-RoPE (b = 2, 4) against xPos and RoPE on Shakespeare, cpu-small scale."""
    # a fine curve (every 25 steps): the speed of convergence is the claim
    return _hdd_configs(
        _QUICK_RUN if quick else dict(PRESETS["cpu-small"], eval_interval=25)
    )


@register_experiment("hdd-tinystories", seeds=3)
def hdd_tinystories_experiment(quick: bool) -> dict[str, TrainConfig]:
    """The same on TinyStories at the TinyStories-33M-like shape (network and GPU)."""
    return _hdd_configs(_QUICK_RUN if quick else dict(PRESETS["tinystories-33m"]))


def tokens_to_reach(record: dict, target: float) -> int | None:
    """Tokens to reach a val loss. Chapter *HDD-RoPE: data-dependent rotations*."""
    # the 1x validation loss first <= target; None: never
    config = record["config"]
    tokens_per_step = config["batch_size"] * config["grad_accum"] * config["block_size"]
    for entry in record["history"]:
        if entry.get("kind") == "eval" and entry["val_loss"]["1x"] <= target:
            return entry["iter"] * tokens_per_step
    return None


__all__ = [
    "hdd_experiment",
    "hdd_tinystories_experiment",
    "tokens_to_reach",
]
