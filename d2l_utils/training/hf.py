"""The same run through the transformers `Trainer`, so chapters can show both ways side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments

from ..arguments import RunArguments
from ..metrics import compute_metrics, predictions_from_logits
from ..precision import hf_precision_kwargs, resolve_precision
from ..preprocessing import make_collator
from ..signals import StopFlag, pause_for_tests
from ..tasks import TaskSpec
from .evaluate import final_predictions
from .loop import TrainingInterrupted
from .prepare import PreparedRun
from .record import TrainResult, device_description, peak_memory_mb


def training_arguments(args: RunArguments, **overrides: Any) -> TrainingArguments:
    """`TrainingArguments` equivalent to resolved run options; `overrides` replace fields."""
    options = dict(
        output_dir=args.output_dir, num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.lr,
        # --warmup-steps overrides --warmup-ratio, as in the library's loop
        warmup_ratio=0.0 if args.warmup_steps is not None else args.warmup_ratio,
        warmup_steps=args.warmup_steps or 0, weight_decay=args.weight_decay,
        adam_epsilon=args.adam_epsilon, max_grad_norm=args.max_grad_norm, seed=args.seed,
        # --eval-every-steps: also every N steps, as in the loop (EvaluateEachEpoch keeps the
        # evaluation at the end of every epoch)
        eval_strategy="steps" if args.eval_every_steps else "epoch",
        eval_steps=args.eval_every_steps, logging_steps=args.log_every,
        save_strategy="steps" if args.save_every_steps else "no",
        save_steps=args.save_every_steps or 500, save_total_limit=args.keep_checkpoints,
        save_only_model=False,
        report_to=[], **hf_precision_kwargs(args.mixed_precision),
        group_by_length=args.group_by_length, length_column_name="length",
        # keep token_type_ids: peft's forward does not name them, so the Trainer would drop them
        remove_unused_columns=False, label_names=["labels"], disable_tqdm=not args.progress,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    return TrainingArguments(**{**options, **overrides})


def metrics_function(task: TaskSpec) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's `compute_metrics` for `task`: the library's metrics, no `evaluate.load`."""

    def metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return compute_metrics(task, predictions_from_logits(task, logits), prediction.label_ids)

    return metrics


def make_trainer(run: PreparedRun, training_args: TrainingArguments | None = None,
                 model_init: Callable[[], nn.Module] | None = None) -> Trainer:
    """A `Trainer` on `run`'s data: with `run.model`, or with `model_init` (a fresh model each
    `train()`, as hyperparameter search needs) when one is given. Models with `adapters` methods
    get the adapters library's `AdapterTrainer`, which saves and reloads only the adapter."""
    trainer_class = Trainer
    if run.method.backend == "adapters" and model_init is None:
        from adapters import AdapterTrainer as trainer_class
    return trainer_class(model=None if model_init else run.model, model_init=model_init,
                         args=training_args or training_arguments(run.args),
                         train_dataset=run.data["train"],
                         eval_dataset={split: run.data[split] for split in run.task.eval_splits},
                         data_collator=make_collator(run.tokenizer),
                         compute_metrics=metrics_function(run.task))


class EvaluateEachEpoch(TrainerCallback):
    """At the end of every epoch, evaluate and log the training loss, also with evaluations every
    N steps or a `log_every` longer than an epoch: the record's history holds each epoch's
    metrics and mean training loss, its eval_log the evaluations in between (as in the loop)."""

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_evaluate = control.should_log = True
        return control


def logged_epochs(logs: list[dict], task: TaskSpec, steps_per_epoch: float
                  ) -> tuple[list[dict], list[dict], list[tuple[int, float]]]:
    """The Trainer's log as the loop records it: (history, eval_log, loss_log). History holds the
    evaluations at the end of an epoch (or of the run) with the epoch's mean training loss (each
    logged loss is the mean since the one before, and one ends every epoch); eval_log the others."""
    loss_log = [(entry["step"], round(entry["loss"], 6)) for entry in logs if "loss" in entry]
    windows = list(zip([0] + [step for step, _ in loss_log], loss_log))
    points: dict[int, dict] = {}
    for entry in logs:
        for split in task.eval_splits:
            prefix = f"eval_{split}_"
            if f"{prefix}loss" in entry:
                point = points.setdefault(entry["step"], {"epoch": round(entry["epoch"], 4),
                                                          "step": entry["step"]})
                point[split] = {k[len(prefix):]: round(v, 6) if isinstance(v, float) else v
                                for k, v in entry.items() if k.startswith(prefix)
                                and not k.endswith(("runtime", "per_second"))}
    history, eval_log, previous = [], [], 0
    for step in sorted(points):
        epochs = step / steps_per_epoch
        if step != max(points) and abs(epochs - round(epochs)) > 1e-6:
            eval_log.append(points[step])
            continue
        losses = [(now - before, loss) for before, (now, loss) in windows if previous < now <= step]
        if losses:
            points[step]["train_loss"] = round(sum(n * loss for n, loss in losses)
                                               / sum(n for n, _ in losses), 6)
        history.append(points[step])
        previous = step
    return history, eval_log, loss_log


class SaveAndStopOnSignal(TrainerCallback):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) makes the Trainer save a checkpoint after the
    current step and stop, as the library loop does."""

    def __init__(self, stop: StopFlag) -> None:
        self.stop = stop

    def on_step_end(self, args, state, control, **kwargs):
        pause_for_tests(state.global_step, self.stop)
        if self.stop.raised:
            control.should_save = control.should_training_stop = True
        return control


def train_with_hf_trainer(run: PreparedRun) -> TrainResult:
    """Train and evaluate `run` with `Trainer`, returning the fields the run record needs."""
    args, task = run.args, run.task
    precision = resolve_precision(args.mixed_precision)
    trainer = make_trainer(run)
    # The Trainer's own checkpoints (checkpoint-N/) and resume, behind the same options.
    resumed = bool(args.resume and any(Path(args.output_dir).glob("checkpoint-*")))
    trainer.add_callback(EvaluateEachEpoch())
    with StopFlag() as stop:
        trainer.add_callback(SaveAndStopOnSignal(stop))
        output = trainer.train(resume_from_checkpoint=resumed or None)
    if stop.raised:
        step = trainer.state.global_step
        raise TrainingInterrupted.at(step, stop.signum,
                                     Path(args.output_dir) / f"checkpoint-{step}")
    logs = trainer.state.log_history
    history, eval_log, loss_log = logged_epochs(
        logs, task, trainer.state.max_steps / max(trainer.state.num_train_epochs, 1e-9))
    train_tokens = sum(run.data["train"]["length"]) * trainer.state.epoch
    # The Trainer's train_runtime includes its per-epoch evaluations; the loop's does not.
    eval_time = sum(v for e in logs for k, v in e.items() if k.endswith("_runtime")
                    and k.startswith("eval_"))
    train_time = max(output.metrics["train_runtime"] - eval_time, 1e-9)
    device = trainer.args.device
    return TrainResult(
        history=history, eval_log=eval_log, loss_log=loss_log, steps=trainer.state.global_step,
        epochs_run=round(trainer.state.epoch, 4), train_time_s=round(train_time, 3),
        # after a resume the Trainer's rates mix old and new steps: report none
        train_examples=None if resumed else round(
            output.metrics["train_samples_per_second"] * output.metrics["train_runtime"]),
        train_tokens=None if resumed else round(train_tokens),
        device=device_description(device), num_processes=trainer.args.world_size,
        mixed_precision=precision, peak_memory_mb=round(peak_memory_mb(device), 1),
        is_main_process=trainer.is_world_process_zero(), model=trainer.model,
        predictions=final_predictions(trainer.model, run, trainer.autocast_smart_context_manager()))
