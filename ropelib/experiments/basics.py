# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The first experiment: where is this token?
"""The first experiment: learned absolute positions, RoPE and no positions at all."""

from ropelib.experiments.runner import register_experiment
from ropelib.train.config import PRESETS, TrainConfig


@register_experiment("pe-basics", seeds=3)
def pe_basics(quick: bool) -> dict[str, TrainConfig]:
    """learned vs rope vs none on Shakespeare at the cpu-small scale."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(max_iters=10, eval_interval=5, checkpoint_interval=5)
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in ("learned", "rope", "none")}


# %% notebooks/03_training.md: Training / The same comparison under the protocol
@register_experiment("pe-basics-128", seeds=3)
def pe_basics_128(quick: bool) -> dict[str, TrainConfig]:
    """pe-basics under the evaluation protocol, at context 128, trained until it flattens."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(max_iters=10, eval_interval=5, checkpoint_interval=5)
    else:
        base.update(block_size=128, max_iters=3000, eval_interval=250)
        base.update(checkpoint_interval=250)
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in ("learned", "rope", "none")}


__all__ = [
    "pe_basics",
    "pe_basics_128",
]
