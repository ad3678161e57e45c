"""Evaluate a saved run on a task's evaluation splits (`python -m d2l_utils evaluate`)."""

from __future__ import annotations

from typing import Any

import torch
from datasets import DatasetDict
from torch.utils.data import DataLoader

from .arguments import EvaluateArguments, RunArguments
from .backbones import load_config, load_tokenizer, resolve_backbone
from .data import load_task_data
from .methods import build_model
from .preprocessing import make_collator, tokenize_splits
from .saving import load_run_args, load_trainable
from .tasks import get_task
from .training import evaluate_model


def evaluate_checkpoint(options: EvaluateArguments) -> dict[str, Any]:
    """Rebuild the run's model, load its trained weights and compute every metric per split."""
    run = RunArguments(**load_run_args(options.checkpoint))
    trained_on = run.task_spec
    task = get_task(options.task or run.task)
    if task.num_labels != trained_on.num_labels:
        raise ValueError(f"--task {task.name} has {task.num_labels} label(s) but the checkpoint "
                         f"was trained on {trained_on.name} with {trained_on.num_labels}")
    backbone = resolve_backbone(run.model, random_init=run.random_init)
    tokenizer = load_tokenizer(backbone, load_config(backbone, trained_on))
    model = load_trainable(build_model(backbone, trained_on, run.method_config()),
                           options.checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    data = load_task_data(task, data_dir=options.data_dir, tiny=options.tiny,
                          max_eval_samples=options.max_eval_samples, seed=run.seed)
    data = tokenize_splits(DatasetDict({s: data[s] for s in task.eval_splits}), tokenizer, task,
                           run.max_seq_length)
    collate = make_collator(tokenizer)
    metrics = {split: evaluate_model(model, DataLoader(data[split], options.batch_size,
                                                       collate_fn=collate), task)
               for split in task.eval_splits}
    return {"checkpoint": options.checkpoint, "task": task.name, "method": run.method,
            "model": run.model, "metrics": metrics}
