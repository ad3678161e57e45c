"""Command line: `python -m d2l_utils {train,evaluate,predict,export,params} ...` (`--help` on
each).

Exit codes: 0 done, 2 a bad option (argparse's usage line, or one `error:` line naming the
option, the value and the valid range), 1 a data, model or file problem (one `error:` line naming
the file), 128 + the signal number when stopped by a signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP:
all handled as Ctrl-C, `d2l_utils.signals`). Never a traceback for any of these.

This module imports nothing heavy at the top, so a Ctrl-C in the first seconds (while torch and
transformers load) is an interruption like any other.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import Callable

from . import signals
from .profiles import PAUSE_ENV, ProfileError, check_environment


def exit_code(err: Exception) -> int | None:
    """2 for a wrong option value (`MethodError` is one too) or environment variable
    (`D2L_PROFILE=gpuu`), like argparse; 1 for a data, model, file or run-folder problem; None
    for anything else (a bug: its traceback shows)."""
    from .arguments import OptionError
    from .backbones import ModelError
    from .data import DataError
    from .inference import ExportError, PredictError
    from .metrics import MetricError
    from .precision import PrecisionError
    from .tasks import TaskError
    from .training.checkpoints import ResumeError
    from .training.prepare import RunFolderError
    from .training.saving import SavedRunError

    if isinstance(err, (OptionError, TaskError, ProfileError, PredictError, PrecisionError)):
        return 2
    if isinstance(err, (DataError, ModelError, OSError, FloatingPointError, ResumeError,
                        RunFolderError, SavedRunError, MetricError, ExportError)):
        return 1  # (OSError includes FileNotFoundError)
    return None


# ---------------------------------------------------------------------------------------------
# Parsing: a plain argparse parser built from the dataclass fields and their `option` metadata


def _yes_no(value: str) -> bool:
    """`--tiny true`, `--progress no`: the forms a bool option takes besides `--tiny` alone."""
    if value.lower() not in ("yes", "true", "t", "y", "1", "no", "false", "f", "n", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false (yes/no, 1/0), got {value!r}")
    return value.lower() in ("yes", "true", "t", "y", "1")


def _parser(cls: type, prog: str, program: str) -> argparse.ArgumentParser:
    """One option per field of `cls`, named as the README does (`--max-steps`), with the field's
    help text, valid range and default; a bool option also takes true/false, and `--no-NAME`
    when it defaults to true. An option not given is left out, so the dataclass default holds."""
    from .methods.base import option_name, type_hints, unwrap_optional

    parser = argparse.ArgumentParser(
        prog=f"{program} {prog}", argument_default=argparse.SUPPRESS,
        usage=f"{program} {prog} [options]   (--help lists them)",
        description=cls.__doc__)
    for f in dataclasses.fields(cls):
        hint = unwrap_optional(type_hints(cls)[f.name])[0]
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        shown = "" if default in (None, dataclasses.MISSING) else f" (default: {default})"
        bounds = f" [{f.metadata['bounds']}]" if "bounds" in f.metadata else ""
        kwargs = {"help": (f.metadata.get("help", "") + bounds + shown).replace("%", "%%"),
                  "required": default is dataclasses.MISSING, "type": hint,
                  "choices": f.metadata.get("choices")}
        if typing.get_origin(hint) is typing.Literal:
            kwargs.update(type=str, choices=typing.get_args(hint))
        elif hint is bool:
            kwargs.update(type=_yes_no, nargs="?", const=True)
        elif typing.get_origin(hint) is list:
            kwargs.update(type=str, nargs="+")
        parser.add_argument(option_name(f.name), dest=f.name, **kwargs)
        if hint is bool and default is True:
            parser.add_argument(option_name(f"no_{f.name}"), dest=f.name, action="store_false",
                                help=f"the same as {option_name(f.name)} false")
    return parser


def _normal(option: str) -> str:
    return option.split("=", 1)[0].lstrip("-").replace("_", "-").lower()


def _dashed(arg: str) -> str:
    """`--max_steps=5` as `--max-steps=5`: the underscore spelling (transformers' scripts')
    still parses, though --help and messages show the dashes."""
    name, equals, value = arg.partition("=")
    return name.replace("_", "-") + equals + value if arg.startswith("--") else arg


def suggestion(unknown: str, cls: type) -> str | None:
    """The option meant by an unknown one: a name other tools use for it (`known_as`), or the
    closest spelling."""
    wanted, fields = _normal(unknown), dataclasses.fields(cls)
    for f in fields:
        if wanted in {_normal(name) for name in f.metadata.get("known_as", ())}:
            return f"--{_normal(f.name)}"
    names = [_normal(f.name) for f in fields] + [f"no-{_normal(f.name)}" for f in fields
                                                 if f.default is True]
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    return "--" + close[0] if close else None


def parse(cls: type, argv: list[str], prog: str, program: str = "python -m d2l_utils"):
    """The dataclass of options of `program prog` from `argv`. argparse errors (an unknown
    option, with a suggestion; a value of the wrong type; a missing one) print the usage line
    and raise SystemExit(2), as argparse does; a bad value raises `OptionError` (or another of
    `usage_errors`) from the dataclass's own checks."""
    parser, typed = _parser(cls, prog, program), {_dashed(arg): arg for arg in argv}
    values, remaining = parser.parse_known_args([_dashed(arg) for arg in argv])
    if remaining:
        remaining = [typed.get(arg, arg) for arg in remaining]  # as the user typed them
        first = next((a for a in remaining if a.startswith("-")), remaining[0])
        hint = suggestion(first, cls) if first.startswith("-") else None
        parser.error(f"unrecognized arguments: {' '.join(remaining)}"
                     + (f" (did you mean {hint}?)" if hint else ""))
    return cls(**vars(values))


# ---------------------------------------------------------------------------------------------
# Commands

_RUNNING: dict[str, str] = {}  # output_dir and resume command of the run in progress


def cmd_train(argv: list[str]) -> int:
    """Train one run and write OUTPUT_DIR/record.json."""
    from .arguments import RunArguments, check_against_model
    from .training.checkpoints import resume_command
    from .training.record import command_line
    from .training.run import train

    args = check_against_model(parse(RunArguments, argv, "train"))
    _RUNNING.update(output_dir=args.output_dir, command=resume_command(command_line()))
    train(args)
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    """Evaluate a finished run's saved weights; prints the metrics as JSON."""
    from .arguments import EvaluateArguments
    from .training.evaluate import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(parse(EvaluateArguments, argv, "evaluate")),
                     indent=2))
    return 0


def cmd_predict(argv: list[str]) -> int:
    """Predict with a finished run: --text, an --input file, or --split test (GLUE files)."""
    from .arguments import PredictArguments
    from .inference.predict import predict_command

    predict_command(parse(PredictArguments, argv, "predict"))
    return 0


def cmd_export(argv: list[str]) -> int:
    """Write a finished run as a transformers model, a peft or an adapters folder (--to DIR)."""
    from .arguments import ExportArguments
    from .inference.export import export_run

    options = parse(ExportArguments, argv, "export")
    print(export_run(options.checkpoint, options.to, merge=options.merge).summary)
    return 0


def cmd_params(argv: list[str]) -> int:
    """Build the model (random weights: counts do not depend on them) and print its counts."""
    from .arguments import RunArguments, check_against_model
    from .methods import parameter_counts

    args = check_against_model(parse(RunArguments, argv, "params"))
    print(json.dumps({"model": args.model, "task": args.task,
                      **args.method_config().to_dict(),
                      **parameter_counts(args.model, args.task_spec, args.method_config())}))
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
    "params": cmd_params}


# ---------------------------------------------------------------------------------------------
# Ctrl-C and the other stop signals


def interrupted_message(err: KeyboardInterrupt, started: float) -> str:
    """What to say after Ctrl-C (or SIGTERM, SIGHUP): the loop's own message (checkpoint saved,
    resume command), else the resume command only when this run really wrote a checkpoint."""
    if str(err):  # the loop's own message
        return str(err)
    by = signals.by_signal(signals.signal_of(err))
    if output_dir := _RUNNING.get("output_dir"):
        from .training.checkpoints import list_checkpoints

        trainer_checkpoints = sorted(Path(output_dir).glob("checkpoint-*"),  # --trainer hf
                                     key=lambda p: p.stat().st_mtime)
        ours = [p for p in [*list_checkpoints(output_dir), *trainer_checkpoints]
                if p.stat().st_mtime >= started]
        if ours:
            return (f"interrupted{by}; the last checkpoint of this run is {ours[-1]}. Resume "
                    f"with:\n  {_RUNNING['command']}")
        return f"interrupted{by} before this run wrote a checkpoint; nothing to resume"
    return f"interrupted{by}"


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand, run by `run_command`."""
    from_shell = argv is None
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
    return run_command(COMMANDS[argv[0]], argv[1:], from_shell)


def run_command(command: Callable[[list[str]], int], argv: list[str],
                from_shell: bool = False) -> int:
    """Run `command(argv)` (a subcommand, or benchmarks/bench.py): option errors exit with 2,
    run errors with 1, Ctrl-C with 130 (SIGTERM 143, SIGHUP 129), all without a traceback.
    `from_shell`: called as a program, not from Python."""
    started = time.time()
    _RUNNING.clear()
    previous = signals.install(signals.raise_stopped)
    interrupted = False
    try:
        # testing hook: D2L_PAUSE_AT_STEP=0 prints a marker before anything is imported and
        # waits there, so a test interrupts a command at its very start
        if os.environ.get(PAUSE_ENV) == "0":
            print("paused at step 0", flush=True)
            while True:
                time.sleep(0.02)
        check_environment()  # D2L_PROFILE, D2L_TINY, D2L_MAX_*: before any work
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        return command(argv)
    except KeyboardInterrupt as err:
        interrupted = True
        signals.ignore_all()
        print(interrupted_message(err, started), file=sys.stderr, flush=True)
        return signals.exit_status(signals.signal_of(err))
    except Exception as err:
        if (code := exit_code(err)) is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return code
    finally:
        # From the shell, a Ctrl-C after an interruption must not break the exit; called from
        # Python (tests, notebooks), the caller's handlers come back.
        if not (from_shell and interrupted):
            signals.restore(previous)
