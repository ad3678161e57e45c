"""The same run through the transformers `Trainer`, so chapters can show both ways side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import EvalPrediction, Trainer, TrainingArguments

from .metrics import compute_metrics, predictions_from_logits
from .preprocessing import make_collator
from .records import device_description, peak_memory_mb
from .training import PreparedRun, resolve_precision


def train_with_hf_trainer(run: PreparedRun) -> dict[str, Any]:
    """Train and evaluate `run` with `Trainer`, returning the fields the run record needs."""
    args, task = run.args, run.task
    precision = resolve_precision(args.mixed_precision)
    training_args = TrainingArguments(
        output_dir=args.output_dir, num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
        adam_epsilon=args.adam_epsilon, max_grad_norm=args.max_grad_norm, seed=args.seed,
        eval_strategy="epoch", logging_steps=args.log_every,
        save_strategy="steps" if args.save_every_steps else "no",
        save_steps=args.save_every_steps or 500, save_total_limit=args.keep_checkpoints,
        save_only_model=False,
        report_to=[], bf16=precision == "bf16", fp16=precision == "fp16",
        group_by_length=args.group_by_length, length_column_name="length",
        # keep token_type_ids: peft's forward does not name them, so the Trainer would drop them
        remove_unused_columns=False, label_names=["labels"], disable_tqdm=not args.progress,
        dataloader_pin_memory=torch.cuda.is_available(),
    )

    def metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return compute_metrics(task, predictions_from_logits(task, logits), prediction.label_ids)

    trainer = Trainer(model=run.model, args=training_args, train_dataset=run.data["train"],
                      eval_dataset={split: run.data[split] for split in task.eval_splits},
                      data_collator=make_collator(run.tokenizer), compute_metrics=metrics)
    # The Trainer's own checkpoints (checkpoint-N/) and resume, behind the same options.
    has_checkpoint = any(Path(args.output_dir).glob("checkpoint-*"))
    resumed = bool(args.resume and has_checkpoint)
    output = trainer.train(resume_from_checkpoint=resumed or None)
    logs = trainer.state.log_history
    history, loss_log = [], []
    for entry in logs:
        if "loss" in entry:
            loss_log.append((entry["step"], round(entry["loss"], 6)))
    for split in task.eval_splits:
        evals = [e for e in logs if f"eval_{split}_loss" in e]
        for i, entry in enumerate(evals):
            if len(history) <= i:
                history.append({"epoch": round(entry["epoch"], 4), "step": entry["step"]})
            prefix = f"eval_{split}_"
            history[i][split] = {k[len(prefix):]: round(v, 6) for k, v in entry.items()
                                 if k.startswith(prefix) and not k.endswith(
                                     ("runtime", "per_second"))}
    train_tokens = sum(run.data["train"]["length"]) * trainer.state.epoch
    device = trainer.args.device
    return {"metrics": {split: history[-1][split] for split in task.eval_splits},
            "history": history, "loss_log": loss_log, "steps": trainer.state.global_step,
            "epochs_run": round(trainer.state.epoch, 4),
            "train_time_s": round(output.metrics["train_runtime"], 3),
            # after a resume the Trainer's rates mix old and new steps: report none
            "train_examples": None if resumed else round(
                output.metrics["train_samples_per_second"] * output.metrics["train_runtime"]),
            "train_tokens": None if resumed else round(train_tokens),
            "device": device_description(device),
            "num_processes": trainer.args.world_size, "mixed_precision": precision,
            "peak_memory_mb": round(peak_memory_mb(device), 1),
            "is_main_process": trainer.is_world_process_zero(), "model": trainer.model}
