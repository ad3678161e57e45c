"""Tokenization and batching: tokenize once without padding, pad each batch to its own length."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from datasets import DatasetDict
from torch.utils.data import Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from .tasks import TaskSpec


def tokenize_splits(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
                    max_seq_length: int) -> DatasetDict:
    """Model inputs for every split: `input_ids`, `attention_mask` (and `token_type_ids` when
    the model uses segments), `labels`, and `length` (tokens per example, for batching)."""
    if max_seq_length < 8:
        raise ValueError(f"--max-seq-length must be at least 8, got {max_seq_length}")

    def encode(batch: dict) -> dict:
        texts = [batch[key] for key in task.text_keys]
        # Pairs: truncate the longer side first, so both sentences keep as much as possible.
        encoded = tokenizer(*texts, truncation="longest_first" if task.is_pair else True,
                            max_length=max_seq_length)
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


# Mega-batch size (in batches) of the length-grouped sampler, measured on the real STS-B and SST-2
# train files with MiniLM's tokenizer and batch 32 (tools/batching_study.py padding; the numbers
# are in benchmarks/RESULTS.md). With 50 (the HF Trainer's choice) 4-5% of the padded tokens are
# padding, but 16% of STS-B's batches are >= 90% one genre (0% with random batches) and batch
# label means spread 1.64x as much as random batches'. Mega-batches of 5 to 50 batches all do
# that; 3 is the largest that does not (1% one-genre batches, 1.47x spread) and still computes
# 0.60x / 0.57x the padded tokens of random batches on STS-B / SST-2 (50: 0.42x / 0.35x).
MEGA_BATCH = 3


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of examples of similar length, so dynamic padding wastes little, yet
    mixed enough that training does not notice (see `MEGA_BATCH`).

    Each epoch: a seeded permutation is cut into mega-batches of `mega_batch` batches, each
    sorted by length and split into batches; the batches are then shuffled. Small mega-batches
    keep most of the padding savings while each batch stays a broad slice of the data: with 50,
    a batch is one 2% length quantile of 1,600 examples, and where length goes with genre or
    label (STS-B) whole batches become one genre. The order depends only on (seed, epoch), so a
    run can be resumed at any batch. `group_by_length=False`: plain shuffled batches.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0,
                 group_by_length: bool = True, mega_batch: int | None = None):
        mega_batch = MEGA_BATCH if mega_batch is None else mega_batch  # read when built
        if batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
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
