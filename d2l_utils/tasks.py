"""The task table: every GLUE task and SNLI described as data, read by the rest of the pipeline.

One place for each task fact: its columns and labels, metric, evaluation splits, where it lives on
the hub, how its official files are laid out (read by `d2l_utils.data`; the fixtures are files in
the same layout), its unlabelled test splits with the GLUE leaderboard's file for each, and its
official split sizes. Column names and label ids follow the Hugging Face
hub datasets (`nyu-mll/glue`, `stanfordnlp/snli`), so the hub, a local GLUE folder and the
fixtures all yield the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileLayout:
    """How one task is stored in the official GLUE layout.

    `columns` maps our column names to the file's column names (or, for header-less files,
    to positions in `positional_header`).
    """

    splits: dict[str, tuple[str, ...]]  # split -> candidate file names, first found wins
    columns: dict[str, str]
    positional_header: tuple[str, ...] | None = None  # set for files without a header row
    drop_labels: tuple[str, ...] = ()  # label values whose rows are skipped (SNLI's "-")


@dataclass(frozen=True)
class TestSplit:
    """One unlabelled test split in its official layout, and the GLUE leaderboard file it
    becomes. `columns` maps our column names (the task's text columns and `idx`) to the file's
    header names."""

    name: str  # the hub's split name: test, test_matched, test_mismatched
    path: str  # the file, relative to a GLUE-layout folder: CoLA/test.tsv, diagnostic/...
    columns: dict[str, str]
    submission: str  # the leaderboard's file name: CoLA.tsv, MNLI-m.tsv, AX.tsv
    hub_config: str = ""  # the hub config when it is not the task's own (AX: ax)


_TRAIN_DEV = {"train": ("train.tsv",), "validation": ("dev.tsv",)}
GLUE_SIZES_SOURCE = "GLUE paper (Wang et al., 2018), Table 1; the nyu-mll/glue dataset card"
SNLI_SIZES_SOURCE = "Bowman et al. (2015), after dropping pairs without a gold label"


@dataclass(frozen=True)
class TaskSpec:
    """Everything that differs between tasks, so the pipeline never needs an if-chain."""

    name: str
    text_keys: tuple[str, ...]  # one column (single sentence) or two (sentence pair)
    label_names: tuple[str, ...]  # empty for regression
    metrics: tuple[str, ...]  # names understood by `d2l_utils.metrics`
    eval_splits: tuple[str, ...] = ("validation",)
    hub_path: str = "nyu-mll/glue"
    glue_dir: str = ""  # folder name in the official GLUE layout
    description: str = ""
    files: FileLayout = field(default_factory=lambda: FileLayout(_TRAIN_DEV, {}))
    official_sizes: dict[str, int] = field(default_factory=dict)  # split -> examples
    sizes_source: str = GLUE_SIZES_SOURCE
    label_range: tuple[float, float] | None = None  # regression: the valid score range
    test_splits: tuple[TestSplit, ...] = ()  # unlabelled, in their official layouts
    submit_names: bool = False  # the leaderboard wants label names (else class ids)

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        """Outputs of the classification head (1 for regression, as in transformers)."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.text_keys) == 2

    @property
    def hub_args(self) -> tuple[str, ...]:
        """Positional arguments for `datasets.load_dataset` (GLUE configs are named per task)."""
        return (self.hub_path, self.name) if self.hub_path == "nyu-mll/glue" else (self.hub_path,)

    @property
    def main_metric(self) -> str:
        """The metric used to pick the best epoch and to summarise a run."""
        return self.metrics[0]


NLI3 = ("entailment", "neutral", "contradiction")
ENTAIL2 = ("entailment", "not_entailment")
_MNLI_TEXT = {"premise": "sentence1", "hypothesis": "sentence2"}  # MNLI's and the AX file's


def _glue(name: str, glue_dir: str, text_keys: tuple[str, ...], label_names: tuple[str, ...],
          metrics: tuple[str, ...], description: str, sizes: tuple[int, int],
          columns: dict[str, str] | None = None, label: str = "label", index: str = "index",
          **more: Any) -> TaskSpec:
    """A GLUE task in the usual layout: FOLDER/{train,dev}.tsv with the text `columns` (ours ->
    the file's; default: the same names) and `label`, and FOLDER/test.tsv with an `index`
    column, submitted as FOLDER.tsv."""
    columns = columns or {key: key for key in text_keys}
    more.setdefault("files", FileLayout(_TRAIN_DEV, {**columns, "label": label}))
    test = TestSplit("test", f"{glue_dir}/test.tsv", {**columns, "idx": index}, f"{glue_dir}.tsv")
    return TaskSpec(name, text_keys, label_names, metrics, glue_dir=glue_dir,
                    description=description, test_splits=(test,),
                    official_sizes={"train": sizes[0], "validation": sizes[1]}, **more)


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        _glue("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"),
              ("matthews_correlation",), "grammatical acceptability (single sentence)",
              (8_551, 1_043), files=FileLayout(
                  _TRAIN_DEV, {"sentence": "sentence", "label": "label"},
                  positional_header=("source", "label", "original_label", "sentence"))),
        _glue("sst2", "SST-2", ("sentence",), ("negative", "positive"), ("accuracy",),
              "movie-review sentiment (single sentence)", (67_349, 872)),
        _glue("mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
              ("f1", "accuracy"), "paraphrase (news pairs)", (3_668, 408),
              columns={"sentence1": "#1 String", "sentence2": "#2 String"}, label="Quality"),
        _glue("stsb", "STS-B", ("sentence1", "sentence2"), (), ("pearson", "spearmanr"),
              "semantic similarity score 0-5 (regression)", (5_749, 1_500), label="score",
              label_range=(0.0, 5.0)),
        _glue("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"),
              ("f1", "accuracy"), "duplicate Quora questions", (363_846, 40_430),
              label="is_duplicate", index="id"),
        TaskSpec("mnli", ("premise", "hypothesis"), NLI3, ("accuracy",),
                 eval_splits=("validation_matched", "validation_mismatched"),
                 glue_dir="MNLI", description="multi-genre natural language inference",
                 files=FileLayout({"train": ("train.tsv",),
                                   "validation_matched": ("dev_matched.tsv",),
                                   "validation_mismatched": ("dev_mismatched.tsv",)},
                                  {**_MNLI_TEXT, "label": "gold_label"}),
                 official_sizes={"train": 392_702, "validation_matched": 9_815,
                                 "validation_mismatched": 9_832},
                 test_splits=tuple(TestSplit(name, path, {**_MNLI_TEXT, "idx": "index"},
                                             submission, ax) for name, path, submission, ax in [
                                       ("test_matched", "MNLI/test_matched.tsv", "MNLI-m.tsv", ""),
                                       ("test_mismatched", "MNLI/test_mismatched.tsv",
                                        "MNLI-mm.tsv", ""),
                                       ("test", "diagnostic/diagnostic.tsv", "AX.tsv", "ax")]),
                 submit_names=True),
        _glue("qnli", "QNLI", ("question", "sentence"), ENTAIL2, ("accuracy",),
              "does the sentence answer the question", (104_743, 5_463), submit_names=True),
        _glue("rte", "RTE", ("sentence1", "sentence2"), ENTAIL2, ("accuracy",),
              "recognising textual entailment", (2_490, 277), submit_names=True),
        _glue("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment"),
              ("accuracy",), "Winograd NLI", (635, 71)),
        TaskSpec("snli", ("premise", "hypothesis"), NLI3, ("accuracy",),
                 eval_splits=("validation", "test"), hub_path="stanfordnlp/snli",
                 glue_dir="SNLI", description="Stanford natural language inference",
                 files=FileLayout({split: (f"snli_1.0_{name}.jsonl", f"snli_1.0_{name}.txt")
                                   for split, name in [("train", "train"), ("validation", "dev"),
                                                       ("test", "test")]},
                                  {"premise": "sentence1", "hypothesis": "sentence2",
                                   "label": "gold_label"}, drop_labels=("-", "")),
                 official_sizes={"train": 549_367, "validation": 9_842, "test": 9_824},
                 sizes_source=SNLI_SIZES_SOURCE),
    ]
}
GLUE_TASKS: tuple[str, ...] = tuple(name for name, t in TASKS.items()
                                    if t.hub_path == "nyu-mll/glue")
OFFICIAL_SIZES: dict[str, dict[str, int]] = {name: TASKS[name].official_sizes
                                             for name in GLUE_TASKS}


class TaskError(ValueError):
    """An unknown task name."""


def get_task(name: str) -> TaskSpec:
    """Look a task up by name (case-insensitive); the error lists the valid names."""
    key = name.lower().replace("-", "")
    if key not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[key]


def search_subset_size(task: str, fraction: float) -> int:
    """`fraction` of the task's official train size (at least 1): the search subset's size."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    sizes = TASKS[task].official_sizes if task in TASKS else {}
    if "train" not in sizes:
        raise ValueError(f"no official size recorded for {task!r}; pass max_train_samples")
    return max(1, round(fraction * sizes["train"]))
