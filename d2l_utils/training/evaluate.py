"""Evaluation: every official metric of a task on its evaluation splits, during training
(`evaluate_model`) and for a saved run (`evaluate_checkpoint`, `python -m d2l_utils evaluate`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from datasets import DatasetDict
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from ..arguments import EvaluateArguments, OptionError, RunArguments
from ..backbones import load_config, load_tokenizer, resolve_backbone
from ..data import load_task_data
from ..methods import MethodError, build_model
from ..metrics import compute_metrics, format_metrics, predictions_from_logits
from ..preprocessing import eval_dataloader, make_collator, tokenize_splits
from ..tasks import TaskError, TaskSpec, get_task
from .saving import RUN_FILE, SavedRunError, load_run_args, read_trainable


@torch.no_grad()
def evaluate_model(model: nn.Module, loader: DataLoader, task: TaskSpec,
                   accelerator=None, keep: dict[str, list] | None = None) -> dict[str, Any]:
    """Loss and every official metric of `task` on one evaluation split (an undefined one is
    None, with its reason under `undefined`). Given `keep`, it also receives the per-example
    `predictions` and `labels` (in the loader's order), for paired comparisons of two runs."""
    gather: Callable = accelerator.gather_for_metrics if accelerator else (lambda x: x)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_labels, losses = [], [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        outputs = model(**batch)
        logits, labels = gather((outputs.logits.float(), batch["labels"]))
        all_logits.append(logits.cpu())
        all_labels.append(labels.cpu())
        losses.append((outputs.loss.float().item(), len(batch["labels"])))
    model.train(was_training)
    logits = torch.cat(all_logits).numpy()
    labels = torch.cat(all_labels).numpy()
    predictions = predictions_from_logits(task, logits)
    metrics = compute_metrics(task, predictions, labels)
    if keep is not None:  # as a record keeps them: class ids, or scores to 4 decimals
        value = (lambda x: round(float(x), 4)) if task.is_regression else int
        keep.update(predictions=[value(p) for p in predictions], labels=[value(y) for y in labels])
    total = sum(n for _, n in losses)
    metrics["loss"] = sum(loss * n for loss, n in losses) / total
    return {k: round(float(v), 6) if isinstance(v, (float, int)) else v
            for k, v in metrics.items()}


def final_predictions(model: nn.Module, run, context) -> dict[str, dict[str, list]]:
    """Per-example predictions of `model` (its final weights) on every evaluation split of
    `run`, in the loop's order (`eval_dataloader`), so that runs of any trainer pair up example
    by example: one more pass for the Trainer and fastNLP, whose own evaluations batch in
    another order. `context`: their precision (an autocast)."""
    collate = make_collator(run.tokenizer)
    kept: dict[str, dict[str, list]] = {split: {} for split in run.task.eval_splits}
    with context:
        for split in run.task.eval_splits:
            evaluate_model(model, eval_dataloader(run.data[split], run.args.eval_batch_size,
                                                  collate), run.task, keep=kept[split])
    return kept


def epoch_line(entry: dict, task: TaskSpec) -> str:
    """One progress line for an epoch: train loss and every metric of every split."""
    parts = [f"epoch {entry['epoch']} step {entry['step']}: train loss {entry['train_loss']:.4f}"]
    for split in task.eval_splits:
        parts.append(f"{split} {format_metrics(entry[split])}")
    return " | ".join(parts)


def saved_run_arguments(checkpoint: str) -> RunArguments:
    """The options a saved run was trained with; a file that does not hold valid options is
    a `SavedRunError` naming it."""
    saved = load_run_args(checkpoint)
    known = {f.name for f in dataclasses.fields(RunArguments)}
    try:
        return RunArguments(**{k: v for k, v in saved.items() if k in known})
    except (OptionError, MethodError, TaskError, TypeError) as err:
        raise SavedRunError(f"{Path(checkpoint) / RUN_FILE}: not valid run options "
                            f"({err})") from None


def task_for_run(run: RunArguments, checkpoint: str, name: str | None,
                 verb: str = "evaluate") -> TaskSpec:
    """The task `name` (default: the run's own), which must have the run's labels; another is an
    `OptionError` naming both tasks."""
    trained_on = run.task_spec
    task = get_task(name or run.task)
    if (task.label_names, task.is_regression) != (trained_on.label_names,
                                                  trained_on.is_regression):
        def labels(spec: TaskSpec) -> str:
            if spec.is_regression:
                low, high = spec.label_range or (float("-inf"), float("inf"))
                return f"a score from {low:g} to {high:g}"
            return "/".join(spec.label_names)

        raise OptionError(f"--task {task.name} does not match the checkpoint {checkpoint}"
                          f", trained on {trained_on.name}: its outputs are {labels(trained_on)}"
                          f", {task.name} needs {labels(task)}; {verb} it on {trained_on.name}"
                          " or a task with the same labels")
    return task


def load_saved_model(run: RunArguments, checkpoint: str) -> tuple[PreTrainedTokenizerBase,
                                                                 nn.Module]:
    """The tokenizer and the model of a saved run, rebuilt as the run built it, with its final
    trained weights loaded (safetensors: no code runs), on the CPU."""
    backbone = resolve_backbone(run.model, random_init=run.random_init)
    tokenizer = load_tokenizer(backbone, load_config(backbone, run.task_spec))
    model = build_model(backbone, run.task_spec, run.method_config())
    model.load_state_dict(read_trainable(model, checkpoint), strict=False)  # every tensor fits
    return tokenizer, model


def evaluate_checkpoint(options: EvaluateArguments) -> dict[str, Any]:
    """Rebuild the run's model, load its trained weights and compute every metric per split."""
    run = saved_run_arguments(options.checkpoint)
    task = task_for_run(run, options.checkpoint, options.task)
    tokenizer, model = load_saved_model(run, options.checkpoint)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    data = load_task_data(task, data_dir=options.data_dir, tiny=options.tiny,
                          max_eval_samples=options.max_eval_samples, seed=run.seed)
    data = tokenize_splits(DatasetDict({s: data[s] for s in task.eval_splits}), tokenizer, task,
                           run.max_seq_length)
    collate = make_collator(tokenizer)
    metrics = {split: evaluate_model(model, eval_dataloader(data[split], options.batch_size,
                                                            collate), task)
               for split in task.eval_splits}
    return {"checkpoint": options.checkpoint, "task": task.name, "method": run.method,
            "model": run.model, "metrics": metrics}
