"""Predict with a finished run, from Python (`Predictor.from_run(RUN).predict(texts)`) and from
the command line (`python -m d2l_utils predict`: texts, a file, or a GLUE test split).

The model is the run's own, rebuilt from `run_args.json` with its final weights
(`training.evaluate.load_saved_model`), and computes in the run's precision where this machine
can (`run_precision`). Batches go in length order, as in evaluation (`eval_dataloader`); the
results come back in row order.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from ..arguments import PredictArguments, RunArguments
from ..data import load_test_split, read_input_file
from ..metrics import compute_metrics, format_metrics, predictions_from_logits
from ..precision import PrecisionError, resolve_precision
from ..preprocessing import eval_dataloader, length_order, make_collator, tokenize_splits
from ..tasks import TaskSpec
from ..training.evaluate import load_saved_model, saved_run_arguments, task_for_run
from ..training.record import RECORD_FILE
from ..training.saving import write_text_atomic
from . import PredictError
from .submission import write_submission

AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
SUBMISSION_FOLDER = "submission"  # under the run's folder, unless --output says otherwise


@dataclass(frozen=True)
class Prediction:
    """One example's prediction: its label and that label's probability, or (STS-B) a score."""

    label: str | None
    probability: float | None
    score: float | None = None

    @property
    def value(self) -> str:
        """The label, or the score with three decimals."""
        return f"{self.score:.3f}" if self.label is None else self.label


def run_precision(checkpoint: str | os.PathLike, run: RunArguments,
                  device: torch.device) -> str:
    """The precision the run trained and evaluated in (`no`, `fp16`, `bf16`: its record's, else
    its option's), or fp32 (`no`) where `device` cannot compute it."""
    try:
        chosen = json.loads((Path(checkpoint) / RECORD_FILE).read_text())["mixed_precision"]
    except (OSError, ValueError, KeyError, TypeError):
        chosen = run.mixed_precision
    try:
        precision = resolve_precision(chosen)
    except PrecisionError:
        return "no"
    return "no" if device.type == "cpu" and precision == "fp16" else precision


def texts_dataset(task: TaskSpec, texts: str | Sequence[str] | Sequence[Sequence[str]]
                  ) -> Dataset:
    """`texts` as a dataset of the task's text columns: one text (or a list of them) for a
    single-sentence task, a pair (or a list of pairs) for a pair task."""
    single = isinstance(texts, str) or (task.is_pair and len(texts) == 2
                                        and all(isinstance(t, str) for t in texts))
    rows = [texts] if single else list(texts)
    if not rows:
        raise PredictError("no texts to predict")
    columns: dict[str, list[str]] = {key: [] for key in task.text_keys}
    for number, row in enumerate(rows, start=1):
        parts = [row] if isinstance(row, str) else list(row)
        if len(parts) != len(task.text_keys) or not all(isinstance(p, str) for p in parts):
            raise PredictError(f"{task.name} takes {' and '.join(task.text_keys)} for each "
                               f"example; example {number} is {row!r}")
        for key, text in zip(task.text_keys, parts):
            if not text.strip():
                raise PredictError(f"example {number}: the {key} is empty; nothing to predict")
            columns[key].append(text)
    return Dataset.from_dict(columns)


class Predictor:
    """A trained run ready to predict: its model, tokenizer, task, input length and precision.

        predictor = Predictor.from_run("runs/sst2-lora-tiny-bert")
        predictor.predict(["a gripping film", "a dull film"])  # [Prediction(label=..., ...)]
    """

    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
                 max_seq_length: int, precision: str = "no", batch_size: int = 64):
        self.model, self.tokenizer, self.task = model.eval(), tokenizer, task
        self.max_seq_length, self.precision, self.batch_size = (max_seq_length, precision,
                                                                batch_size)

    @classmethod
    def from_run(cls, checkpoint: str | os.PathLike, batch_size: int = 64,
                 device: str | None = None) -> Predictor:
        """Load the run in folder `checkpoint` (its final weights) onto `device` (default: the
        GPU when there is one)."""
        run = saved_run_arguments(str(checkpoint))
        tokenizer, model = load_saved_model(run, str(checkpoint))
        where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model.to(where), tokenizer, run.task_spec, run.max_seq_length or 128,
                   run_precision(checkpoint, run, where), batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def logits(self, data: Dataset, progress: bool = False) -> np.ndarray:
        """The model's outputs for each row of `data` (the task's text columns), in row order."""
        import datasets
        from tqdm.auto import tqdm

        texts = DatasetDict({"rows": data.select_columns(list(self.task.text_keys))})
        shown = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # one bar (the batches) is enough
        try:
            rows = tokenize_splits(texts, self.tokenizer, self.task, self.max_seq_length)["rows"]
        finally:
            if shown:
                datasets.enable_progress_bars()
        loader = eval_dataloader(rows, self.batch_size, make_collator(self.tokenizer))
        autocast = torch.autocast(self.device.type, dtype=AUTOCAST.get(self.precision),
                                  enabled=self.precision in AUTOCAST)
        outputs = []
        for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
            with autocast:
                logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
            outputs.append(logits.float().cpu())
        return torch.cat(outputs).numpy()[np.argsort(length_order(rows))]  # back in row order

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """Label and probability (softmax) per row, or the score for a regression task."""
        if self.task.is_regression:
            return [Prediction(None, None, float(score)) for score in logits.reshape(-1)]
        probabilities = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
        return [Prediction(self.task.label_names[i], float(p[i]))
                for i, p in zip(predictions_from_logits(self.task, logits), probabilities)]

    def predict(self, texts: str | Sequence[str] | Sequence[Sequence[str]]) -> list[Prediction]:
        """Predict one text or a list of texts (a pair task: a pair or a list of pairs)."""
        return self.predictions(self.logits(texts_dataset(self.task, texts)))

    def table(self, texts: str | Sequence[str] | Sequence[Sequence[str]]) -> pd.DataFrame:
        """`predict` as a table to read in a notebook: the task's text columns, then the
        prediction and its probability (a regression task: the score)."""
        data = texts_dataset(self.task, texts)
        predictions = self.predictions(self.logits(data))
        table = data.to_pandas()
        table["prediction"] = [p.value for p in predictions]
        if not self.task.is_regression:
            table["probability"] = [round(p.probability, 3) for p in predictions]
        return table


# ---------------------------------------------------------------------------------------------
# The command


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; nothing was written (add --overwrite to "
                              "replace it, or choose another --output)")


def _table(predictions: list[Prediction], regression: bool) -> str:
    header = "index\tprediction" + ("" if regression else "\tprobability")
    rows = [f"{i}\t{p.value}" + ("" if regression else f"\t{p.probability:.6f}")
            for i, p in enumerate(predictions)]
    return "\n".join([header, *rows]) + "\n"


def predict_command(options: PredictArguments) -> list[str]:
    """What `python -m d2l_utils predict` does; returns the lines it printed to standard output.
    Every refusal (options, task, input file, an existing output) comes before the model
    loads."""
    run = saved_run_arguments(options.checkpoint)
    task = task_for_run(run, options.checkpoint, options.task, verb="predict")
    lines: list[str] = []
    if options.split is not None:
        lines = _predict_test_splits(options, run, task)
    elif options.input is not None:
        lines = _predict_file(options, run, task)
    else:
        values = options.text or []
        width = len(task.text_keys)
        if len(values) % width:
            raise PredictError(f"{task.name} is a pair task ({' and '.join(task.text_keys)}): "
                               f"--text needs two texts per example, got {len(values)}")
        examples = [values[i:i + width] for i in range(0, len(values), width)]
        data = texts_dataset(task, examples)
        predictor = Predictor.from_run(options.checkpoint, options.batch_size)
        for example, p in zip(examples, predictor.predictions(predictor.logits(data))):
            shown = " | ".join(example)
            lines.append(f"{p.value}\t{shown}" if p.label is None
                         else f"{p.value}\t{p.probability:.4f}\t{shown}")
    for line in lines:
        print(line, flush=True)
    return lines


def _predict_file(options: PredictArguments, run: RunArguments, task: TaskSpec) -> list[str]:
    output = Path(options.output) if options.output else None
    _refuse_existing([output] if output else [], options.overwrite)
    data = read_input_file(task, options.input)
    predictor = Predictor.from_run(options.checkpoint, options.batch_size)
    logits = predictor.logits(data, options.progress)
    table = _table(predictor.predictions(logits), task.is_regression)
    lines = table.splitlines() if output is None else []
    if output is not None:
        write_text_atomic(output, table)
        lines.append(f"wrote {len(data)} predictions to {output}")
    if "label" in data.column_names:
        metrics = compute_metrics(task, predictions_from_logits(task, logits),
                                  np.asarray(data["label"]))
        line = f"{options.input}: {format_metrics(metrics)}"
        if output is None:  # standard output holds the table
            print(line, file=sys.stderr, flush=True)
        else:
            lines.append(line)
    return lines


def _predict_test_splits(options: PredictArguments, run: RunArguments, task: TaskSpec
                         ) -> list[str]:
    if task.name != run.task:
        raise PredictError(f"--split test writes {run.task}'s leaderboard files, the task the "
                           f"run {options.checkpoint} trained on; it cannot predict {task.name}"
                           f"'s test split (train a {task.name} run for that)")
    if not task.test_splits:
        raise PredictError(f"{task.name} has no unlabelled test split: its labelled test split "
                           "is one of its evaluation splits (python -m d2l_utils evaluate)")
    folder = Path(options.output or Path(options.checkpoint) / SUBMISSION_FOLDER)
    _refuse_existing([folder / s.submission for s in task.test_splits], options.overwrite)
    splits = [(split, load_test_split(task, split, options.data_dir, options.tiny))
              for split in task.test_splits]  # every file read before the model loads
    predictor = Predictor.from_run(options.checkpoint, options.batch_size)
    lines = []
    for split, data in splits:
        logits = predictor.logits(data, options.progress)
        path = write_submission(task, split, data["idx"], logits, folder)
        lines.append(f"wrote {path} ({len(data)} rows)")
    return lines
