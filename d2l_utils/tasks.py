"""The task table: every GLUE task and SNLI described as data, read by the rest of the pipeline.

Column names and label ids follow the Hugging Face hub datasets (`nyu-mll/glue`,
`stanfordnlp/snli`), so the hub, a local GLUE folder and the fixtures all yield the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass


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

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), ("matthews_correlation",),
                 glue_dir="CoLA", description="grammatical acceptability (single sentence)"),
        TaskSpec("sst2", ("sentence",), ("negative", "positive"), ("accuracy",),
                 glue_dir="SST-2", description="movie-review sentiment (single sentence)"),
        TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
                 ("f1", "accuracy"), glue_dir="MRPC", description="paraphrase (news pairs)"),
        TaskSpec("stsb", ("sentence1", "sentence2"), (), ("pearson", "spearmanr"),
                 glue_dir="STS-B", description="semantic similarity score 0-5 (regression)"),
        TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"),
                 ("f1", "accuracy"), glue_dir="QQP", description="duplicate Quora questions"),
        TaskSpec("mnli", ("premise", "hypothesis"), NLI3, ("accuracy",),
                 eval_splits=("validation_matched", "validation_mismatched"),
                 glue_dir="MNLI", description="multi-genre natural language inference"),
        TaskSpec("qnli", ("question", "sentence"), ENTAIL2, ("accuracy",),
                 glue_dir="QNLI", description="does the sentence answer the question"),
        TaskSpec("rte", ("sentence1", "sentence2"), ENTAIL2, ("accuracy",),
                 glue_dir="RTE", description="recognising textual entailment"),
        TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"),
                 ("accuracy",), glue_dir="WNLI", description="Winograd NLI"),
        TaskSpec("snli", ("premise", "hypothesis"), NLI3, ("accuracy",),
                 eval_splits=("validation", "test"), hub_path="stanfordnlp/snli",
                 glue_dir="SNLI", description="Stanford natural language inference"),
    ]
}

class TaskError(ValueError):
    """An unknown task name."""


def get_task(name: str) -> TaskSpec:
    """Look a task up by name (case-insensitive); the error lists the valid names."""
    key = name.lower().replace("-", "")
    if key not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[key]
