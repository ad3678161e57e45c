"""Sentence pairs as BERT inputs, d2l style: word vocabulary, pair truncation, segments, padding.

`SNLIBERTDataset` turns the premise/hypothesis/label columns that `load_task_data` returns for
SNLI (or any pair task) into fixed-length tensors: token ids `<cls> premise <sep> hypothesis
<sep>` padded with `<pad>`, segment ids (0 for the premise part, 1 for the hypothesis part) and
the valid length (tokens before the padding), which the encoder uses to mask attention.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from datasets import Dataset

BERT_RESERVED_TOKENS = ("<pad>", "<mask>", "<cls>", "<sep>")
UNK = "<unk>"

# Words, "n't" and "'s"-style clitics, numbers, and every other non-space character on its own.
_TOKEN_RE = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, with punctuation split off ("man's." -> man 's .).

    d2l read SNLI's pre-tokenised parse columns and built its vocabulary from WikiText-2, whose
    punctuation is already space-separated; the hub's raw sentences need the split done here.
    """
    return _TOKEN_RE.findall(text.lower())


class Vocab:
    """d2l's vocabulary: `<unk>` is id 0, then the reserved tokens, then tokens by frequency."""

    def __init__(self, tokens: Iterable[str] | Iterable[Sequence[str]] = (), min_freq: int = 0,
                 reserved_tokens: Sequence[str] = BERT_RESERVED_TOKENS):
        counter: collections.Counter[str] = collections.Counter()
        for item in tokens:  # streamed: a corpus need not fit in memory as token lists
            counter.update([item] if isinstance(item, str) else item)
        # Most frequent first; ties alphabetically, so the ids do not depend on data order.
        self.token_freqs = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        self.idx_to_token = [UNK] + [t for t in reserved_tokens if t != UNK]
        seen = set(self.idx_to_token)
        self.idx_to_token += [t for t, freq in self.token_freqs
                              if freq >= min_freq and t not in seen]
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    @classmethod
    def from_idx_to_token(cls, idx_to_token: Sequence[str]) -> "Vocab":
        """A vocabulary with exactly these ids (e.g. d2l's `vocab.json`)."""
        if len(set(idx_to_token)) != len(idx_to_token):
            raise ValueError("the token list has duplicates")
        if UNK not in idx_to_token:
            raise ValueError(f"the token list has no {UNK!r} token")
        vocab = cls.__new__(cls)
        vocab.token_freqs = []
        vocab.idx_to_token = list(idx_to_token)
        vocab.token_to_idx = {t: i for i, t in enumerate(vocab.idx_to_token)}
        return vocab

    @property
    def unk(self) -> int:
        return self.token_to_idx[UNK]

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens: str | Sequence[str]) -> int | list[int]:
        """The id of a token (unknown -> `<unk>`), or the ids of a list of tokens."""
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.token_to_idx.get(t, self.unk) for t in tokens]

    def to_tokens(self, indices: int | Sequence[int]) -> str | list[str]:
        if isinstance(indices, int):
            return self.idx_to_token[indices]
        return [self.idx_to_token[int(i)] for i in indices]


def truncate_pair(premise: Sequence[str], hypothesis: Sequence[str], max_len: int
                  ) -> tuple[list[str], list[str]]:
    """Drop tokens from the end of the longer side until both fit with `<cls>` and two `<sep>`.

    When both sides are equally long the hypothesis loses a token (d2l's rule), so the premise
    is never shorter than the hypothesis afterwards unless it was shorter to begin with.
    """
    if max_len < 3:
        raise ValueError(f"max_len must leave room for <cls> and two <sep>, got {max_len}")
    p, h = list(premise), list(hypothesis)
    while len(p) + len(h) > max_len - 3:
        if len(p) > len(h):
            p.pop()
        else:
            h.pop()
    return p, h


def encode_pair(premise: Sequence[str], hypothesis: Sequence[str], vocab: Vocab, max_len: int
                ) -> tuple[list[int], list[int], int]:
    """(token ids padded to `max_len`, segment ids padded with 0, valid length) of one pair:
    `<cls> premise <sep> hypothesis <sep>`, segment 0 up to the first `<sep>`, then 1."""
    p, h = truncate_pair(premise, hypothesis, max_len)
    tokens = ["<cls>", *p, "<sep>", *h, "<sep>"]
    segments = [0] * (len(p) + 2) + [1] * (len(h) + 1)
    pad = max_len - len(tokens)
    return vocab[tokens] + [vocab["<pad>"]] * pad, segments + [0] * pad, len(tokens)


def corpus_tokens(dataset: Dataset, text_keys: Sequence[str] = ("premise", "hypothesis")
                  ) -> Iterator[list[str]]:
    """Every sentence of `dataset`'s text columns, tokenized, one at a time (for a Vocab)."""
    for key in text_keys:
        for text in dataset[key]:
            yield tokenize(text)


class SNLIBERTDataset(torch.utils.data.Dataset):
    """A pair-classification split as BERT inputs: ((tokens, segments, valid_len), label).

    A progress bar shows for large splits (SNLI's train split takes about a minute on a CPU).
    `tokenize` splits text into the vocabulary's tokens: d2l's word split by default, a
    converted checkpoint's WordPiece tokenizer for a Hugging Face BERT.
    """

    def __init__(self, dataset: Dataset, vocab: Vocab, max_len: int,
                 text_keys: Sequence[str] = ("premise", "hypothesis"),
                 progress: bool | None = None,
                 tokenize: Callable[[str], list[str]] = tokenize):
        from tqdm.auto import tqdm

        first, second = text_keys
        self.vocab, self.max_len = vocab, max_len
        n = len(dataset)
        # Filled row by row: SNLI's 550k pairs as nested Python lists would take gigabytes.
        self.token_ids = torch.empty((n, max_len), dtype=torch.long)
        self.segments = torch.empty((n, max_len), dtype=torch.long)
        self.valid_lens = torch.empty(n, dtype=torch.long)
        self.num_truncated = 0
        pairs = tqdm(zip(dataset[first], dataset[second]), total=n, desc="encoding pairs",
                     disable=not (n >= 50_000 if progress is None else progress))
        for i, (premise, hypothesis) in enumerate(pairs):
            p, h = tokenize(premise), tokenize(hypothesis)
            self.num_truncated += len(p) + len(h) + 3 > max_len
            ids, segments, self.valid_lens[i] = encode_pair(p, h, vocab, max_len)
            self.token_ids[i], self.segments[i] = torch.tensor(ids), torch.tensor(segments)
        self.labels = torch.tensor(list(dataset["label"]), dtype=torch.long)
        feature = dataset.features.get("label")
        self.label_names = list(getattr(feature, "names", []) or [])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int):
        return (self.token_ids[idx], self.segments[idx], self.valid_lens[idx]), self.labels[idx]

    def truncated_fraction(self) -> float:
        """Share of pairs that lost tokens to `max_len`."""
        return self.num_truncated / len(self) if len(self) else 0.0

    def unk_fraction(self) -> float:
        """Share of real (non-special, non-pad) tokens the vocabulary maps to `<unk>`."""
        special = torch.tensor([self.vocab[t] for t in ("<cls>", "<sep>")])
        valid = torch.arange(self.max_len)[None, :] < self.valid_lens[:, None]
        words = valid & ~torch.isin(self.token_ids, special)
        count = int(words.sum())
        return int((words & (self.token_ids == self.vocab.unk)).sum()) / count if count else 0.0

    def example_table(self, idx: int, max_columns: int | None = None):
        """One input as a table: position, token, id, segment, and whether it is padding."""
        import pandas as pd

        n = int(self.valid_lens[idx])
        stop = min(self.max_len, n + 2 if max_columns is None else max_columns)
        ids = self.token_ids[idx, :stop].tolist()
        table = pd.DataFrame({
            "token": self.vocab.to_tokens(ids), "id": ids,
            "segment": self.segments[idx, :stop].tolist(),
            "attended": ["yes" if i < n else "no (pad)" for i in range(stop)],
        })
        table.index.name = "position"
        return table.T


@torch.no_grad()
def predict_snli(net: torch.nn.Module, vocab: Vocab, premise: str, hypothesis: str,
                 max_len: int, label_names: Sequence[str],
                 tokenize: Callable[[str], list[str]] = tokenize) -> dict[str, float]:
    """`net`'s probability of each label for one pair, the pair encoded as in training.

    d2l's `predict_snli` returns the label alone; the probabilities also show how sure the
    model is. The largest one is the prediction.
    """
    net.eval()
    device = next(net.parameters()).device
    ids, segments, valid_len = encode_pair(tokenize(premise), tokenize(hypothesis), vocab,
                                           max_len)
    inputs = [torch.tensor(x, device=device).unsqueeze(0) for x in (ids, segments, valid_len)]
    probabilities = torch.softmax(net(*inputs).float(), dim=-1)[0]
    return dict(zip(label_names, probabilities.tolist()))
