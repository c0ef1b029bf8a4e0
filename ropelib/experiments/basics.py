# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The first experiment: where is this token?
"""The first experiment: learned absolute positions, RoPE and no positions at all."""

import dataclasses
import statistics
from pathlib import Path

from ropelib.experiments.records import load_results
from ropelib.experiments.runner import register_experiment
from ropelib.experiments.stats import paired_difference
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
    return _like_rope_128(quick, SCHEMES_128)


BLOCKS_128 = {
    "comrope-ap b=2": {"block_dim": 2}, "comrope-ap b=8": {"block_dim": 8},
    "comrope-ld b=4": {"block_dim": 4}, "hdd b=4": {"block_dim": 4},
}  # fmt: skip


@register_experiment("schemes-128-blocks", seeds=3)
def schemes_128_blocks(quick: bool) -> dict[str, TrainConfig]:
    """The other block sizes of ComRoPE and HDD-RoPE at schemes-128's budget."""
    return _like_rope_128(quick, BLOCKS_128)


def _like_rope_128(quick: bool, schemes: dict[str, dict]) -> dict[str, TrainConfig]:
    rope = pe_basics_128(quick)["rope"]
    return {
        label: dataclasses.replace(rope, pe=label.split(" ")[0], pe_options=options)
        for label, options in schemes.items()
    }


@register_experiment("schemes-128-bible", seeds=3)
def schemes_128_bible(quick: bool) -> dict[str, TrainConfig]:
    """RoPE and CRoPE at pe-basics-128's budget on the King James Bible, paired by seed."""
    rope = dataclasses.replace(pe_basics_128(quick)["rope"], corpus="bible")
    return {"rope": rope, "crope": dataclasses.replace(rope, pe="crope")}


# %% notebooks/03_training.md: Training / The same comparison under the protocol
# where the RoPE runs that each experiment's runs are paired with are stored
ROPE_OF = {
    "schemes-128": "pe-basics-128",
    "schemes-128-blocks": "pe-basics-128",
    "schemes-128-bible": "schemes-128-bible",
}


def against_rope(
    label: str, results_dir: str | Path = "results", experiment: str | None = None
) -> dict | None:
    """A label of an experiment of ROPE_OF against the RoPE runs it is paired with, seed by
    seed, under the protocol. `experiment` defaults to the one that registers the label.

    None until three seeds of the label and of RoPE are stored. Defined in the chapter
    *Training*.
    """
    if experiment is None:
        experiment = "schemes-128-blocks" if label in BLOCKS_128 else "schemes-128"
    if experiment not in ROPE_OF:
        raise ValueError(
            f"experiment must be one of {', '.join(ROPE_OF)} (paired with RoPE runs), "
            f"got {experiment!r}"
        )
    mine = [r for r in load_results(experiment, results_dir) if r["label"] == label]
    rope = [
        r
        for r in load_results(ROPE_OF[experiment], results_dir)
        if r["label"] == "rope"
    ]
    if len(mine) < 3 or len(rope) < 3:
        return None

    def losses(records: list[dict]) -> dict[str, dict[int, float]]:
        lengths = records[0]["final"]["protocol"]
        return {k: {r["seed"]: r["final"]["protocol"][k]["loss"] for r in records}
                for k in lengths}  # fmt: skip

    ours, theirs = losses(mine), losses(rope)
    paired = {k: paired_difference(ours[k], theirs[k]) for k in ours}
    rise = {
        k: paired_difference(
            {s: ours[k][s] - ours["1x"][s] for s in ours[k]},
            {s: theirs[k][s] - theirs["1x"][s] for s in theirs[k]},
        )
        for k in ours
        if k != "1x"
    }
    return dict(
        label=label, experiment=experiment, seeds=sorted(ours["1x"]), losses=ours, rope=theirs,
        paired=paired, rise=rise, parameters=mine[0]["final"]["n_params"],
        rope_parameters=rope[0]["final"]["n_params"],
        tokens=mine[0]["final"]["tokens_seen"],
        targets=mine[0]["final"]["protocol"]["1x"]["targets"],
        wall_time_s=[r["wall_time_s"] for r in mine],
    )  # fmt: skip


# %% notebooks/03_training.md: Training / The same comparison under the protocol
def against_rope_table(comparisons: list[dict]) -> str:
    """against_rope's comparisons in markdown. Defined in the chapter *Training*."""
    if not comparisons or any(c is None for c in comparisons):
        raise ValueError(
            "against_rope_table needs stored comparisons (against_rope gave None)"
        )
    lengths = list(comparisons[0]["paired"])
    heads = " | ".join(f"Δ {k}, 95%" for k in lengths)
    lines = [f"| scheme | parameters | RoPE's | loss 1x | {heads} |",
             "|---|---:|---:|---:|" + "---:|" * len(lengths)]  # fmt: skip
    for c in comparisons:
        mean = statistics.fmean(c["losses"]["1x"].values())
        cells = " | ".join(
            f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
            for d in c["paired"].values()
        )
        lines.append(f"| {c['label']} | {c['parameters']:,} | {c['rope_parameters']:,} "
                     f"| {mean:.3f} | {cells} |")  # fmt: skip
    return "\n".join(lines)


__all__ = [
    "against_rope",
    "against_rope_table",
    "BLOCKS_128",
    "pe_basics",
    "pe_basics_128",
    "ROPE_OF",
    "SCHEMES_128",
    "schemes_128",
    "schemes_128_bible",
    "schemes_128_blocks",
]
