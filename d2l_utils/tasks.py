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


def _test(folder: str, columns: dict[str, str], index: str = "index") -> tuple[TestSplit]:
    """The one test split of a GLUE task: FOLDER/test.tsv, submitted as FOLDER.tsv."""
    return (TestSplit("test", f"{folder}/test.tsv", {**columns, "idx": index}, f"{folder}.tsv"),)


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

def _sizes(train: int, validation: int) -> dict[str, int]:
    return {"train": train, "validation": validation}


def _pair(a: str, b: str, label: str = "label") -> dict[str, str]:
    """Columns of a pair task whose file names its text columns as we do (no label: "")."""
    return {a: a, b: b, **({"label": label} if label else {})}


_MNLI_TEXT = {"premise": "sentence1", "hypothesis": "sentence2"}  # MNLI's and the AX file's


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), ("matthews_correlation",),
                 glue_dir="CoLA", description="grammatical acceptability (single sentence)",
                 files=FileLayout(_TRAIN_DEV, {"sentence": "sentence", "label": "label"},
                                  positional_header=("source", "label", "original_label",
                                                     "sentence")),
                 official_sizes=_sizes(8_551, 1_043),
                 test_splits=_test("CoLA", {"sentence": "sentence"})),
        TaskSpec("sst2", ("sentence",), ("negative", "positive"), ("accuracy",),
                 glue_dir="SST-2", description="movie-review sentiment (single sentence)",
                 files=FileLayout(_TRAIN_DEV, {"sentence": "sentence", "label": "label"}),
                 official_sizes=_sizes(67_349, 872),
                 test_splits=_test("SST-2", {"sentence": "sentence"})),
        TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
                 ("f1", "accuracy"), glue_dir="MRPC", description="paraphrase (news pairs)",
                 files=FileLayout(_TRAIN_DEV, {"sentence1": "#1 String",
                                               "sentence2": "#2 String", "label": "Quality"}),
                 official_sizes=_sizes(3_668, 408),
                 test_splits=_test("MRPC", {"sentence1": "#1 String",
                                             "sentence2": "#2 String"})),
        TaskSpec("stsb", ("sentence1", "sentence2"), (), ("pearson", "spearmanr"),
                 glue_dir="STS-B", description="semantic similarity score 0-5 (regression)",
                 files=FileLayout(_TRAIN_DEV, _pair("sentence1", "sentence2", "score")),
                 official_sizes=_sizes(5_749, 1_500), label_range=(0.0, 5.0),
                 test_splits=_test("STS-B", _pair("sentence1", "sentence2", ""))),
        TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"),
                 ("f1", "accuracy"), glue_dir="QQP", description="duplicate Quora questions",
                 files=FileLayout(_TRAIN_DEV, _pair("question1", "question2", "is_duplicate")),
                 official_sizes=_sizes(363_846, 40_430),
                 test_splits=_test("QQP", _pair("question1", "question2", ""), index="id")),
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
        TaskSpec("qnli", ("question", "sentence"), ENTAIL2, ("accuracy",),
                 glue_dir="QNLI", description="does the sentence answer the question",
                 files=FileLayout(_TRAIN_DEV, _pair("question", "sentence")),
                 official_sizes=_sizes(104_743, 5_463),
                 test_splits=_test("QNLI", _pair("question", "sentence", "")),
                 submit_names=True),
        TaskSpec("rte", ("sentence1", "sentence2"), ENTAIL2, ("accuracy",),
                 glue_dir="RTE", description="recognising textual entailment",
                 files=FileLayout(_TRAIN_DEV, _pair("sentence1", "sentence2")),
                 official_sizes=_sizes(2_490, 277),
                 test_splits=_test("RTE", _pair("sentence1", "sentence2", "")),
                 submit_names=True),
        TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"),
                 ("accuracy",), glue_dir="WNLI", description="Winograd NLI",
                 files=FileLayout(_TRAIN_DEV, _pair("sentence1", "sentence2")),
                 official_sizes=_sizes(635, 71),
                 test_splits=_test("WNLI", _pair("sentence1", "sentence2", ""))),
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
