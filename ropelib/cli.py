# generated from notebooks/90_cli.md by tools/export.py, do not edit

"""The command line: `python -m ropelib COMMAND ...`. Built in notebooks/90_cli.md."""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """Bad input from the command line: reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage; one line is enough
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m ropelib`."""
    parser = _Parser(prog="python -m ropelib", description="ropelib: rotary position embeddings")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bench = commands.add_parser("bench", help="run a benchmark and print ratios")
    bench.add_argument("name", help="benchmark name, e.g. rope")
    bench.add_argument("--quick", action="store_true", help="a small size that runs in seconds")
    return parser


def run_bench(name: str, quick: bool) -> None:
    from ropelib.bench import BENCHMARKS

    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; choose from {', '.join(sorted(BENCHMARKS))}")
    BENCHMARKS[name](quick=quick)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "bench":
            run_bench(args.name, args.quick)
    except UsageError as error:
        print(f"ropelib: error: {error}", file=sys.stderr)
        return 2
    return 0
