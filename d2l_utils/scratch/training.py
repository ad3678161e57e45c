"""Train and evaluate the from-scratch `BERTClassifier`, d2l's `train_ch13` style.

Adam on cross-entropy, a progress bar per epoch, and after every epoch one point each for the
training loss, training accuracy and test accuracy on a plot that redraws in place in Jupyter
(and is drawn once at the end anywhere else). With more than one GPU the model is wrapped in
`nn.DataParallel`, which splits every batch across them; otherwise it runs on the one device.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Subset
from tqdm.auto import tqdm

from ..pages.notebook import in_notebook
from ..profiles import capped, caps_note, profile_name, rehearsal_caps
from ..training import record as run_record
from ..training.record import device_description, library_versions, timestamp

Batch = tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# The published number this chapter reproduces, from its course notebook: d2l, "Natural
# Language Inference: Fine-Tuning BERT", PyTorch version, section 16.7 of Dive into Deep Learning.
D2L_SNLI_REFERENCE: dict[str, Any] = {
    "run": "published: d2l (course notebook)", "model": "bert.small, pretrained by d2l",
    "data": "SNLI train 549,367 / test 9,824", "max_len": 128, "epochs": 5,
    "train loss": 0.520, "train acc": 0.790, "test acc": 0.779,
    "examples/s": 10442.5, "device": "2 GPUs (d2l's build machine)",
}


def try_all_gpus() -> list[torch.device]:
    """Every CUDA device, or `[cpu]` when there is none."""
    gpus = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return gpus or [torch.device("cpu")]


def plot_history(history: dict[str, Any], title: str | None = None,
                 num_epochs: int | None = None) -> plt.Figure:
    """Train loss, train accuracy and test accuracy by epoch on one axis (d2l's picture)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    epochs = history["epoch"]
    for key, label, style in [("train_loss", "train loss", "-"),
                              ("train_acc", "train acc", "m--"),
                              ("test_acc", "test acc", "g-.")]:
        ax.plot(epochs, history[key], style, marker="o", ms=3, label=label)
    top = max([1.0, *history["train_loss"]])
    last = num_epochs or max(epochs, default=1)
    ax.set(xlabel="epoch", ylim=(0, top * 1.02), xlim=(0.8, last + 0.2))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or history.get("device", ""), fontsize=9)
    fig.tight_layout()
    return fig


def _to(batch: Batch, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    inputs, labels = batch
    return [x.to(device, non_blocking=True) for x in inputs], labels.to(device, non_blocking=True)


@torch.no_grad()
def evaluate_accuracy(net: nn.Module, data_iter: Iterable[Batch],
                      device: torch.device | None = None) -> float:
    """Share of correctly classified examples in `data_iter` (the model in eval mode)."""
    net.eval()
    device = device or next(net.parameters()).device
    correct = total = 0
    for batch in data_iter:
        inputs, labels = _to(batch, device)
        correct += int((net(*inputs).argmax(dim=1) == labels).sum())
        total += labels.numel()
    return correct / total if total else float("nan")


def train_classifier(net: nn.Module, train_iter: Sequence[Batch], test_iter: Iterable[Batch],
                     num_epochs: int, lr: float = 1e-4,
                     devices: Sequence[torch.device] | None = None, plot: bool = True,
                     title: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Fine-tune `net` (called as `net(tokens, segments, valid_lens)`) and return its history.

    History: per-epoch `train_loss`, `train_acc`, `test_acc`, `examples_per_sec` (training
    examples per second of the epoch's training loop), `seconds`, and the `device` used.
    `plot=True` shows the epoch curves, redrawn in place after every epoch in a notebook
    (elsewhere: one figure drawn at the end, left open for `plt.savefig`); `plot_history(history)`
    redraws them at any time.
    """
    train_iter, test_iter, epoch_batches = _apply_caps(train_iter, test_iter, num_epochs)
    num_epochs = num_epochs if epoch_batches is None else len(epoch_batches)
    devices = list(devices or try_all_gpus())
    model = net.to(devices[0])
    if len(devices) > 1:
        model = nn.DataParallel(net, device_ids=devices)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    name = device_description(devices[0])  # 'NVIDIA T4', '2 x NVIDIA A100 (DataParallel)'
    history: dict[str, Any] = {"epoch": [], "train_loss": [], "train_acc": [], "test_acc": [],
                               "examples_per_sec": [], "seconds": [], "num_devices": len(devices),
                               "device": name if len(devices) == 1
                               else f"{len(devices)} x {name} (DataParallel)"}
    live, handle = plot and in_notebook(), None  # handle: the live plot's display
    for epoch in range(1, num_epochs + 1):
        model.train()
        loss_sum = torch.zeros((), device=devices[0])
        correct = torch.zeros((), dtype=torch.long, device=devices[0])
        seen = 0
        start = time.perf_counter()
        limit = None if epoch_batches is None else epoch_batches[epoch - 1]
        batches = train_iter if limit is None else itertools.islice(train_iter, limit)
        bar = tqdm(batches, desc=f"epoch {epoch}/{num_epochs}", total=limit, leave=False,
                   disable=not progress)
        for step, batch in enumerate(bar, start=1):
            inputs, labels = _to(batch, devices[0])
            logits = model(*inputs)
            batch_loss = loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            loss_sum += batch_loss.detach() * labels.numel()  # stays on the device: no sync
            correct += (logits.argmax(dim=1) == labels).sum()
            seen += labels.numel()
            if progress and step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}")
        if devices[0].type == "cuda":
            torch.cuda.synchronize(devices[0])
        seconds = time.perf_counter() - start
        history["epoch"].append(epoch)
        history["train_loss"].append(float(loss_sum) / max(seen, 1))
        history["train_acc"].append(int(correct) / max(seen, 1))
        history["test_acc"].append(evaluate_accuracy(model, test_iter, devices[0]))
        history["examples_per_sec"].append(seen / seconds)
        history["seconds"].append(seconds)
        if live:
            from IPython.display import display

            figure = plot_history(history, title, num_epochs)
            if handle is None:
                handle = display(figure, display_id=True)
            else:
                handle.update(figure)
            plt.close(figure)  # shown through the handle; keeps the inline backend from a copy
    if plot and handle is None:  # not live (or no epoch ran): the one time it is drawn
        plot_history(history, title, num_epochs)
    if num_epochs:
        print(f"loss {history['train_loss'][-1]:.3f}, train acc {history['train_acc'][-1]:.3f}"
              f", test acc {history['test_acc'][-1]:.3f}\n"
              f"{sum(history['examples_per_sec']) / num_epochs:.1f} examples/sec on "
              f"{history['device']}")
    return history


def _apply_caps(train_iter: Sequence[Batch], test_iter: Iterable[Batch], num_epochs: int
                ) -> tuple[Sequence[Batch], Iterable[Batch], list[int | None] | None]:
    """The loaders and the batches of each epoch (None: all) under the rehearsal caps
    (`D2L_MAX_STEPS`: at most that many steps in all, `D2L_MAX_BATCH_SIZE`,
    `D2L_MAX_EVAL_SAMPLES`: the first examples of the test set); unchanged when none is set."""
    caps = rehearsal_caps()
    if not caps:
        return train_iter, test_iter, None

    def rebuilt(loader, max_samples=None):
        if not isinstance(loader, DataLoader) or loader.batch_size is None:
            return loader  # a custom batch sampler: only D2L_MAX_STEPS applies
        dataset = loader.dataset
        if max_samples is not None and len(dataset) > max_samples:
            dataset = Subset(dataset, range(max_samples))
        return DataLoader(dataset, capped(loader.batch_size, caps.get("max_batch_size")),
                          shuffle=isinstance(loader.sampler, RandomSampler),
                          collate_fn=loader.collate_fn, num_workers=loader.num_workers)

    train_iter = rebuilt(train_iter)
    test_iter = rebuilt(test_iter, caps.get("max_eval_samples"))
    steps, per_epoch = caps.get("max_steps"), len(train_iter)
    epoch_batches: list[int | None] = [None] * num_epochs if steps is None else [
        min(steps - e * per_epoch, per_epoch) for e in range(num_epochs) if e * per_epoch < steps]
    print(caps_note(caps))
    return train_iter, test_iter, epoch_batches


def history_row(history: dict[str, Any], **labels: Any) -> dict[str, Any]:
    """The last epoch of `history` as one table row, next to `D2L_SNLI_REFERENCE`."""
    last = {key.replace("_", " "): round(history[key][-1], 3) if history[key] else None
            for key in ("train_loss", "train_acc", "test_acc")}  # "train loss", ...
    rate = history["examples_per_sec"]
    return {**labels, "epochs": len(history["epoch"]), **last,
            "examples/s": round(sum(rate) / len(rate), 1) if rate else None,
            "device": history["device"]}


def write_record(history: dict[str, Any], output_dir: str, *, model: str, pretrained: bool,
                 eval_split: str, train_examples: int, eval_examples: int, settings: dict,
                 trainable: int) -> dict[str, Any]:
    """Write chapter 1's run as a `record.json` in the library's format (task snli, method
    full), so the Results page reads it like every other run. Returns the record."""
    evals = [{"epoch": float(epoch), "step": None, "train_loss": round(loss, 6),
              eval_split: {"accuracy": round(acc, 6)}}
             for epoch, loss, acc in zip(history["epoch"], history["train_loss"],
                                         history["test_acc"])]
    final = history["test_acc"][-1] if history["test_acc"] else float("nan")
    seconds = sum(history["seconds"])
    record = {
        "task": "snli", "method": "full", "model": model, "pretrained": pretrained,
        "profile": profile_name(), "trainer": "d2l (chapter 1's loop)",
        "caps": rehearsal_caps(),
        "data": {"source": settings.get("data", "?"), "train_examples": train_examples,
                 "eval_examples": {eval_split: eval_examples}},
        "main_metric": {"name": "accuracy", "split": eval_split, "value": round(final, 6)},
        "metrics": {eval_split: {"accuracy": round(final, 6)}},
        "history": evals, "eval_log": evals,
        "params": {"trainable": trainable, "total": trainable, "trainable_percent": 100.0},
        "method_config": {"name": "full"},
        "epochs_run": len(history["epoch"]),
        # the epochs' training loops plus their evaluations are the run; data prep is not
        "wall_time_s": round(seconds, 1), "train_time_s": round(seconds, 1),
        "train_examples_per_s": round(train_examples * len(history["epoch"]) / seconds, 2)
        if seconds else None,
        "device": history["device"], "settings": settings,
        "versions": library_versions(), "finished_at": timestamp(),
        "cpu_count": os.cpu_count(),
    }
    run_record.write_record(output_dir, record)
    return record
