# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / RoVE in
#    training
"""The rove experiment: RoVE against RoPE and RoVE on xPos against xPos.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from ropelib.experiments.runner import register_experiment
from ropelib.train.config import PRESETS, TrainConfig

LABELS = ("rope", "rove", "xpos", "rove-xpos")


@register_experiment("rove", seeds=3)
def rove_experiment(quick: bool) -> dict[str, TrainConfig]:
    """RoVE against RoPE and RoVE on xPos against xPos, Shakespeare, cpu-small."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(max_iters=6, eval_interval=3)
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in LABELS}


__all__ = [
    "LABELS",
    "rove_experiment",
]
