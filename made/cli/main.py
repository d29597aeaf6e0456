"""The ``made`` command line: the parser of every command, and how errors and data warnings are shown."""

from __future__ import annotations

import argparse
import errno
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

import torch

from ..pipeline import DataWarning
from . import eval as evaluate
from . import impute, masks, mix, sample, train, tune

DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no room for a file
DISK_FULL_HINT = (
    "the files written before are whole: free some space (or raise the file size limit), then run the "
    "command again (made train --resume RUN_DIR continues a run from its last checkpoint)"
)
COMMANDS = (train, evaluate, sample, impute, masks, tune, mix)  # each adds its parser, in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="made",
        description="MADE, the Masked Autoencoder for Distribution Estimation: exact likelihoods "
        "and samples of binary vectors from one masked network.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():
        _explain_dashed_values(command_parser)
    return parser


def _explain_dashed_values(parser: argparse.ArgumentParser) -> None:
    """Make ``parser``'s "expected one argument" say why: argparse reads a value that begins with '-'
    (``--train-options '--bogus'``) as an option, unless it is joined to its flag with '='."""
    error = parser.error

    def explained(message: str) -> NoReturn:
        if message.startswith("argument ") and message.endswith(": expected one argument"):
            flag = message.removeprefix("argument ").split(":")[0].split("/")[-1]
            message += f" (a value that begins with '-' is joined to its option with '=': {flag}='-...')"
        error(message)

    parser.error = explained  # type: ignore[method-assign]


def _show_data_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """A data warning as one line on stderr (``made: warning: ...``), other warnings as Python prints them."""
    if issubclass(category, DataWarning):
        print(f"made: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _out_of_memory(err: RuntimeError) -> bool:
    """Whether torch failed to allocate (its CPU allocator and CUDA both raise RuntimeErrors)."""
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, with one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        with warnings.catch_warnings():  # restores showwarning afterwards
            warnings.showwarning = _show_data_warning
            return args.func(args)
    except (ValueError, FloatingPointError) as err:  # data errors (made.data.DataError) are ValueErrors
        print(f"made: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        hint = f"; {DISK_FULL_HINT}" if err.errno in DISK_FULL else ""
        print(
            f"made: error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}{hint}",
            file=sys.stderr,
        )
        return 2
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _out_of_memory(err):
            raise
        print("made: error: out of memory; try a smaller model, --batch-size, -n or data set", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("made: interrupted", file=sys.stderr)
        return 130
