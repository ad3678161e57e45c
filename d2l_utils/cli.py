"""Command line: `python -m d2l_utils {train,evaluate,params,bench} ...` (`--help` on each)."""

from __future__ import annotations

import json
import sys
from typing import Callable

from transformers import HfArgumentParser

from .arguments import EvaluateArguments, RunArguments
from .backbones import ModelError
from .data import DataError
from .methods import MethodError
from .tasks import TaskError
from .training.checkpoints import ResumeError

USAGE_ERRORS = (MethodError, TaskError)  # a wrong option value: exit code 2, like argparse
RUN_ERRORS = (DataError, ModelError, FileNotFoundError, OSError, FloatingPointError,
              ResumeError)


def _parse(cls: type, argv: list[str], prog: str):
    parser = HfArgumentParser(cls, prog=f"python -m d2l_utils {prog}")
    (options,) = parser.parse_args_into_dataclasses(args=argv)
    return options


def cmd_train(argv: list[str]) -> int:
    """Train one run and write OUTPUT_DIR/record.json."""
    from .training.run import train

    train(_parse(RunArguments, argv, "train"))
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    """Evaluate a finished run's saved weights; prints the metrics as JSON."""
    from .training.evaluate import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(_parse(EvaluateArguments, argv, "evaluate")),
                     indent=2))
    return 0


def cmd_params(argv: list[str]) -> int:
    """Build the model (random weights: counts do not depend on them) and print its counts."""
    from .methods import parameter_counts

    args = _parse(RunArguments, argv, "params").resolved()
    print(json.dumps({"model": args.model, "task": args.task,
                      **args.method_config().to_dict(),
                      **parameter_counts(args.model, args.task_spec, args.method_config())}))
    return 0


def cmd_bench(argv: list[str]) -> int:
    """Time fixed padding, the HF Trainer and the library loop on one job; prints JSON last."""
    from .bench import BenchArguments, BenchOptionError, run_bench

    try:
        args = _parse(BenchArguments, argv, "bench")
    except BenchOptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_bench(args)
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": cmd_train, "evaluate": cmd_evaluate, "params": cmd_params, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; option errors exit with 2, run errors with 1, both without
    a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        given = f"unknown command {argv[0]!r}; " if argv and argv[0] not in ("-h", "--help") else ""
        print(f"usage: python -m d2l_utils {{{','.join(COMMANDS)}}} [options]\n"
              + "\n".join(f"  {name:9s} {fn.__doc__.splitlines()[0]}"
                          for name, fn in COMMANDS.items()), file=sys.stderr)
        if given:
            print(f"error: {given}choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        return COMMANDS[argv[0]](argv[1:])
    except USAGE_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RUN_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"{err}" if str(err) else "interrupted", file=sys.stderr)
        return 130
