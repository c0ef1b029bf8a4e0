# generated from notebooks/02_gpt.md by tools/export.py, do not edit

# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / Naming a scheme
"""The GPT-2 of the book and the interface through which position schemes enter it."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConfigError(ValueError):
    """A model configuration that cannot be built (one line for the command line).

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """


POSITION_SCHEMES: dict[str, type[PositionScheme]] = {}
_Decorator = Callable[[type["PositionScheme"]], type["PositionScheme"]]


def register_scheme(name: str) -> _Decorator:
    """Register a scheme class under `name`, so that `GPTConfig(pe=name)` builds it.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def decorate(cls: type[PositionScheme]) -> type[PositionScheme]:
        known = POSITION_SCHEMES.get(name)
        if (
            known is not None and known.__qualname__ != cls.__qualname__
        ):  # re-runs: fine
            raise ValueError(f"position scheme {name!r} is registered twice")
        cls.name = name
        POSITION_SCHEMES[name] = cls
        return cls

    return decorate


def get_scheme(name: str) -> type[PositionScheme]:
    """The scheme class registered as `name`; ConfigError listing the names otherwise.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """
    if not isinstance(name, str) or name not in POSITION_SCHEMES:
        known = ", ".join(sorted(POSITION_SCHEMES))
        raise ConfigError(
            f"pe must be one of the registered schemes {known}; got {name!r}"
        )
    return POSITION_SCHEMES[name]


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The configuration
@dataclass
class GPTConfig:
    """The model's shape and its position scheme `pe` with its `pe_options`.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = (
        256  # the training context; rotary schemes can run longer sequences
    )
    vocab_size: int = 4096
    pe: str = "rope"
    dropout: float = 0.0
    bias: bool = True
    rope_base: float = 10000.0
    pe_options: dict[str, Any] = field(default_factory=dict)  # the scheme's keywords
    # RoPE family only: {"rope_type": ..., **parameters}, HF's `rope_parameters`
    rope_scaling: dict[str, Any] = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def __post_init__(self) -> None:
        _check_config(self)

    def build_scheme(self, layer: int | None = None) -> PositionScheme:
        """The scheme `pe` with `pe_options` for the model (`layer=None`) or a layer."""
        try:
            return get_scheme(self.pe)(self, layer, **self.pe_options)
        except ConfigError:
            raise
        except ValueError as error:
            raise ConfigError(str(error)) from error


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The configuration
def _check_config(config: GPTConfig) -> None:
    for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if config.n_embd % config.n_head:
        raise ConfigError(
            f"n_embd must be divisible by n_head, got {config.n_embd} and "
            f"{config.n_head}"
        )
    if not (isinstance(config.dropout, (int, float)) and 0 <= config.dropout < 1):
        raise ConfigError(f"dropout must be in [0, 1), got {config.dropout!r}")
    base = config.rope_base
    if not (isinstance(base, (int, float)) and math.isfinite(base) and base > 1):
        raise ConfigError(f"rope_base must be a finite number > 1, got {base!r}")
    for name in ("pe_options", "rope_scaling"):
        if not isinstance(getattr(config, name), dict):
            kind = type(getattr(config, name)).__name__
            raise ConfigError(f"{name} must be a dict, got {kind}")
    try:
        get_scheme(config.pe).check_config(config)
    except ConfigError:
        raise
    except ValueError as error:  # the scheme's own check: a configuration error too
        raise ConfigError(str(error)) from error


def _check_scheme_config(cls: type[PositionScheme], config: GPTConfig) -> None:
    """What every scheme checks: an even head_dim if rotary; the pe_options' names."""
    if cls.rotary and config.head_dim % 2:
        raise ValueError(
            f"pe={cls.name!r} rotates pairs of channels: head_dim = n_embd / n_head "
            f"must be even, got {config.n_embd} / {config.n_head} = {config.head_dim}"
        )
    if config.rope_scaling and not hasattr(cls, "set_rope_scaling"):
        raise ValueError(
            f"rope_scaling: pe={cls.name!r} has no RoPE frequencies to scale"
        )
    accepted = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = set(config.pe_options) - set(accepted) - {"self", "config", "layer"}
        if unknown:
            raise ValueError(
                f"pe_options: {cls.name!r} takes no option {sorted(unknown)}"
            )


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The scheme's interface
class _SchemeBase(nn.Module):
    """What every scheme has besides its hooks: options, config checks, decay.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    name: ClassVar[str] = "none"  # set by register_scheme
    rotary: ClassVar[bool] = False

    def __init__(
        self, config: GPTConfig, layer: int | None = None, **options: Any
    ) -> None:
        """`options` are `config.pe_options`; a subclass names the ones it takes."""
        super().__init__()
        self.config, self.layer = config, layer
        if options:
            raise ValueError(
                f"pe_options: {self.name!r} takes no option {sorted(options)}"
            )

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        """Raise ValueError, naming the field, for a config this scheme cannot run."""
        _check_scheme_config(cls, config)

    @property
    def max_length(self) -> int | None:
        """The longest sequence the scheme can encode; None for any length."""
        return None

    def no_weight_decay(self) -> set[str]:
        """Names of this module's own parameters, relative to it, that take no decay."""
        return set()


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The scheme's interface
@register_scheme("none")
class PositionScheme(_SchemeBase):
    """Where position enters the model; every hook is the identity (NoPE).

    Defined in the chapter *A GPT-2 with pluggable position schemes*. Shapes: B batch, T
    tokens of this pass, C = n_embd, H = n_head, D = head_dim; `positions` is the int
    tensor `[T]`, `start + arange(T)` after `start` cached tokens. `rotary` (class
    attribute): pairs of q/k channels are rotated, so head_dim must be even. A submodule
    with `own_init = True` keeps its own initialisation.
    """

    def embed(self, h: Tensor, positions: Tensor) -> Tensor:
        """Token embeddings `h [B, T, C]` -> the residual stream's input `[B, T, C]`."""
        return h

    def projection(self, config: GPTConfig) -> nn.Module:
        """The module mapping `x [B, T, C]` to `(q, k, v)`, each `[B, T, C]`."""
        return QKVProjection(config)

    def rotate(
        self, q: Tensor, k: Tensor, positions: Tensor, x: Tensor, state: dict | None
    ) -> tuple[Tensor, Tensor]:
        """Queries and keys `[B, H, T, D]` at `positions [T]` -> `(q, k)`, same shapes.

        `x [B, T, C]` is the layer's input after its LayerNorm (for data-dependent
        rotations). `state` is None without a KV cache; with one it is the layer's
        `LayerCache.state`, the same dict at every step and empty at the first. The keys
        returned are the ones cached.
        """
        return q, k

    def values(self, v: Tensor, positions: Tensor) -> Tensor:
        """Values `[B, H, T, D]` before attention (cached as returned)."""
        return v

    def output(self, y: Tensor, positions: Tensor) -> Tensor:
        """Attention outputs `[B, H, T, D]` of the queries at `positions`."""
        return y

    def attention_bias(
        self, q_positions: Tensor, k_positions: Tensor, dtype: torch.dtype, device
    ) -> Tensor | None:
        """A float bias `[H, Tq, Tk]` (or broadcastable) added to the logits, or None.

        `q_positions [Tq]` and `k_positions [Tk]` are the queries' and the keys'
        absolute positions (with a KV cache the keys are the cached ones and the new
        ones). The model adds the causal mask itself; None keeps the fused causal
        kernel.
        """
        return None


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
class QKVProjection(nn.Module):
    """GPT-2's fused projection `x [B, T, C]` -> `q, k, v`, each `[B, T, C]`.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.c_attn(x).split(x.shape[-1], dim=-1)


@dataclass
class LayerCache:
    """One layer's cached keys and values `[B, H, T, D]` and the scheme's `state`.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    k: Tensor | None = None
    v: Tensor | None = None
    state: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
class CausalSelfAttention(nn.Module):
    """Causal self-attention with the scheme's hooks at its fixed points.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig, layer: int) -> None:
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.pe = config.build_scheme(layer)
        self.qkv = self.pe.projection(config)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: Tensor, positions: Tensor, cache: LayerCache | None = None
    ) -> Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.qkv(x))
        q, k = self.pe.rotate(
            q, k, positions, x, None if cache is None else cache.state
        )
        v = self.pe.values(v, positions)
        mask, causal = None, T > 1
        if cache is not None:
            past = cache.length
            if past:
                k, v = torch.cat((cache.k, k), dim=-2), torch.cat((cache.v, v), dim=-2)
                causal = False
                if T > 1:  # bottom-right aligned: query i sees keys <= past + i
                    mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device)
                    mask = mask.tril(diagonal=past)
            cache.k, cache.v = k, v
        past = k.shape[-2] - T  # keys at positions[0] - past ... positions[-1]
        keys = positions[0] - past + torch.arange(past + T, device=positions.device)
        bias = self.pe.attention_bias(positions, keys, q.dtype, q.device)
        if bias is not None:  # a float mask: the bias, -inf after each query's position
            visible = keys[None, :] <= positions[:, None]
            mask = torch.where(visible, bias.to(q.dtype), float("-inf"))
            causal = False
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout
        )
        y = self.pe.output(y, positions)  # [B, H, T, D]
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
class MLP(nn.Module):
    """GPT-2's MLP: C -> 4C -> C with a tanh-approximated GELU.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: attention, then the MLP.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: Tensor, positions: Tensor, cache: LayerCache | None = None
    ) -> Tensor:
        x = x + self.attn(self.ln_1(x), positions, cache)
        return x + self.mlp(self.ln_2(x))


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
def _init_gpt2(model: nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation of every Linear and Embedding not marked `own_init`."""
    for module in model.modules():
        if getattr(module, "own_init", False):
            continue
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for name, parameter in model.named_parameters():
        if name.endswith("c_proj.weight"):  # the projections into the residual stream
            nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
class _Generation:
    """`GPT.generate`: sampling with a KV cache, or with a window (learned tables)."""

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        *,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Append `max_new_tokens` tokens sampled after `idx [B, T]` (0: greedy)."""
        _check_generate(max_new_tokens, temperature, top_k)
        limit = self.max_length
        if limit is not None and idx.shape[1] + max_new_tokens > limit:
            use_cache = False  # a learned table: slide a window of block_size tokens
        caches = [LayerCache() for _ in self.transformer.h] if use_cache else None
        logits = self._last_logits(idx, caches, start=0)
        for _ in range(max_new_tokens):
            next_token = _sample(logits, temperature, top_k, generator)
            idx = torch.cat((idx, next_token), dim=1)
            if caches is None:
                window = idx if limit is None else idx[:, -limit:]
                logits = self._last_logits(window, None, start=0)
            else:
                logits = self._last_logits(next_token, caches, start=idx.shape[1] - 1)
        return idx

    def _last_logits(self, idx: Tensor, caches, start: int) -> Tensor:
        hidden = self.forward_features(idx, start=start, caches=caches)
        return self.lm_head(hidden[:, -1])


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
class GPT(_Generation, nn.Module):
    """GPT-2 with a pluggable position scheme.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                pe=config.build_scheme(None),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(Block(config, i) for i in range(config.n_layer)),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied input and output
        _init_gpt2(self, config.n_layer)

    @property
    def max_length(self) -> int | None:
        """The longest sequence the position scheme encodes (None: any length)."""
        return self.transformer.pe.max_length

    def num_parameters(self) -> int:
        """Number of parameters, each tied tensor counted once."""
        return sum(p.numel() for p in self.parameters())

    def forward_features(
        self, idx: Tensor, *, start: int = 0, caches: list[LayerCache] | None = None
    ) -> Tensor:
        """Final hidden states `[B, T, C]` of `idx [B, T]` at `start + arange(T)`."""
        _check_idx(idx, start, self.max_length, self.config.pe)
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)
        h = self.transformer.pe.embed(self.transformer.wte(idx), positions)
        x = self.transformer.drop(h)
        for i, block in enumerate(self.transformer.h):
            x = block(x, positions, None if caches is None else caches[i])
        return self.transformer.ln_f(x)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple:
        """Logits `[B, T, V]` of `idx [B, T]`; the mean cross-entropy if `targets`."""
        logits = self.lm_head(self.forward_features(idx))
        if targets is None:
            return logits, None
        flat = logits.flatten(0, 1).float()
        return logits, F.cross_entropy(flat, targets.flatten(), ignore_index=-1)


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The model
def _check_idx(idx: Tensor, start: int, limit: int | None, pe: str) -> None:
    if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.is_floating_point():
        raise ValueError("idx must be an integer tensor of shape [batch, seq]")
    if limit is not None and start + idx.shape[1] > limit:
        raise ValueError(
            f"sequence of {start + idx.shape[1]} tokens exceeds pe={pe!r}'s "
            f"maximum length {limit} (block_size)"
        )


def _check_generate(max_new_tokens: object, temperature: object, top_k: object) -> None:
    import numbers  # NumPy's integers and floats register here, bool is excluded below

    def integer(value: object) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    if not integer(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(
            f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}"
        )
    real = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not real or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0: greedy), got {temperature!r}"
        )
    if top_k is not None and (not integer(top_k) or top_k < 1):
        raise ValueError(f"top_k must be None or a positive integer, got {top_k!r}")


def _sample(logits: Tensor, temperature: float, top_k: int | None, generator) -> Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / float(temperature)
    if top_k is not None:
        threshold = torch.topk(logits, min(int(top_k), logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


__all__ = [
    "Block",
    "CausalSelfAttention",
    "ConfigError",
    "get_scheme",
    "GPT",
    "GPTConfig",
    "LayerCache",
    "MLP",
    "POSITION_SCHEMES",
    "PositionScheme",
    "QKVProjection",
    "register_scheme",
]
