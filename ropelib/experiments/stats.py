# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Statistics over seeds
"""Statistics over seeds: mean and standard deviation, paired differences with t-intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation. Defined in the chapter *The experiment runner*."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must hold at least one number, got none")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# %% notebooks/93_experiments.md: The experiment runner / Statistics over seeds
# Student's t at 0.975 for 1..30 degrees of freedom: the 95% two-sided interval.
# fmt: off
_T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)
# fmt: on


def _t_quantile(confidence: float, df: int) -> float:
    try:
        from scipy import stats
    except ModuleNotFoundError:
        return _t_quantile_table(confidence, df)
    return float(stats.t.ppf((1 + confidence) / 2, df))


def _t_quantile_table(confidence: float, df: int) -> float:
    if not math.isclose(confidence, 0.95):
        raise ValueError(f"confidence other than 0.95 needs scipy, got {confidence}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = 1.959964  # the normal quantile, corrected in powers of 1/df (Cornish-Fisher)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


# %% notebooks/93_experiments.md: The experiment runner / Statistics over seeds
def paired_difference(
    a: Sequence[float] | Mapping[int, float],
    b: Sequence[float] | Mapping[int, float],
    confidence: float = 0.95,
) -> dict[str, float]:
    """Paired mean a - b, sem and t-interval. Defined in the chapter *The experiment runner*."""
    if isinstance(a, Mapping) and isinstance(
        b, Mapping
    ):  # {seed: value}, paired by seed
        if set(a) != set(b):
            raise ValueError(
                f"a and b must have the same seeds, got {sorted(a)} and {sorted(b)}"
            )
        a, b = [a[seed] for seed in sorted(a)], [b[seed] for seed in sorted(a)]
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        raise ValueError(
            "a and b must both be sequences or both be {seed: value} mappings"
        )
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(
            f"a and b must hold the same number (>= 2) of seeds, got {len(a)}, {len(b)}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    mean, std = mean_std([x - y for x, y in zip(a, b, strict=True)])
    n = len(a)
    sem = std / math.sqrt(n)
    half = _t_quantile(confidence, n - 1) * sem
    return {"mean": mean, "sem": sem, "low": mean - half, "high": mean + half, "n": n}


# %% notebooks/93_experiments.md: The experiment runner / Statistics over seeds
def difference(
    summary: dict, a: str, b: str, column: str = "val_loss 1x"
) -> tuple[float, float]:
    """Mean of `a` minus mean of `b` in a table summary, and its standard error.

    |difference| < 2 standard errors is what the chapters call "within noise".
    Defined in the chapter *The experiment runner*.
    """
    (mean_a, std_a), (mean_b, std_b) = summary[a][column], summary[b][column]
    n_a, n_b = summary[a]["seeds"], summary[b]["seeds"]
    return mean_a - mean_b, math.sqrt(std_a**2 / n_a + std_b**2 / n_b)


__all__ = [
    "difference",
    "mean_std",
    "paired_difference",
]
