# generated from notebooks/90_cli.md by tools/export.py, do not edit

# %% notebooks/90_cli.md: The command line / Parsing the arguments
"""The command line `python -m ropelib COMMAND ...` (the chapter *The command line*)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path

from ropelib.data.tokenizers import EXTRAS, MissingExtra, install_hint
from ropelib.files import RunError
from ropelib.model import ConfigError


class UsageError(Exception):
    """Bad command-line syntax. Defined in the chapter *The command line*."""


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ):  # argparse would print the whole usage; one line is enough
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m ropelib`. Defined in the chapter *The command line*."""
    parser = _Parser(
        prog="python -m ropelib", description="ropelib: rotary position embeddings"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    bench = commands.add_parser("bench", help="run benchmarks and print ratios")
    bench.add_argument(
        "names", nargs="*", help="benchmarks, e.g. rope; none: all of them"
    )
    bench.add_argument("--quick", action="store_true", help="a small size, seconds")
    bench.add_argument("--json", default=None, help="write one JSON report here")
    commands.add_parser(  # its options, and its --help, are the trainer's (below)
        "train", help="train one model", add_help=False, usage=TRAIN_USAGE
    )
    _add_sample(commands.add_parser("sample", help="stream text from a trained model"))
    _add_eval(commands.add_parser("eval", help="validation loss at longer contexts"))
    experiment = commands.add_parser("experiment", help="run a registered experiment")
    experiment.add_argument("name", help="experiment name, e.g. pe-basics")
    experiment.add_argument("--quick", action="store_true", help="tiny runs, in runs/")
    experiment.add_argument("--seeds", type=int, default=None, help="number of seeds")
    return parser


TRAIN_USAGE = (
    "python -m ropelib train [--preset=NAME] [--config=FILE] [--key=value ...]"
)


# %% notebooks/90_cli.md: The command line / Parsing the arguments
def _number(kind: type, low: float, name: str, strict: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"{name} must be {kind.__name__}, got {text!r}") from None
        if value < low or (strict and value == low) or value != value:
            bound = f"{'above' if strict else 'at least'} {low}"
            raise UsageError(f"{name} must be {bound}, got {text!r}")
        return value

    return parse


def _add_sample(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("run", metavar="RUN", help="a training run's out_dir")
    sample.add_argument(
        "--prompt", default="\n", help="text to continue (default: a newline)"
    )
    sample.add_argument(
        "--max_new_tokens",
        type=_number(int, 0, "--max_new_tokens"),
        default=200,
        help="tokens to generate (default 200)",
    )
    sample.add_argument(
        "--temperature",
        type=_number(float, 0, "--temperature"),
        default=0.8,
        help="0: greedy (default 0.8)",
    )
    sample.add_argument(
        "--top_k",
        type=_number(int, 1, "--top_k"),
        default=None,
        help="sample among the k likeliest tokens (default: all)",
    )
    sample.add_argument("--seed", type=_number(int, 0, "--seed"), default=0)
    sample.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


# %% notebooks/90_cli.md: The command line / Parsing the arguments
def _add_eval(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("run", metavar="RUN", help="a training run's out_dir")
    evaluate.add_argument(
        "--lengths",
        default="1,2,4,8",
        help="multiples of the training context (default 1,2,4,8)",
    )
    evaluate.add_argument(
        "--rope_scaling",
        metavar="TYPE",
        default=None,
        help="a rope type of ropelib.scaling.ROPE_SCALING",
    )
    evaluate.add_argument(
        "--factor",
        type=_number(float, 0, "--factor", strict=True),
        default=None,
        help="the rope type's scaling factor",
    )
    evaluate.add_argument(
        "--rope_options",
        default="{}",
        help="other parameters of the rope type, JSON: '{\"beta_fast\": 32}'",
    )
    evaluate.add_argument(
        "--max_tokens",
        type=_number(int, 1, "--max_tokens"),
        default=250_000,
        help="target tokens per length, at most",
    )
    evaluate.add_argument(
        "--json", metavar="FILE", default=None, help="also write JSON"
    )
    evaluate.add_argument(
        "--data_dir", default=None, help="the token cache (default: the run's)"
    )
    evaluate.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


# %% notebooks/90_cli.md: The command line / The commands
def run_bench(names: list[str], quick: bool, json_path: str | None = None) -> None:
    """Run benchmarks (all, into one JSON report, when none is named).

    Defined in the chapter *The command line*.
    """
    from ropelib.bench import BENCHMARKS, run_benchmarks

    for name in names:
        if name not in BENCHMARKS:
            choices = ", ".join(sorted(BENCHMARKS))
            raise UsageError(f"unknown benchmark {name!r}; choose from {choices}")
    if names and json_path is None:  # the named ones, printed; errors end the command
        for name in names:
            BENCHMARKS[name](quick=quick)
        return
    try:  # the report's file is made before anything runs: a bad path costs nothing
        run_benchmarks(names or None, quick=quick, json_path=json_path)
    except (FileExistsError, NotADirectoryError) as error:
        raise UsageError(str(error)) from None


def run_train(overrides: list[str]) -> None:
    """Train one model. Defined in the chapter *The command line*."""
    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.train.config import config_from_args
    from ropelib.train.loop import train

    if "-h" in overrides or "--help" in overrides:
        print(train_help(), end="")
        return
    config = config_from_args(overrides)
    metrics = train(config)
    if metrics["rank"] != 0:  # under torchrun, process 0 reports
        return
    losses = ", ".join(
        f"{k} {'-' if v is None else f'{v:.4f}'}"
        for k, v in (metrics["val_loss"] or {}).items()
    )
    print(
        f"done: {metrics['iters']} steps, train loss {metrics['train_loss']:.4f}, "
        f"validation loss {losses}, {metrics['tokens_per_s']:,.0f} tokens/s "
        f"on {metrics['world_size']} process(es); "
        f"log, plot and checkpoint in {config.out_dir}"
    )


def run_experiment_command(name: str, quick: bool, seeds: int | None) -> None:
    """Run an experiment. Defined in the chapter *The command line*."""
    import ropelib.experiments  # noqa: F401  (registers every experiment of the book)
    import ropelib.schemes  # noqa: F401  (and every position scheme)
    from ropelib.experiments.runner import EXPERIMENTS, run_experiment
    from ropelib.experiments.tables import results_table

    if name not in EXPERIMENTS:
        choices = ", ".join(sorted(EXPERIMENTS))
        raise UsageError(f"unknown experiment {name!r}; choose from {choices}")
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {seeds}")
    results_dir = run_experiment(name, quick=quick, seeds=seeds)
    table = EXPERIMENTS[name].table
    print(table(results_dir) if table else results_table(name, results_dir)[0])


# %% notebooks/90_cli.md: The command line / The commands
def _type_name(hint) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return (
            "INT,..."
            if args[-1] is Ellipsis
            else ",".join(a.__name__.upper() for a in args)
        )
    return "JSON" if hint is dict else hint.__name__.upper()


def _choices() -> dict[str, str]:
    from ropelib.data import CORPORA
    from ropelib.model import POSITION_SCHEMES
    from ropelib.train import config as c

    listed = {"pe": sorted(POSITION_SCHEMES), "tokenizer": c.TOKENIZERS}
    listed |= {"schedule": c.SCHEDULES, "device": c.DEVICES, "dtype": c.DTYPES}
    accepted = {name: "one of " + ", ".join(values) for name, values in listed.items()}
    accepted["corpus"] = f"one of {', '.join(CORPORA)}, or a text file's path"
    accepted["eval_lengths"] = "multiples of block_size"
    return accepted


def train_help() -> str:
    """The text of `train --help`. Defined in the chapter *The command line*."""
    from ropelib.train.config import PRESETS, TrainConfig, option_groups

    parser = argparse.ArgumentParser(
        prog="python -m ropelib train",
        usage=TRAIN_USAGE,
        add_help=False,
        description="Train a GPT. Options on the line override --config, which "
        "overrides --preset; a flag without a value is true (--resume).",
    )
    parser.add_argument("--preset", metavar="NAME", help="one of " + ", ".join(PRESETS))
    parser.add_argument(
        "--config", metavar="FILE", help="options from a TOML or JSON file"
    )
    hints, accepted = typing.get_type_hints(TrainConfig), _choices()
    defaults = {
        f.name: f.default
        if f.default_factory is dataclasses.MISSING
        else f.default_factory()
        for f in dataclasses.fields(TrainConfig)
    }
    for group, names in option_groups().items():
        section = parser.add_argument_group(f"{group} options")
        for name in names:
            default = defaults[name]
            shown = (
                ",".join(map(str, default)) if isinstance(default, tuple) else default
            )
            if isinstance(shown, dict) or shown == "":
                shown = json.dumps(shown)  # an empty string shows as ""
            text = f"default {shown}"
            text += f"; {accepted[name]}" if name in accepted else ""
            section.add_argument(
                f"--{name}",
                metavar=_type_name(hints[name]),
                help=text.replace("%", "%%"),
            )
    return parser.format_help()


# %% notebooks/90_cli.md: The command line / The commands
def stream_tokens(
    model,
    ids: list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator=None,
):
    """Yield sampled ids one by one, as `GPT.generate`. See *The command line*."""
    import torch

    from ropelib.model import LayerCache, _sample

    device = model.lm_head.weight.device
    idx, limit = torch.tensor([ids], device=device), model.max_length
    cached = (
        limit is None or len(ids) + max_new_tokens <= limit
    )  # else: a sliding window
    caches = [LayerCache() for _ in model.transformer.h] if cached else None
    with torch.no_grad():
        hidden = model.forward_features(
            idx if cached else idx[:, -limit:], caches=caches
        )
        for step in range(max_new_tokens):
            token = _sample(model.lm_head(hidden[:, -1]), temperature, top_k, generator)
            yield int(token)
            if step + 1 == max_new_tokens:
                break  # no forward pass for a token that is never drawn
            idx = torch.cat((idx, token), dim=1)
            if cached:
                hidden = model.forward_features(
                    token, start=idx.shape[1] - 1, caches=caches
                )
            else:
                hidden = model.forward_features(idx[:, -limit:])


# %% notebooks/90_cli.md: The command line / The commands
def run_sample(args: argparse.Namespace) -> None:
    """Stream a model's continuation of a prompt. See the chapter *The command line*."""
    import torch

    from ropelib.train.checkpoint import load_model, load_tokenizer_of

    model, _ = load_model(args.run, device=args.device)
    tokenizer = load_tokenizer_of(args.run)
    if tokenizer is None:
        raise ConfigError(
            f"the checkpoint in {args.run} holds no tokenizer; train it again"
        )
    try:
        ids = tokenizer.encode(args.prompt)
    except ValueError as error:
        raise UsageError(f"--prompt: {error}") from None
    if not ids:
        raise UsageError("--prompt must hold at least one token")
    generator = torch.Generator(args.device).manual_seed(args.seed)
    tokens = stream_tokens(
        model, ids, args.max_new_tokens, args.temperature, args.top_k, generator
    )
    shown = tokenizer.decode(ids)
    print(shown, end="", flush=True)
    for token in tokens:
        ids.append(token)
        text = tokenizer.decode(ids)
        if not text.endswith(
            "\ufffd"
        ):  # a character still incomplete waits for its bytes
            print(text[len(shown) :], end="", flush=True)
            shown = text
    print(tokenizer.decode(ids)[len(shown) :])


# %% notebooks/90_cli.md: The command line / The commands
def _lengths(text: str) -> list[int]:
    try:
        lengths = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1 or len(set(lengths)) < len(lengths):
        raise UsageError(
            f"--lengths must be distinct positive integers such as 1,2,4, got {text!r}"
        )
    return lengths


def _scaling(args: argparse.Namespace) -> dict | None:
    from ropelib.scaling import ROPE_SCALING

    try:
        options = json.loads(args.rope_options)
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise UsageError(
            f"--rope_options must be a JSON object, got {args.rope_options!r}"
        )
    if args.rope_scaling is None:
        if args.factor is not None or options:
            raise UsageError("--factor and --rope_options need --rope_scaling TYPE")
        return None
    if args.rope_scaling not in ROPE_SCALING:
        known = ", ".join(sorted(ROPE_SCALING))
        raise UsageError(
            f"--rope_scaling must be one of {known}, got {args.rope_scaling!r}"
        )
    return options | ({} if args.factor is None else {"factor": args.factor})


# %% notebooks/90_cli.md: The command line / The commands
def _rescale(
    model, rope_type: str, scaling: dict, seq_len: int | None, pe: str
) -> None:
    from ropelib.schemes.context import extend_context

    try:
        changed = extend_context(model, rope_type, seq_len=seq_len, **scaling)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--rope_scaling {rope_type}: {error}") from None
    if not changed:
        raise ConfigError(f"pe={pe!r} has no rotary layers to rescale")


def _depends_on_length(rope_type: str, scaling: dict, config) -> bool:
    # dynamic NTK (and LongRoPE) choose their frequencies by the sequence's length
    from ropelib.scaling import scaled_frequencies, scaling_parameters

    options = dict(scaling)
    if "original_max_position_embeddings" in scaling_parameters(rope_type):
        options.setdefault("original_max_position_embeddings", config.block_size)
    head_dim = config.n_embd // config.n_head
    try:
        short, long = (
            scaled_frequencies(
                rope_type, head_dim, base=config.rope_base, seq_len=n, **options
            )
            for n in (config.block_size, 64 * config.block_size)
        )
    except (TypeError, ValueError) as error:
        raise UsageError(f"--rope_scaling {rope_type}: {error}") from None
    return not (short[0].equal(long[0]) and short[1] == long[1])


# %% notebooks/90_cli.md: The command line / The commands
def evaluate_run(args: argparse.Namespace) -> dict:
    """A run's validation losses by length. See the chapter *The command line*."""
    from ropelib.train.checkpoint import (
        check_tokenization,
        load_model,
        load_tokenizer_of,
    )
    from ropelib.train.config import TrainConfig
    from ropelib.train.evaluate import evaluate_protocol
    from ropelib.train.run import _load_data  # the trainer's own data: the same split

    lengths, scaling = _lengths(args.lengths), _scaling(args)
    model, config = load_model(args.run, device=args.device)
    if not isinstance(config, TrainConfig):
        raise ConfigError(
            f"the checkpoint in {args.run} names no corpus (not a trainer's run)"
        )
    if args.data_dir is not None:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    data = _load_data(config, rank=0, world=1)
    check_tokenization(load_tokenizer_of(args.run), data.tokenizer, f"eval {args.run}")

    def scores(seq_len: int | None) -> dict:
        if scaling is not None:
            _rescale(model, args.rope_scaling, scaling, seq_len, config.pe)
        try:
            return evaluate_protocol(
                model,
                data.val,
                config.block_size,
                lengths,
                args.max_tokens,
                config.batch_size,
                args.device,
            )
        except ValueError as error:  # the longest window does not fit the split
            raise UsageError(f"--lengths {args.lengths}: {error}") from None

    longest = max(lengths) * config.block_size
    results = scores(longest)
    if scaling is not None and _depends_on_length(args.rope_scaling, scaling, config):
        for multiple in lengths[
            :-1
        ]:  # frequencies recomputed for each length, same targets
            key = f"{multiple}x"
            results[key] = scores(multiple * config.block_size)[key]
    losses = {key: None if r is None else r["loss"] for key, r in results.items()}
    targets = max((r["targets"] for r in results.values() if r), default=0)
    return {
        "run": str(args.run),
        "pe": config.pe,
        "block_size": config.block_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus": config.corpus,
        "val_tokens": len(data.val),
        "targets": targets,
        "rope_scaling": args.rope_scaling,
        "rope_parameters": scaling,
        "val_loss": losses,
    }


# %% notebooks/90_cli.md: The command line / The commands
def run_eval(args: argparse.Namespace) -> None:
    """Print (and write) a run's losses. See the chapter *The command line*."""
    from ropelib.files import atomic_write_json, new_file_path

    try:  # checked first: the evaluation's minutes are never lost to a bad path
        if args.json:
            new_file_path(args.json)
    except (FileExistsError, NotADirectoryError) as error:
        raise UsageError(str(error)) from None
    result = evaluate_run(args)
    scaled = (
        f", {result['rope_scaling']} {result['rope_parameters']}"
        if result["rope_scaling"]
        else ""
    )
    corpus = Path(result["corpus"]).name
    print(
        f"{result['run']}: pe={result['pe']}{scaled}, "
        f"{result['parameters']:,} parameters, "
        f"{result['targets']:,} targets of {result['val_tokens']:,} validation tokens "
        f"of {corpus}"
    )
    print(f"{'context':>8} {'tokens':>8} {'loss':>8}")
    for key, loss in result["val_loss"].items():
        tokens = int(key[:-1]) * result["block_size"]
        print(f"{key:>8} {tokens:>8} {'-' if loss is None else f'{loss:.4f}':>8}")
    if args.json:
        try:
            atomic_write_json(args.json, result, overwrite=False)
        except FileExistsError:
            raise UsageError(f"{args.json} was created meanwhile; it is kept") from None


# %% notebooks/90_cli.md: The command line / Bad input and bugs
def main(argv: list[str] | None = None) -> int:
    """Run it; exit status 2 on bad input. Defined in the chapter *The command line*."""
    try:
        args, rest = build_parser().parse_known_args(argv)
        if rest and args.command != "train":
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "bench":
            run_bench(args.names, args.quick, args.json)
        elif args.command == "train":
            run_train(rest)
        elif args.command == "sample":
            run_sample(args)
        elif args.command == "eval":
            run_eval(args)
        elif args.command == "experiment":
            run_experiment_command(args.name, args.quick, args.seeds)
    except (UsageError, ConfigError) as error:  # anything else keeps its traceback
        return _one_line(error, 2)
    except ImportError as error:  # an optional package that is not installed
        return _one_line(_missing_package(error), 2)
    except RunError as error:  # diverged 3, storage 4, distributed 5, a signal 128 + n
        return _one_line(error, error.exit_code)
    except KeyboardInterrupt:  # outside a training step: nothing to save
        return _one_line("interrupted", 130)
    return 0


def _missing_package(error: ImportError) -> str:
    # MissingExtra, an ImportError that names its `pip install`, or a package of an extra
    if isinstance(error, MissingExtra) or "pip install" in str(error):
        return str(error)
    name = error.name or getattr(error.__cause__, "name", None) or ""
    if name.split(".")[0] not in EXTRAS:
        raise error  # any other failed import is a bug: its traceback is kept
    return f"{name} is not installed: {install_hint(name)}"


def _one_line(error: object, status: int) -> int:
    message = " ".join(str(error).split())
    print(f"ropelib: error: {message}", file=sys.stderr)
    return status


__all__ = [
    "build_parser",
    "evaluate_run",
    "main",
    "run_bench",
    "run_eval",
    "run_experiment_command",
    "run_sample",
    "run_train",
    "stream_tokens",
    "train_help",
    "TRAIN_USAGE",
    "UsageError",
]
