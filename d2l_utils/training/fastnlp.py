"""Glue between the library and the fastNLP 1.0.1 `Trainer` (chapter 4), plus the prompt diagrams.

fastNLP drives a model through two methods, `train_step(**batch) -> {"loss": ...}` and
`evaluate_step(**batch) -> {"pred": ..., "target": ...}`, and leaves data loading to plain torch
`DataLoader`s. `FastNLPClassifier` adds those two methods to any model `build_model` returns;
`train(args)` with `trainer="fastnlp"` runs it here: the same data, tokenizer, method,
parameter counts and run record as the library loop, so
`plots.plot_training` and `plots.records_table` draw it like any other run.

`prompt_placement` tabulates where the virtual tokens of the two prompt methods enter the
encoder: the input embeddings only (prompt tuning) or the keys and values of every layer
(P-Tuning v2), and what each costs in trainable parameters. The diagram of the same is
`d2l_utils.figures.ptuning_v2_vs_prompt_tuning`.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..backbones import load_config, resolve_backbone
from ..methods import build_model, count_parameters, method_config
from ..precision import fastnlp_precision
from ..preprocessing import make_collator
from ..tasks import TaskSpec, get_task
from .evaluate import epoch_line, final_predictions
from .loop import check_finite, make_loaders, make_optimizer
from .prepare import PreparedRun
from .record import TrainResult, device_description, peak_memory_mb

PROMPT_METHODS = ("prompt-tuning", "ptuning-v2")


def _import_fastnlp():
    """Import fastNLP quietly: it imports the deprecated `pkg_resources` (needs setuptools<81)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        try:
            import fastNLP
        except ImportError as err:
            raise ImportError(f"the fastNLP trainer needs `pip install fastNLP==1.0.1 "
                              f"'setuptools<81'` ({err})") from None
    return fastNLP


# ---------------------------------------------------------------------------------------------
# The model wrapper and the data loaders


class FastNLPClassifier(nn.Module):
    """A library-built sequence classifier with the `train_step`/`evaluate_step` fastNLP calls."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor):
        return self.model(**batch)

    def train_step(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward pass with labels; fastNLP calls `backward` on the returned `loss`."""
        return {"loss": self.model(**batch).loss}

    def evaluate_step(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predicted class and gold label, the names fastNLP's `Accuracy.update` expects."""
        return {"pred": self.model(**batch).logits.argmax(dim=-1), "target": batch["labels"]}


def make_dataloaders(run: PreparedRun, pad_to_multiple_of: int | None = None
                     ) -> tuple[DataLoader, dict[str, DataLoader]]:
    """The library loop's loaders (`make_loaders`), with batches as plain dicts: fastNLP matches
    batch keys to `train_step`'s arguments only for `dict` batches, not `BatchEncoding`.

    Plain loaders with num_workers=0 keep `prefetch_factor=None`: when fastNLP 1.0.1 rebuilds a
    loader (to make it resumable or distributed) it copies that attribute, and torch rejects
    any other value without workers.
    """
    collate = make_collator(run.tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    return make_loaders(run, lambda features: dict(collate(features)))


# ---------------------------------------------------------------------------------------------
# The history callback


class History:
    """Loss log, per-epoch train loss and dev accuracy (`history`), mid-epoch evaluations
    (`eval_log`), training time and example counts. Evaluation time is not training time.

    The methods of a fastNLP `Callback`; `run_fastnlp` mixes it with that class (fastNLP is an
    optional dependency of the library, imported only when a run uses it)."""

    def __init__(self, task: TaskSpec, sampler, log_every: int, verbose: bool):
        super().__init__()
        self.task, self.eval_splits, self.sampler = task, task.eval_splits, sampler
        self.log_every, self.verbose = max(1, log_every), verbose
        self.history: list[dict[str, Any]] = []
        self.eval_log: list[dict[str, Any]] = []
        self.loss_log: list[tuple[int, float]] = []
        self.train_time = 0.0
        self.examples = self.tokens = self.step = 0
        self._epoch_loss: list[torch.Tensor] = []
        self._window: list[torch.Tensor] = []
        self._tick = self._eval_tick = 0.0

    def on_train_epoch_begin(self, trainer) -> None:
        if hasattr(self.sampler, "set_epoch"):  # fastNLP only sets `loader.sampler`'s
            self.sampler.set_epoch(trainer.cur_epoch_idx)
        self._epoch_loss = []
        self._tick = time.perf_counter()

    def on_train_batch_begin(self, trainer, batch, indices) -> None:
        self.examples += int(batch["input_ids"].shape[0])
        self.tokens += int(batch["attention_mask"].sum())

    def on_before_backward(self, trainer, outputs) -> None:
        loss = outputs["loss"].detach().float()
        self._epoch_loss.append(loss)
        self._window.append(loss)

    def on_train_batch_end(self, trainer) -> None:
        self.step = trainer.global_forward_batches
        if self.step % self.log_every == 0 or self.step == trainer.n_batches:
            mean = torch.stack(self._window).mean().item()
            check_finite(mean, self.step)
            self.loss_log.append((self.step, round(mean, 6)))
            self._window = []

    def on_evaluate_begin(self, trainer) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._eval_tick = time.perf_counter()

    def on_evaluate_end(self, trainer, results: dict[str, float]) -> None:
        self._tick += time.perf_counter() - self._eval_tick  # pause the training clock
        step = trainer.global_forward_batches
        entry = {"epoch": round(step / trainer.num_batches_per_epoch, 4), "step": step}
        metrics = parse_fastnlp_results(results, self.eval_splits)
        if trainer.batch_idx_in_epoch < trainer.num_batches_per_epoch:  # mid-epoch
            self.eval_log.append({**entry, **metrics})
            return
        losses = torch.stack(self._epoch_loss) if self._epoch_loss else torch.full((1,), 0.)
        self.history.append({**entry, "train_loss": round(losses.mean().item(), 6), **metrics})
        if self.verbose:
            print(epoch_line(self.history[-1], self.task), flush=True)

    def on_train_epoch_end(self, trainer) -> None:
        self.train_time += time.perf_counter() - self._tick


def parse_fastnlp_results(results: dict[str, float], eval_splits: tuple[str, ...]
                          ) -> dict[str, dict[str, float]]:
    """fastNLP's flat result keys (`acc#acc`, or `acc#acc#SPLIT` with several loaders) as the
    library's `{split: {"accuracy": value}}`."""
    out = {}
    for split in eval_splits:
        key = "acc#acc" if len(eval_splits) == 1 else f"acc#acc#{split}"
        if key not in results:
            raise KeyError(f"fastNLP results lack {key!r}: {sorted(results)}")
        out[split] = {"accuracy": round(float(results[key]), 6)}
    return out


# ---------------------------------------------------------------------------------------------
# Training


def run_fastnlp(run: PreparedRun, train_batches_per_epoch: int = -1, verbose: bool = True
                ) -> TrainResult:
    """Train `run.model` with `fastNLP.Trainer` (driver "torch") and report the result."""
    fastNLP = _import_fastnlp()
    from fastNLP.core.callbacks import LRSchedCallback, TorchGradClipCallback

    args = run.args
    gpu = torch.cuda.is_available()
    device = 0 if gpu else "cpu"  # fastNLP's names: GPU 0 or the CPU
    train_loader, eval_loaders = make_dataloaders(run, pad_to_multiple_of=8 if gpu else None)
    steps_per_epoch = (len(train_loader) if train_batches_per_epoch < 0
                       else min(train_batches_per_epoch, len(train_loader)))
    num_epochs = max(1, math.ceil(args.epochs))
    model = FastNLPClassifier(run.model)
    optimizer, scheduler = make_optimizer(model, args, num_epochs * steps_per_epoch)
    history = type("HistoryCallback", (History, fastNLP.Callback), {})(
        run.task, train_loader.batch_sampler, args.log_every, verbose)
    callbacks = [history, LRSchedCallback(scheduler, step_on="batch")]
    if args.max_grad_norm > 0:
        # clips the optimizer's (trainable) parameters, after unscaling fp16 gradients
        callbacks.append(TorchGradClipCallback(clip_value=args.max_grad_norm, clip_type="norm"))
    # fastNLP's mixed precision is fp16 with a gradient scaler (no bf16): fp16 on any GPU unless
    # --mixed-precision no, fp32 on CPU; the note says which in the record
    fp16, precision_note = fastnlp_precision(args.mixed_precision)

    def evaluate_now(trainer) -> bool:  # at every epoch's end, and every --eval-every-steps
        return (trainer.batch_idx_in_epoch == trainer.num_batches_per_epoch
                or bool(args.eval_every_steps)
                and trainer.global_forward_batches % args.eval_every_steps == 0)

    single = len(eval_loaders) == 1
    level = fastNLP.logger.level
    fastNLP.logger.setLevel("ERROR")  # fastNLP logs each sanity check, evaluation and a
    try:  # warning that there is no progress bar (this module prints one line per epoch)
        trainer = fastNLP.Trainer(
            model=model, driver="torch", device=device, n_epochs=num_epochs,
            optimizers=optimizer, train_dataloader=train_loader,
            evaluate_dataloaders=next(iter(eval_loaders.values())) if single else eval_loaders,
            metrics={"acc": fastNLP.Accuracy()}, callbacks=callbacks, fp16=fp16, progress_bar=None,
            evaluate_every=evaluate_now)
        trainer.run(num_train_batch_per_epoch=train_batches_per_epoch, num_eval_sanity_batch=0,
                    catch_KeyboardInterrupt=False)
    finally:
        fastNLP.logger.setLevel(level)

    torch_device = torch.device("cuda", 0) if gpu else torch.device("cpu")
    # the final weights' predictions in the loop's example order, in fastNLP's precision
    predictions = final_predictions(run.model, run, torch.autocast(
        torch_device.type, dtype=torch.float16, enabled=fp16))
    return TrainResult(
        history=history.history, loss_log=history.loss_log, eval_log=history.eval_log,
        # passes over the training set: 2 epochs of 150 of 2,105 batches are 0.1425, not 2
        steps=history.step, epochs_run=round(history.step / len(train_loader), 4),
        train_time_s=round(history.train_time, 3), train_examples=history.examples,
        train_tokens=history.tokens, device=device_description(torch_device), num_processes=1,
        mixed_precision="fp16" if fp16 else "no", precision_note=precision_note,
        peak_memory_mb=round(peak_memory_mb(torch_device), 1), model=run.model,
        predictions=predictions)


# ---------------------------------------------------------------------------------------------
# Shallow vs deep prompts: where the virtual tokens enter and what they cost


def expected_prompt_params(method: str, num_virtual_tokens: int, hidden_size: int,
                           num_layers: int) -> int:
    """Trainable prompt parameters by formula: prompt tuning one vector per virtual token;
    P-Tuning v2 a key and a value vector per virtual token in every layer."""
    if method == "prompt-tuning":
        return num_virtual_tokens * hidden_size
    if method == "ptuning-v2":
        return num_layers * 2 * num_virtual_tokens * hidden_size
    raise ValueError(f"method must be one of {PROMPT_METHODS}, got {method!r}")


def prompt_placement(backbone: str = "bert-base-uncased", num_virtual_tokens: int = 20,
                     task: str = "sst2", head: str | None = None) -> pd.DataFrame:
    """Both prompt methods built on the same backbone (random weights: counts do not depend on
    them): where the prompt enters, its tensor shape, the formula and the counted parameters."""
    spec = get_task(task)
    resolved = resolve_backbone(backbone, random_init=True)
    config = load_config(resolved, spec)
    hidden, layers, n = config.hidden_size, config.num_hidden_layers, num_virtual_tokens
    where = {"prompt-tuning": "input embeddings only (before layer 1)",
             "ptuning-v2": f"keys and values of all {layers} layers"}
    shape = {"prompt-tuning": f"{n} x {hidden}",
             "ptuning-v2": f"{layers} layers x 2 (k, v) x {n} x {hidden}"}
    rows = []
    for method in PROMPT_METHODS:
        model = build_model(resolved, spec, method_config(method, num_virtual_tokens=n, head=head))
        counts = count_parameters(model)
        rows.append({"method": method, "backbone": backbone, "prompt enters at": where[method],
                     "prompt tensor": shape[method],
                     "prompt params (formula)": expected_prompt_params(method, n, hidden, layers),
                     "prompt params (counted)": counts["method_params"],
                     "head params": counts["head_params"], "trainable": counts["trainable"],
                     "total": counts["total"],
                     "trainable %": round(counts["trainable_percent"], 3),
                     "forward pass": forward_check(model)})
    return pd.DataFrame(rows).set_index("method")


def forward_check(model: nn.Module) -> str:
    """"ok" if the model runs a 3-token batch, else the error: `peft`'s deep prompts need an
    architecture that accepts past keys/values (DistilBERT does not)."""
    batch = {"input_ids": torch.tensor([[101, 2000, 102]]),
             "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    try:
        with torch.no_grad():
            model.eval()(**batch)
    except (ValueError, TypeError, RuntimeError) as err:
        return f"fails: {err}"
    return "ok"


__all__ = ["FastNLPClassifier", "PROMPT_METHODS", "expected_prompt_params", "forward_check",
           "make_dataloaders", "parse_fastnlp_results", "prompt_placement", "run_fastnlp"]
