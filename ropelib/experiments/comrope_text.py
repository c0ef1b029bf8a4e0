# generated from notebooks/06_rope_equation.md by tools/export.py, do not edit

# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / Experiment: ComRoPE on text
"""The ComRoPE text experiment: the chapter *The RoPE Equation and ComRoPE*."""

from __future__ import annotations

from pathlib import Path

from ropelib.experiments.records import load_results
from ropelib.experiments.runner import register_experiment
from ropelib.train.config import PRESETS, TrainConfig

ANGLE_MATRIX_SCHEMES = ("comrope-ap", "comrope-ld", "rope-mixed", "liere")


@register_experiment("comrope-text", seeds=3)
def comrope_text_experiment(quick: bool) -> dict[str, TrainConfig]:
    """ComRoPE-AP/LD against RoPE on text. Chapter *The RoPE Equation and ComRoPE*."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(max_iters=6, eval_interval=3)
    configs = {"rope": TrainConfig(**{**base, "pe": "rope"})}
    for pe in ("comrope-ap", "comrope-ld"):
        for b in (2, 4, 8):
            options = {"pe": pe, "pe_options": {"block_dim": b}}
            configs[f"{pe} b={b}"] = TrainConfig(**{**base, **options})
    return configs


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / Experiment: ComRoPE on text
def upgrade_config(config: dict) -> dict:
    """Old `block_size` read as `block_dim`. Chapter *The RoPE Equation and ComRoPE*."""
    options = dict(config.get("pe_options") or {})
    if config.get("pe") in ANGLE_MATRIX_SCHEMES and "block_size" in options:
        options["block_dim"] = options.pop("block_size")
        return {**config, "pe_options": options}
    return config


def load_comrope_text_results(results_dir: str | Path = "results") -> list[dict]:
    """comrope-text records, upgraded. Chapter *The RoPE Equation and ComRoPE*."""
    records = load_results("comrope-text", results_dir)
    return [
        {**record, "config": upgrade_config(record["config"])} for record in records
    ]


__all__ = [
    "ANGLE_MATRIX_SCHEMES",
    "comrope_text_experiment",
    "load_comrope_text_results",
    "upgrade_config",
]
