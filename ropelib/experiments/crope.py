# generated from notebooks/05_crope.md by tools/export.py, do not edit

# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / Experiment:
#    does the halved projection cost accuracy?
"""The crope experiment: RoPE vs CRoPE vs learned absolute positions on two corpora."""

from __future__ import annotations

from ropelib.experiments.runner import register_experiment
from ropelib.train.config import PRESETS, TrainConfig

CROPE_EXPERIMENT = dict(
    n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=16, max_iters=400,
    lr=1e-3, schedule="step", gamma=0.8, step_size=40, warmup_iters=0,
    weight_decay=0.01, vocab_size=4096, eval_interval=50, eval_iters=10,
    checkpoint_interval=100,
)  # fmt: skip


@register_experiment("crope", seeds=3)
def crope_experiment(quick: bool) -> dict[str, TrainConfig]:
    """RoPE vs CRoPE vs learned absolute positions at the CRoPE paper's model shape."""
    quick_base = dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3)
    base = quick_base if quick else CROPE_EXPERIMENT
    return {
        f"{pe} {corpus}": TrainConfig(**{**base, "pe": pe, "corpus": corpus})
        for corpus in ("shakespeare", "bible")
        for pe in ("rope", "crope", "learned")
    }


__all__ = [
    "CROPE_EXPERIMENT",
    "crope_experiment",
]
