"""Tokenization and batching: tokenize once without padding, pad each batch to its own length."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from .arguments import MIN_SEQ_LENGTH
from .tasks import TaskSpec


def tokenize_splits(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
                    max_seq_length: int) -> DatasetDict:
    """Model inputs for every split: `input_ids`, `attention_mask` (and `token_type_ids` when
    the model uses segments), `labels` (when the data has them), and `length` (tokens per
    example, for batching)."""
    if max_seq_length < MIN_SEQ_LENGTH:
        raise ValueError(f"--max-seq-length must be at least {MIN_SEQ_LENGTH}, got "
                         f"{max_seq_length}")

    def encode(batch: dict) -> dict:
        texts = [batch[key] for key in task.text_keys]
        # Pairs: truncate the longer side first, so both sentences keep as much as possible.
        encoded = tokenizer(*texts, truncation="longest_first" if task.is_pair else True,
                            max_length=max_seq_length)
        if "label" in batch:  # data to predict may have none
            encoded["labels"] = batch["label"]
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    columns = list(next(iter(data.values())).column_names)
    return data.map(encode, batched=True, remove_columns=columns, desc="tokenizing")


def make_collator(tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
                  ) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
    """Pads a batch to its longest example (dynamic padding); drops the `length` column."""
    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of,
                                  return_tensors="pt")

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        return pad([{k: v for k, v in f.items() if k != "length"} for f in features])

    return collate


def eval_dataloader(dataset: Dataset, batch_size: int,
                    collate: Callable[[list[dict]], dict]) -> DataLoader:
    """Evaluation batches in length order, longest first: every metric of a task is free of the
    examples' order, and batches of like lengths pad least (1.6-1.9x faster than file order on
    the GLUE dev sets, `benchmarks/eval_order.py`); the longest batch comes first, so a memory
    limit shows at once."""
    return DataLoader(dataset.select(length_order(dataset)), batch_size=batch_size,
                      collate_fn=collate)


def length_order(dataset: Dataset) -> np.ndarray:
    """The order `eval_dataloader` batches `dataset` in: longest first, ties in file order."""
    return np.argsort(-np.asarray(dataset["length"]), kind="stable")


# Mega-batches of length-sorted batches: large ones pad least, but where length goes with the
# label their batches are not mixed. Measured on the real train files, batch 32
# (benchmarks/RESULTS.md, "Length-grouped batches that stay mixed"): on STS-B 5 to 50 batches
# make the batch label means spread 1.6x as much as random batches' (3: 1.47x, with 0.60x their
# padded tokens); on SST-2 and CoLA every size mixes alike, and 50 pads least (SST-2: 0.35x).
# So the sampler looks at the data (`choose_mega_batch`): 50 where batches stay mixed, else 3.
MEGA_BATCH_LARGE, MEGA_BATCH = 50, 3
MAX_LABEL_SPREAD = 1.25  # predicted spread of fully length-sorted batches' label means vs random


def _label_columns(labels: np.ndarray) -> np.ndarray:
    """Regression labels as one column; class ids as one indicator column per class (the class
    shares of a batch are what mixing is about: a mean of class ids means nothing)."""
    values = np.unique(labels)
    if len(values) <= 20 and np.all(values == np.round(values)):
        return (labels[:, None] == values[None, :]).astype(np.float64)
    return labels[:, None].astype(np.float64)


def length_label_share(lengths, labels, bins: int = 20) -> float:
    """The share of the labels' variance that length explains (eta squared over up to `bins`
    length-quantile bins, less its expected value for unrelated labels; class labels: the
    largest share over the classes' indicators). STS-B 0.05, SST-2 0.007, CoLA 0.0."""
    lengths = np.asarray(lengths)
    columns = _label_columns(np.asarray(labels, dtype=np.float64))
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, bins + 1))[1:-1])
    groups = np.searchsorted(edges, lengths, side="right")
    counts = np.bincount(groups)
    used = counts > 0
    shares = []
    for y in columns.T:
        total = ((y - y.mean()) ** 2).sum()
        if total == 0:
            continue
        means = np.bincount(groups, weights=y)[used] / counts[used]
        between = (counts[used] * (means - y.mean()) ** 2).sum()
        shares.append(between / total - (used.sum() - 1) / (len(y) - 1))
    return max(0.0, max(shares, default=0.0))


def choose_mega_batch(lengths, labels, batch_size: int) -> int:
    """`MEGA_BATCH_LARGE` (50) when batches sorted by length would still be mixed, else
    `MEGA_BATCH` (3). Batches cut from one length stratum have label means that spread about
    sqrt(1 + batch_size * share) times as much as random batches' (`share`: what length explains
    of the labels' variance, `length_label_share`); up to `MAX_LABEL_SPREAD` that is no worse than
    SST-2's (1.16x measured), where 50 costs nothing. STS-B at batch 32: 1.6 (measured 1.64x).
    Fewer than 8 full batches: `MEGA_BATCH`."""
    if len(lengths) < 8 * batch_size:
        return MEGA_BATCH
    share = length_label_share(lengths, labels)
    return MEGA_BATCH_LARGE if math.sqrt(1 + batch_size * share) <= MAX_LABEL_SPREAD else MEGA_BATCH


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of examples of similar length, so dynamic padding wastes little, yet
    mixed like random batches where length goes with the label.

    Each epoch: a seeded permutation is cut into mega-batches of `mega_batch` batches, each
    sorted by length and split into batches; the batches are then shuffled. The mega-batch size
    is given, or chosen from `labels` (`choose_mega_batch`: 50 on SST-2 and CoLA, 3 on STS-B),
    else `MEGA_BATCH` (3). The order depends only on (seed, epoch), so a run can be
    resumed at any batch. `group_by_length=False`: plain shuffled batches.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0,
                 group_by_length: bool = True, mega_batch: int | None = None,
                 labels: list[float] | None = None):
        if batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
        if mega_batch is None:
            mega_batch = (choose_mega_batch(lengths, labels, batch_size)
                          if labels is not None and group_by_length else MEGA_BATCH)
        if mega_batch < 1:
            raise ValueError(f"mega_batch must be at least 1, got {mega_batch}")
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.group_by_length, self.mega_batch = group_by_length, mega_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size = self.batch_size
        if self.group_by_length:
            chunk = size * self.mega_batch
            order = [i for start in range(0, len(order), chunk)
                     for i in sorted(order[start:start + chunk], key=self.lengths.__getitem__,
                                     reverse=True)]
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        if self.group_by_length:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return iter(batches)
