# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The first experiment: where is this token?
"""The first experiment: learned absolute positions, RoPE and no positions at all."""

import dataclasses

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


# %% notebooks/03_training.md: Training / The same comparison under the protocol
SCHEMES_128 = {
    "crope": {}, "xpos": {}, "rove": {}, "comrope-ap b=4": {"block_dim": 4},
    "hdd b=2": {"block_dim": 2}, "alibi": {}, "t5": {}, "p-rope": {},
}  # fmt: skip


@register_experiment("schemes-128", seeds=3)
def schemes_128(quick: bool) -> dict[str, TrainConfig]:
    """The variants at pe-basics-128's budget, paired with its RoPE runs."""
    rope = pe_basics_128(quick)["rope"]
    return {
        label: dataclasses.replace(rope, pe=label.split(" ")[0], pe_options=options)
        for label, options in SCHEMES_128.items()
    }


__all__ = [
    "pe_basics",
    "pe_basics_128",
    "SCHEMES_128",
    "schemes_128",
]
