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
from ..preprocessing import eval_dataloader, make_collator
from ..signals import StopFlag, by_signal, pause_for_tests
from ..tasks import TaskSpec
from .checkpoints import resume_command
from .evaluate import evaluate_model
from .loop import TrainingInterrupted
from .prepare import PreparedRun
from .record import TrainResult, command_line, device_description, peak_memory_mb


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
    return trainer_class(model=None if model_init else run.model,
                   model_init=model_init,
                   args=training_args or training_arguments(run.args),
                   train_dataset=run.data["train"],
                   eval_dataset={split: run.data[split] for split in run.task.eval_splits},
                   data_collator=make_collator(run.tokenizer),
                   compute_metrics=metrics_function(run.task))


class EvaluateEachEpoch(TrainerCallback):
    """With evaluations every N steps, still evaluate at the end of every epoch: the record's
    history holds the epochs, its eval_log the evaluations in between (as in the loop)."""

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_evaluate = True
        return control


def _split_evaluations(logs: list[dict], task: TaskSpec, steps_per_epoch: float
                       ) -> tuple[list[dict], list[dict]]:
    """The Trainer's evaluation log entries as the loop records them: (history, eval_log), the
    first with the evaluations at the end of an epoch (or of the run), the second the others."""
    evaluations: dict[int, dict] = {}
    for entry in logs:
        for split in task.eval_splits:
            prefix = f"eval_{split}_"
            if f"{prefix}loss" not in entry:
                continue
            point = evaluations.setdefault(entry["step"], {"epoch": round(entry["epoch"], 4),
                                                           "step": entry["step"]})
            point[split] = {k[len(prefix):]: round(v, 6) if isinstance(v, float) else v
                            for k, v in entry.items()
                            if k.startswith(prefix) and not k.endswith(("runtime", "per_second"))}
    points = [evaluations[step] for step in sorted(evaluations)]
    last = points[-1]["step"] if points else None
    history = [p for p in points if p["step"] == last
               or abs(p["step"] / steps_per_epoch - round(p["step"] / steps_per_epoch)) < 1e-6]
    eval_log = [p for p in points if p not in history]
    return history, eval_log


def add_epoch_train_loss(history: list[dict], loss_log: list[tuple[int, float]]) -> None:
    """Each epoch's `train_loss`, as the loop records it: the mean of the training losses the
    Trainer logged since the previous epoch (every `log_every` steps)."""
    previous = 0
    for point in history:
        losses = [loss for step, loss in loss_log if previous < step <= point["step"]]
        if losses:
            point["train_loss"] = round(sum(losses) / len(losses), 6)
        previous = point["step"]


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
    has_checkpoint = any(Path(args.output_dir).glob("checkpoint-*"))
    resumed = bool(args.resume and has_checkpoint)
    if args.eval_every_steps:
        trainer.add_callback(EvaluateEachEpoch())
    with StopFlag() as stop:
        trainer.add_callback(SaveAndStopOnSignal(stop))
        output = trainer.train(resume_from_checkpoint=resumed or None)
    if stop.raised:
        step = trainer.state.global_step
        saved = Path(args.output_dir) / f"checkpoint-{step}"
        raise TrainingInterrupted(f"interrupted{by_signal(stop.signum)} at step {step}; "
                                  f"checkpoint saved in {saved}. Resume with:\n  "
                                  f"{resume_command(command_line())}", stop.signum)
    logs = trainer.state.log_history
    loss_log = [(entry["step"], round(entry["loss"], 6)) for entry in logs if "loss" in entry]
    steps_per_epoch = trainer.state.max_steps / max(trainer.state.num_train_epochs, 1e-9)
    history, eval_log = _split_evaluations(logs, task, steps_per_epoch)
    add_epoch_train_loss(history, loss_log)
    train_tokens = sum(run.data["train"]["length"]) * trainer.state.epoch
    # The Trainer's train_runtime includes its per-epoch evaluations; the loop's does not.
    eval_time = sum(v for e in logs for k, v in e.items() if k.endswith("_runtime")
                    and k.startswith("eval_"))
    train_time = max(output.metrics["train_runtime"] - eval_time, 1e-9)
    device = trainer.args.device
    return TrainResult(
        metrics={split: history[-1][split] for split in task.eval_splits},
        history=history, eval_log=eval_log, loss_log=loss_log, steps=trainer.state.global_step,
        epochs_run=round(trainer.state.epoch, 4), train_time_s=round(train_time, 3),
        # after a resume the Trainer's rates mix old and new steps: report none
        train_examples=None if resumed else round(
            output.metrics["train_samples_per_second"] * output.metrics["train_runtime"]),
        train_tokens=None if resumed else round(train_tokens),
        device=device_description(device), num_processes=trainer.args.world_size,
        mixed_precision=precision, peak_memory_mb=round(peak_memory_mb(device), 1),
        is_main_process=trainer.is_world_process_zero(), model=trainer.model,
        predictions=final_predictions(trainer, run))


def final_predictions(trainer: Trainer, run: PreparedRun) -> dict[str, dict[str, list]]:
    """Per-example predictions of the final weights on every evaluation split, in the loop's
    order (`eval_dataloader`), so that runs of either trainer pair up example by example. One
    more pass over the splits: the Trainer's own evaluations batch them in a random order when
    `group_by_length` is on."""
    collate = make_collator(run.tokenizer)
    kept: dict[str, dict[str, list]] = {split: {} for split in run.task.eval_splits}
    with trainer.autocast_smart_context_manager():
        for split in run.task.eval_splits:
            loader = eval_dataloader(run.data[split], trainer.args.per_device_eval_batch_size,
                                     collate)
            evaluate_model(trainer.model, loader, run.task, keep=kept[split])
    return kept
