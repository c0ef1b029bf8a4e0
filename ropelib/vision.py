# generated from notebooks/07_comrope_vision.md by tools/export.py, do not edit

# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / The
#    data and the resolutions
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ropelib.comrope import ComRoPEAP, ComRoPELD, LieRE, RoPEMixed
from ropelib.rope import rope_frequencies
from ropelib.train import register_custom_experiment

METHODS = ("ape", "rope-axial", "rope-mixed", "liere", "comrope-ap", "comrope-ld")
PERTURBATIONS = ("none", "jitter")


def load_digits_split(
    test_fraction: float = 0.2, split_seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8x8 digits in [0, 1] as `[N, 1, 8, 8]`, split train/test per class.

    Defined in notebooks/07_comrope_vision.md.
    """
    if not isinstance(test_fraction, float) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits  # ships the images: no download

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # [N, 1, 8, 8]
    labels = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(split_seed)
    train_index, test_index = [], []
    for digit in range(10):  # stratified: the same fraction of every class goes to test
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(test_fraction * len(members))
        test_index.append(members[:n_test])
        train_index.append(members[n_test:])
    train_index, test_index = (
        torch.cat(train_index).sort().values,
        torch.cat(test_index).sort().values,
    )
    return images[train_index], labels[train_index], images[test_index], labels[test_index]


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / The
#    data and the resolutions
def resize_images(images: Tensor, size: int) -> Tensor:
    """Bilinear resize of `images [B, C, H, W]` to `[B, C, size, size]`.

    Defined in notebooks/07_comrope_vision.md.
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a [B, C, H, W] tensor, got {getattr(images, 'shape', images)!r}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT /
#    Patch positions
def patch_positions(grid: int) -> Tensor:
    """Centres ((row + 0.5)/grid, (col + 0.5)/grid) of a grid x grid patch grid, `[grid², 2]`.

    Defined in notebooks/07_comrope_vision.md.
    """
    if isinstance(grid, bool) or not isinstance(grid, int) or grid <= 0:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    rows, cols = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack((rows.flatten(), cols.flatten()), dim=-1)  # row-major, as patches flatten


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / Six
#    position methods behind one interface
ROTARY_METHODS = METHODS[1:]


def _axial_spectrum(head_dim: int, n_heads: int, block_size: int, base: float) -> Tensor:
    """Frequencies `[n_heads * head_dim / 2]` giving the blocks of each of 2 axes, in order,
    the spectrum of a RoPE of dimension head_dim / 2 (block j belongs to axis j mod 2)."""
    axis_spectrum = rope_frequencies(head_dim // 2, base)  # [head_dim / 4]
    half = block_size // 2
    blocks = [
        axis_spectrum[(j // 2) * half : (j // 2 + 1) * half] for j in range(head_dim // block_size)
    ]
    return torch.cat(blocks).float().repeat(n_heads)


def rotary_method(
    method: str, head_dim: int, n_heads: int, block_size: int = 8, base: float = 100.0
) -> nn.Module:
    """A 2-D rotary position method by name, started as axial RoPE; see ROTARY_METHODS.

    `block_size` applies to liere, comrope-ap and comrope-ld (the RoPEs use 2).

    Defined in notebooks/07_comrope_vision.md.
    """
    if method not in ROTARY_METHODS:
        raise ValueError(f"method must be one of {', '.join(ROTARY_METHODS)}, got {method!r}")
    for name, value in (("head_dim", head_dim), ("n_heads", n_heads), ("block_size", block_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    b = 2 if method in ("rope-axial", "rope-mixed") else block_size
    if b % 2 or head_dim % (2 * b):
        raise ValueError(
            f"block_size must be even and 2 * block_size must divide head_dim = {head_dim} "
            f"(one block per axis at least), got {b}"
        )
    spectrum = _axial_spectrum(head_dim, n_heads, b, base)
    if method == "liere":
        module = LieRE(head_dim, n_heads, 2, b, base)
        axial = ComRoPEAP(head_dim, n_heads, 2, b, base)
        with torch.no_grad():
            axial.frequencies.copy_(spectrum)
            generators = 0.5 * axial.angle_matrices()  # skew(P) = P - Pᵀ doubles a skew P
            module.generators.copy_(generators + 0.01 * torch.randn_like(generators))
        return module
    cls = {"rope-axial": ComRoPEAP, "rope-mixed": RoPEMixed}.get(method)
    cls = cls or {"comrope-ap": ComRoPEAP, "comrope-ld": ComRoPELD}[method]
    module = cls(head_dim, n_heads, 2, b, base)
    with torch.no_grad():
        module.frequencies.copy_(spectrum)
    if method == "rope-axial":
        module.requires_grad_(False)  # fixed generators: standard axial RoPE
    return module


class AbsolutePositionEmbedding(nn.Module):
    """A learned `[dim, grid, grid]` table read bilinearly at positions in [0, 1]².

    Defined in notebooks/07_comrope_vision.md.
    """

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("grid", grid)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.table = nn.Parameter(0.02 * torch.randn(1, dim, grid, grid))

    def forward(self, positions: Tensor) -> Tensor:
        """Embeddings `[T, dim]` at `positions [T, 2]` (row, column)."""
        if positions.dim() != 2 or positions.shape[-1] != 2:
            raise ValueError(f"positions must be [T, 2], got {tuple(positions.shape)}")
        # grid_sample wants (x, y) = (column, row) in [-1, 1]; with align_corners=False a cell
        # centre (i + 0.5)/n lands on the table entry i, exactly as `interpolate` samples
        grid = (positions.flip(-1) * 2 - 1).to(self.table.dtype)[None, None]  # [1, 1, T, 2]
        sampled = F.grid_sample(
            self.table, grid, mode="bilinear", padding_mode="border", align_corners=False
        )  # [1, dim, 1, T]
        return sampled[0, :, 0].transpose(0, 1)


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / The
#    ViT
@dataclass
class VisionConfig:
    """Model, perturbation and training settings of one image run.

    Defined in notebooks/07_comrope_vision.md.
    """

    method: str = "comrope-ap"
    perturbation: str = "none"  # "jitter": uniform noise of up to half a patch on positions
    image_size: int = 8  # training resolution (pixels)
    patch_size: int = 2
    dim: int = 64
    depth: int = 3
    heads: int = 2
    mlp_ratio: int = 2
    block_size: int = 8
    base: float = 100.0
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    eval_sizes: tuple[int, ...] = (6, 8, 12, 16)
    train_subset: int | None = None  # first N training images only (quick runs)
    test_subset: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(
                f"perturbation must be one of {', '.join(PERTURBATIONS)}, got {self.perturbation!r}"
            )
        for name in (
            "image_size",
            "patch_size",
            "dim",
            "depth",
            "heads",
            "mlp_ratio",
            "epochs",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"patch_size must divide image_size = {self.image_size}, got {self.patch_size}"
            )
        if self.dim % self.heads:
            raise ValueError(f"heads must divide dim = {self.dim}, got {self.heads}")
        self.eval_sizes = tuple(self.eval_sizes)
        if not self.eval_sizes or any(
            isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % self.patch_size
            for s in self.eval_sizes
        ):
            raise ValueError(
                f"eval_sizes must be positive multiples of patch_size = {self.patch_size}, "
                f"got {self.eval_sizes!r}"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.method != "ape":  # fail here, not at model construction
            rotary_method(
                self.method, self.dim // self.heads, self.heads, self.block_size, self.base
            )

    @property
    def train_grid(self) -> int:
        return self.image_size // self.patch_size


class _Attention(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = config.heads, config.dim // config.heads
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)
        self.rotary = None
        if config.method != "ape":
            self.rotary = rotary_method(
                config.method, self.head_dim, self.heads, config.block_size, config.base
            )
        self.position_scale = float(config.train_grid)  # unit square -> one unit per patch

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.rotary is not None:  # q, k [B, H, T, D]
            q, k = self.rotary.rotate_pair(q, k, positions * self.position_scale)
        y = F.scaled_dot_product_attention(q, k, v)  # [B, H, T, D]
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class _Block(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(config.dim), nn.LayerNorm(config.dim)
        self.attn = _Attention(config)
        hidden = config.mlp_ratio * config.dim
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, hidden), nn.GELU(), nn.Linear(hidden, config.dim)
        )

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), positions)
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A pre-LN ViT with mean pooling and a pluggable 2-D position method.

    Defined in notebooks/07_comrope_vision.md.
    """

    def __init__(self, config: VisionConfig, n_classes: int = 10) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = nn.Conv2d(1, config.dim, config.patch_size, stride=config.patch_size)
        self.absolute = None
        if config.method == "ape":
            self.absolute = AbsolutePositionEmbedding(config.dim, config.train_grid)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, n_classes)

    def forward(self, images: Tensor, positions: Tensor | None = None) -> Tensor:
        """Class logits `[B, n_classes]` of `images [B, 1, S, S]` at any S divisible by the
        patch size; `positions [T, 2]` in [0, 1]² default to the patch centres."""
        p = self.config.patch_size
        if images.dim() != 4 or images.shape[1] != 1 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be [B, 1, S, S], got {tuple(images.shape)}")
        if images.shape[-1] % p:
            raise ValueError(f"images: size {images.shape[-1]} is not a multiple of patch {p}")
        x = self.patch_embed(images)  # [B, C, n, n]
        n = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)  # [B, T = n², C], row-major
        if positions is None:
            positions = patch_positions(n).to(x.device)
        if positions.shape != (n * n, 2):
            raise ValueError(f"positions must be [{n * n}, 2], got {tuple(positions.shape)}")
        if self.absolute is not None:
            x = x + self.absolute(positions)
        for block in self.blocks:
            x = block(x, positions)
        return self.head(self.norm(x).mean(dim=1))


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT /
#    Training with perturbed positions
def evaluate_accuracy(model: VisionTransformer, images: Tensor, labels: Tensor, size: int) -> float:
    """Accuracy of `model` on `images` resized to `size x size` pixels.

    Defined in notebooks/07_comrope_vision.md.
    """
    if size % model.config.patch_size:
        raise ValueError(
            f"size must be a multiple of patch_size = {model.config.patch_size}, got {size}"
        )
    model.eval()
    with torch.no_grad():
        predictions = torch.cat(
            [model(resize_images(chunk, size)).argmax(-1) for chunk in images.split(512)]
        )
    return float((predictions == labels).float().mean())


def _optimizer(model: nn.Module, config: VisionConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen axial RoPE
            continue
        # position parameters are never decayed: decay would pull LieRE's generators or the
        # APE table to zero, i.e. towards no position information, and favour no method
        is_position = ".rotary." in name or name.startswith("absolute.")
        (decay if p.dim() >= 2 and not is_position else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the body with `torch.set_num_threads(threads)` (None: leave it), then restore.

    Defined in notebooks/07_comrope_vision.md.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_vision_model(
    config: VisionConfig,
    data: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    threads: int | None = 1,
) -> tuple[VisionTransformer, dict]:
    """Train one ViT on the digits; returns it and `{train_loss, accuracy, wall_time_s}`.

    Defined in notebooks/07_comrope_vision.md.
    """
    if not isinstance(config, VisionConfig):
        raise ValueError(f"config must be a VisionConfig, got {type(config).__name__}")
    with torch_threads(threads):
        return _train(config, data)


def _train(
    config: VisionConfig, data: tuple[Tensor, Tensor, Tensor, Tensor] | None
) -> tuple[VisionTransformer, dict]:
    start = time.perf_counter()
    train_x, train_y, test_x, test_y = data if data is not None else load_digits_split()
    if config.train_subset is not None:
        train_x, train_y = train_x[: config.train_subset], train_y[: config.train_subset]
    if config.test_subset is not None:
        test_x, test_y = test_x[: config.test_subset], test_y[: config.test_subset]
    if train_x.shape[-1] != config.image_size:
        train_x = resize_images(train_x, config.image_size)
    torch.manual_seed(config.seed)
    model = VisionTransformer(config)
    optimizer = _optimizer(model, config)
    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    total, warmup = config.epochs * steps_per_epoch, steps_per_epoch

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(config.seed)
    grid = config.train_grid
    centres = patch_positions(grid)
    history = []
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        losses = []
        for batch in order.split(config.batch_size):
            positions = centres
            if config.perturbation == "jitter":  # up to half a patch in each coordinate
                noise = torch.rand(centres.shape, generator=generator) - 0.5
                positions = centres + noise / grid
            loss = F.cross_entropy(model(train_x[batch], positions), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history.append(sum(losses) / len(losses))
    accuracy = {str(s): evaluate_accuracy(model, test_x, test_y, s) for s in config.eval_sizes}
    return model, {
        "train_loss": history,
        "accuracy": accuracy,
        "wall_time_s": time.perf_counter() - start,
    }


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / The
#    experiment
def _hardware() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent  # the repository holding ropelib
    except NameError:  # defined in a notebook
        here = Path.cwd()
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=here
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def vision_config(method: str, perturbation: str, seed: int, quick: bool = False) -> VisionConfig:
    """The experiment's config of one run; `quick` shrinks it to a fraction of a second.

    Defined in notebooks/07_comrope_vision.md.
    """
    if quick:
        return VisionConfig(
            method=method,
            perturbation=perturbation,
            seed=seed,
            dim=16,
            depth=1,
            heads=2,
            block_size=4,
            epochs=1,
            train_subset=128,
            test_subset=64,
        )
    return VisionConfig(method=method, perturbation=perturbation, seed=seed)


def _write_json(path: Path, record: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(temporary, path)  # atomic: a reader never sees half a file


def run_vision_experiment(
    quick: bool = False,
    results_dir: str | Path | None = "results/comrope-vision",
    seeds: int = 3,
    threads: int | None = 1,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> list[dict]:
    """Train every method x perturbation for `seeds` seeds; one JSON per run, resumable.

    With `quick` and the default `results_dir`, writes to a new temporary directory; `threads`
    torch threads per run (one is fastest for these tiny models on a shared CPU). `runs_dir` and
    `data_dir` are unused: the runs keep no checkpoints and the images ship with scikit-learn.
    Defined in notebooks/07_comrope_vision.md.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if results_dir is None or (quick and str(results_dir) == "results/comrope-vision"):
        results_dir = tempfile.mkdtemp(prefix="comrope-vision-quick-")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    data = load_digits_split()
    records = []
    for method in METHODS:
        for perturbation in PERTURBATIONS:
            for seed in range(seeds):
                path = results_dir / f"{method}__{perturbation}__seed{seed}.json"
                if path.exists():  # resume: this run is done
                    records.append(json.loads(path.read_text(encoding="utf-8")))
                    continue
                config = vision_config(method, perturbation, seed, quick)
                _, run = train_vision_model(config, data, threads=threads)
                record = {
                    "experiment": "comrope-vision",
                    "method": method,
                    "perturbation": perturbation,
                    "seed": seed,
                    "quick": quick,
                    "config": asdict(config),
                    "accuracy": run["accuracy"],
                    "train_loss": run["train_loss"],
                    "wall_time_s": run["wall_time_s"],
                    "hardware": {**_hardware(), "threads": threads or torch.get_num_threads()},
                    "git_commit": _git_commit(),
                }
                _write_json(path, record)
                records.append(json.loads(json.dumps(record)))  # as a resumed run reads it
    return records


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT / The
#    experiment
def load_vision_results(results_dir: str | Path = "results/comrope-vision") -> list[dict]:
    """Every run record (JSON) in `results_dir`, or [] when there is none.

    Defined in notebooks/07_comrope_vision.md.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob("*.json"))]


def _summary(records: list[dict]) -> tuple[list[int], dict[tuple[str, str], dict]]:
    sizes = sorted({int(s) for r in records for s in r["accuracy"]})
    groups: dict[tuple[str, str], dict] = {}
    for r in records:
        group = groups.setdefault((r["method"], r["perturbation"]), {"seeds": 0, "acc": {}})
        group["seeds"] += 1
        for s, a in r["accuracy"].items():
            group["acc"].setdefault(int(s), []).append(100.0 * a)
    order = {name: i for i, name in enumerate(METHODS + PERTURBATIONS)}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 99), k[0], order.get(k[1], 99), k[1]))
    return sizes, {k: groups[k] for k in keys}


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def vision_results_table(results_dir: str | Path = "results/comrope-vision") -> str:
    """Markdown table: accuracy (%) mean ± std over seeds per method, perturbation, resolution.

    Defined in notebooks/07_comrope_vision.md.
    """
    records = load_vision_results(results_dir)
    if not records:
        raise ValueError(f"results_dir {str(results_dir)!r} holds no results")
    sizes, groups = _summary(records)
    lines = [
        "| method | perturbation | seeds | " + " | ".join(f"{s}x{s} px" for s in sizes) + " |",
        "| --- | --- | --- |" + " --- |" * len(sizes),
    ]
    for (method, perturbation), group in groups.items():
        cells = []
        for s in sizes:
            values = group["acc"].get(s)
            cells.append("–" if not values else "{:.1f} ± {:.1f}".format(*_mean_std(values)))
        lines.append(
            f"| {method} | {perturbation} | {group['seeds']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def plot_vision_results(results_dir: str | Path = "results/comrope-vision"):
    """Accuracy against evaluation resolution, one line per method, one panel per perturbation.

    Defined in notebooks/07_comrope_vision.md.
    """
    import matplotlib.pyplot as plt

    records = load_vision_results(results_dir)
    if not records:
        raise ValueError(f"results_dir {str(results_dir)!r} holds no results")
    sizes, groups = _summary(records)
    perturbations = sorted({p for _, p in groups}, key=lambda p: (p != "none", p))
    fig, axes = plt.subplots(
        1, len(perturbations), figsize=(5 * len(perturbations), 3.8), sharey=True, squeeze=False
    )
    train_size = records[0]["config"]["image_size"]
    for ax, perturbation in zip(axes[0], perturbations, strict=True):
        for (method, p), group in groups.items():
            if p != perturbation:
                continue
            xs = [s for s in sizes if s in group["acc"]]
            stats = [_mean_std(group["acc"][s]) for s in xs]
            ax.errorbar(
                xs,
                [m for m, _ in stats],
                yerr=[e for _, e in stats],
                marker="o",
                capsize=3,
                label=method,
            )
        ax.axvline(train_size, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"training positions: {perturbation}")
        ax.set_xlabel("evaluation resolution (pixels per side; training: 8)")
        ax.set_xticks(sizes)
    axes[0][0].set_ylabel("test accuracy (%), mean ± std over seeds")
    axes[0][-1].legend(fontsize=8)
    seeds = max(g["seeds"] for g in groups.values())
    fig.suptitle(f"Digits ViT: accuracy when the resolution changes ({seeds} seeds)")
    fig.tight_layout()
    return fig


# %% notebooks/07_comrope_vision.md: ComRoPE on images: resolution changes on a small ViT /
#    Results
register_custom_experiment("comrope-vision", run_vision_experiment, vision_results_table, seeds=3)


__all__ = [
    "AbsolutePositionEmbedding",
    "evaluate_accuracy",
    "load_digits_split",
    "load_vision_results",
    "METHODS",
    "patch_positions",
    "PERTURBATIONS",
    "plot_vision_results",
    "resize_images",
    "rotary_method",
    "ROTARY_METHODS",
    "run_vision_experiment",
    "torch_threads",
    "train_vision_model",
    "vision_config",
    "vision_results_table",
    "VisionConfig",
    "VisionTransformer",
]
