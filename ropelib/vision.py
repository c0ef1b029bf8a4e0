# generated from notebooks/07_comrope_vision.md by tools/export.py, do not edit

# %% notebooks/07_comrope_vision.md: ComRoPE on images / The data and the resolutions
"""A ViT on 8x8 digits with 2-D position methods: the chapter *ComRoPE on images*."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ropelib.comrope import AxialRoPE, ComRoPEAP, ComRoPELD, LieRE, RoPEMixed

METHODS = ("ape", "rope-axial", "rope-mixed", "liere", "comrope-ap", "comrope-ld")
ROTARY_METHODS = METHODS[1:]
PERTURBATIONS = ("none", "jitter")


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The data and the resolutions
def load_digits_split(
    test_fraction: float = 0.2, split_seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 8x8 digits split per class: the chapter *ComRoPE on images*."""
    if not isinstance(test_fraction, float) or not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"test_fraction must be a float in (0, 1), got {test_fraction!r}"
        )
    try:
        from sklearn.datasets import load_digits  # ships the images: no download
    except ImportError:
        raise ImportError(
            "the digits need scikit-learn: pip install scikit-learn"
        ) from None
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)  # images: [N, 1, 8, 8]
    generator = torch.Generator().manual_seed(split_seed)
    train_index, test_index = [], []
    for digit in range(10):  # stratified: the same fraction of every class goes to test
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(test_fraction * len(members))
        test_index.append(members[:n_test])
        train_index.append(members[n_test:])
    train = torch.cat(train_index).sort().values
    test = torch.cat(test_index).sort().values
    return images[train], labels[train], images[test], labels[test]


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The data and the resolutions
def resize_images(images: Tensor, size: int) -> Tensor:
    """Bilinear resize to size x size pixels: the chapter *ComRoPE on images*."""
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = getattr(images, "shape", images)
        raise ValueError(f"images must be a [B, C, H, W] tensor, got {shape!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False
    )


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Patch positions
def patch_positions(grid: int) -> Tensor:
    """Patch centres `[grid², 2]` in [0, 1]²: the chapter *ComRoPE on images*."""
    if isinstance(grid, bool) or not isinstance(grid, int) or grid <= 0:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    rows, cols = torch.meshgrid(centres, centres, indexing="ij")
    # row-major, as the patches are flattened
    return torch.stack((rows.flatten(), cols.flatten()), dim=-1)


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Six position methods behind one
#    interface
class AbsolutePositionEmbedding(nn.Module):
    """A learned 2-D table read bilinearly: the chapter *ComRoPE on images*."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("grid", grid)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.table = nn.Parameter(0.02 * torch.randn(1, dim, grid, grid))

    def no_weight_decay(self) -> set[str]:
        """The table is a position parameter: no decay."""
        return {"table"}

    def forward(self, positions: Tensor) -> Tensor:
        """Embeddings `[T, dim]` at `positions [T, 2]` (row, column) in [0, 1]²."""
        if positions.dim() != 2 or positions.shape[-1] != 2:
            raise ValueError(f"positions must be [T, 2], got {tuple(positions.shape)}")
        # grid_sample wants (x, y) = (column, row) in [-1, 1]; with align_corners=False
        # a cell centre (i + 0.5)/n lands on table entry i, as `interpolate` samples
        grid = (positions.flip(-1) * 2 - 1).to(self.table.dtype)[None, None]
        sampled = F.grid_sample(
            self.table,
            grid,
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )  # [1, dim, 1, T]
        return sampled[0, :, 0].transpose(0, 1)


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Six position methods behind one
#    interface
ROTARY_CLASSES = {
    "rope-axial": AxialRoPE,
    "rope-mixed": RoPEMixed,
    "liere": LieRE,
    "comrope-ap": ComRoPEAP,
    "comrope-ld": ComRoPELD,
}


def position_method(
    method: str, head_dim: int, *, n_heads: int, block_dim: int = 8, base: float = 100.0
) -> nn.Module:
    """A rotary method for 2-D positions by name: the chapter *ComRoPE on images*."""
    if method not in ROTARY_CLASSES:
        accepted = ", ".join(ROTARY_CLASSES)
        raise ValueError(f"method must be one of {accepted}, got {method!r}")
    sizes = dict(n_axes=2, base=base)
    if method != "rope-axial":  # axial RoPE learns nothing: one rotation for all heads
        sizes["n_heads"] = n_heads
    if method in ("liere", "comrope-ap", "comrope-ld"):
        sizes["block_dim"] = block_dim
    return ROTARY_CLASSES[method](head_dim, **sizes)


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The ViT
@dataclass
class VisionConfig:
    """Settings of one digits run: the chapter *ComRoPE on images*."""

    method: str = "comrope-ap"
    perturbation: str = "none"  # "jitter": uniform noise of up to half a patch
    image_size: int = 8  # training resolution (pixels)
    patch_size: int = 2
    dim: int = 64
    depth: int = 3
    heads: int = 2
    mlp_ratio: int = 2
    block_dim: int = 8  # rotation block of liere and comrope (the RoPEs use 2)
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
        self.eval_sizes = tuple(self.eval_sizes)
        _check_config(self)

    @property
    def train_grid(self) -> int:
        return self.image_size // self.patch_size


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The ViT
_INTEGER_FIELDS = ("image_size", "patch_size", "dim", "depth", "heads", "mlp_ratio")


def _check_config(config: VisionConfig) -> None:
    if config.method not in METHODS:
        raise ValueError(
            f"method must be one of {', '.join(METHODS)}, got {config.method!r}"
        )
    if config.perturbation not in PERTURBATIONS:
        accepted = ", ".join(PERTURBATIONS)
        raise ValueError(
            f"perturbation must be one of {accepted}, got {config.perturbation!r}"
        )
    for name in (*_INTEGER_FIELDS, "epochs", "batch_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if config.image_size % config.patch_size:
        size, patch = config.image_size, config.patch_size
        raise ValueError(f"patch_size must divide image_size = {size}, got {patch}")
    if config.dim % config.heads:
        raise ValueError(f"heads must divide dim = {config.dim}, got {config.heads}")
    if not config.eval_sizes or any(
        isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % config.patch_size
        for s in config.eval_sizes
    ):
        raise ValueError(
            f"eval_sizes must be positive multiples of patch_size = "
            f"{config.patch_size}, got {config.eval_sizes!r}"
        )
    if not (isinstance(config.lr, (int, float)) and config.lr > 0):
        raise ValueError(f"lr must be a positive number, got {config.lr!r}")
    if config.method != "ape":  # an impossible block size fails here, not in a layer
        _attention_rotation(config)


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The ViT
def _attention_rotation(config: VisionConfig) -> nn.Module:
    head_dim, sizes = config.dim // config.heads, dict(n_heads=config.heads)
    sizes.update(block_dim=config.block_dim, base=config.base)
    return position_method(config.method, head_dim, **sizes)


class _Attention(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = config.heads, config.dim // config.heads
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)
        self.rotary = None if config.method == "ape" else _attention_rotation(config)
        self.position_scale = float(config.train_grid)  # a training patch: 1 unit

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        if self.rotary is not None:
            scaled = positions * self.position_scale
            q, k = self.rotary.rotate_queries_and_keys(q, k, scaled)
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


# %% notebooks/07_comrope_vision.md: ComRoPE on images / The ViT
class VisionTransformer(nn.Module):
    """A pre-LN ViT with a 2-D position method: the chapter *ComRoPE on images*."""

    def __init__(self, config: VisionConfig, n_classes: int = 10) -> None:
        super().__init__()
        self.config = config
        p = config.patch_size
        self.patch_embed = nn.Conv2d(1, config.dim, p, stride=p)
        self.absolute = None
        if config.method == "ape":
            self.absolute = AbsolutePositionEmbedding(config.dim, config.train_grid)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, n_classes)

    def forward(self, images: Tensor, positions: Tensor | None = None) -> Tensor:
        """Logits `[B, classes]` of `images [B, 1, S, S]`, S a multiple of the patch."""
        p, shape = self.config.patch_size, tuple(images.shape)
        if images.dim() != 4 or shape[1] != 1 or shape[-1] != shape[-2]:
            raise ValueError(f"images must be [B, 1, S, S], got {shape}")
        if shape[-1] % p:
            raise ValueError(f"images: size {shape[-1]} is not a multiple of patch {p}")
        x = self.patch_embed(images)  # [B, C, n, n]
        n = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)  # [B, T = n², C], row-major
        if positions is None:
            positions = patch_positions(n).to(x.device)
        if positions.shape != (n * n, 2):
            raise ValueError(
                f"positions must be [{n * n}, 2], got {tuple(positions.shape)}"
            )
        if self.absolute is not None:
            x = x + self.absolute(positions)
        for block in self.blocks:
            x = block(x, positions)
        return self.head(self.norm(x).mean(dim=1))


# %% notebooks/07_comrope_vision.md: ComRoPE on images / Training with perturbed positions
def evaluate_accuracy(
    model: VisionTransformer, images: Tensor, labels: Tensor, size: int
) -> float:
    """Accuracy at size x size pixels: the chapter *ComRoPE on images*."""
    if size % model.config.patch_size:
        patch = model.config.patch_size
        raise ValueError(f"size must be a multiple of patch_size = {patch}, got {size}")
    model.eval()
    with torch.no_grad():
        chunks = images.split(512)
        predictions = torch.cat(
            [model(resize_images(c, size)).argmax(-1) for c in chunks]
        )
    return float((predictions == labels).float().mean())


__all__ = [
    "AbsolutePositionEmbedding",
    "evaluate_accuracy",
    "load_digits_split",
    "METHODS",
    "patch_positions",
    "PERTURBATIONS",
    "position_method",
    "resize_images",
    "ROTARY_CLASSES",
    "ROTARY_METHODS",
    "VisionConfig",
    "VisionTransformer",
]
