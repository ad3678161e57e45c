"""`train(args)`: prepare a run, train it with the chosen trainer, save it and write its record.

The same code runs unchanged under `accelerate launch` (the library loop), with the transformers
`Trainer` (`trainer="hf"`) and with the fastNLP `Trainer` (`trainer="fastnlp"`, chapter 4).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from ..arguments import RunArguments, check_against_model
from ..precision import fastnlp_precision, resolve_precision
from .checkpoints import check_disk_space, resume_hint
from .prepare import PreparedRun, check_output_dir, claim_output_dir, prepare_run
from .record import TrainResult, build_record, command_line, summary_line, write_record
from .saving import WriteError, save_trainable

__all__ = ["PreparedRun", "prepare_run", "train"]


def run_trainer(run: PreparedRun) -> TrainResult:
    """Train a prepared run with the trainer its options name."""
    if run.args.trainer == "hf":
        from .hf import train_with_hf_trainer

        return train_with_hf_trainer(run)
    if run.args.trainer == "fastnlp":
        from .fastnlp import run_fastnlp

        return run_fastnlp(run, run.args.train_batches_per_epoch or -1, run.args.progress)
    from .loop import train_with_loop

    return train_with_loop(run)


def train(args: RunArguments, verbose: bool = True) -> dict[str, Any]:
    """Run one training job end to end, write its record (and weights) and return the record."""
    started = time.perf_counter()
    args = check_against_model(args)  # every option first: nothing heavy has run yet
    # then a precision the trainer cannot use here (a `PrecisionError`): fastNLP 1.0.1 knows
    # fp16 (on a GPU) or fp32; the others refuse fp16 on a CPU, bf16 on a T4
    (fastnlp_precision if args.trainer == "fastnlp" else resolve_precision)(args.mixed_precision)
    check_output_dir(args.output_dir)
    run = prepare_run(args)  # then the data (file:line errors) and the model
    # then the folder: locked for the whole run; an unfinished or different run there is
    # refused, a finished one with the same options replaced
    include_frozen, out = not run.backbone.pretrained, run.args.output_dir
    with claim_output_dir(run.args):
        # room for the final weights, the record and the checkpoints kept
        check_disk_space(out, run.model, include_frozen, run.args.save_model,
                         run.args.keep_checkpoints if run.args.save_every_steps else None)
        try:
            result = run_trainer(run)
            result.wall_time_s = round(time.perf_counter() - started, 3)
            record = build_record(run, result)
            if result.is_main_process:
                if run.args.save_model:
                    save_trainable(result.model or run.model, out, asdict(run.args),
                                   include_frozen=include_frozen)
                write_record(out, record)
        except WriteError as err:  # a full disk after all (a checkpoint too): say what is kept
            raise WriteError(f"{err}; {resume_hint(out, command_line())}") from None
    if result.is_main_process and verbose:
        print(summary_line(record), flush=True)
    return record
