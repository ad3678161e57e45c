"""Hyperparameter search with Optuna, through `transformers.Trainer.hyperparameter_search`.

The search runs on a seeded subset of train (and, optionally, dev): `prepare_run` loads and
tokenizes it once, and every trial trains a fresh model from `model_init`, a function that calls
the library's `build_model` (the Trainer seeds it with the run's `seed`; the seed is not searched).
The objective is the task's main metric (`TaskSpec.main_metric`) on its first evaluation split,
computed by `d2l_utils.metrics`, after the trial's last epoch. `apply_best` turns the winner into
`RunArguments` for the full run.

    result = hyperparameter_search(RunArguments(task="cola", tiny=True), n_trials=3)
    record = train(apply_best(RunArguments(task="cola", tiny=True, trainer="hf"), result.best))
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from .arguments import RunArguments
from .methods import build_model
from .profiles import capped, rehearsal_caps
from .tasks import search_subset_size

if TYPE_CHECKING:  # training (datasets, transformers) loads in the search, not on import
    import torch.nn as nn

    from .training.prepare import PreparedRun

SEARCH_FILE = "search.json"

# TrainingArguments field (what the Trainer's search sets) -> RunArguments field
TRAINER_TO_RUN: dict[str, str] = {
    "learning_rate": "lr", "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size", "seed": "seed",
    "warmup_ratio": "warmup_ratio", "weight_decay": "weight_decay",
    "adam_epsilon": "adam_epsilon", "max_grad_norm": "max_grad_norm",
}
_INTEGER_FIELDS = ("batch_size", "seed")
SAMPLED = {"learning_rate": "log-uniform", "num_train_epochs": "integer",
           "per_device_train_batch_size": "categorical", "warmup_ratio": "uniform"}


class OptunaMissingError(ImportError):
    """Optuna is not installed; the message says how to install it."""


def require_optuna():
    """Import Optuna, or fail with the install command instead of a bare ImportError."""
    try:
        import optuna
    except ImportError as err:
        raise OptunaMissingError(
            "hyperparameter search needs Optuna, which is an optional dependency: pip install "
            "optuna   (or install the book's extra: pip install -e '.[hpo]'; the Colab install "
            "cell does this)") from err
    return optuna


# ---------------------------------------------------------------------------------------------
# What is searched


@dataclass(frozen=True)
class SearchSpace:
    """The ranges a search samples, named as `TrainingArguments` fields (inclusive bounds);
    `warmup_ratio=None` leaves the run's own warmup alone.

    The defaults are the BERT paper's GLUE search (Devlin et al. 2019, section 4.1): batch 32,
    3 epochs, and the learning rate chosen on dev between 2e-5 and 5e-5 (the paper tried the
    four values 2, 3, 4 and 5e-5; here it is sampled log-uniformly over that range). The random
    seed is not a hyperparameter and is never searched: choosing the luckiest seed on dev only
    makes the dev score more optimistic.
    """

    learning_rate: tuple[float, float] = (2e-5, 5e-5)
    num_train_epochs: tuple[int, int] = (3, 3)
    per_device_train_batch_size: tuple[int, ...] = (32,)
    warmup_ratio: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("learning_rate", "num_train_epochs", "warmup_ratio"):
            low, high = getattr(self, name) or (0, 0)
            if not low <= high:
                raise ValueError(f"search space {name}: low {low} is above high {high}")
        if self.learning_rate[0] <= 0:
            raise ValueError("search space learning_rate: the log scale needs a positive low")
        if not self.per_device_train_batch_size or min(self.per_device_train_batch_size) < 1:
            raise ValueError("search space per_device_train_batch_size: give positive sizes")

    def __call__(self, trial) -> dict[str, Any]:
        """Optuna's `hp_space`: sample one trial's values (batch sizes capped by
        D2L_MAX_BATCH_SIZE in a rehearsal)."""
        cap = rehearsal_caps().get("max_batch_size")
        batch_sizes = list(dict.fromkeys(capped(size, cap)
                                         for size in self.per_device_train_batch_size))
        values = {
            "learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            "num_train_epochs": trial.suggest_int("num_train_epochs", *self.num_train_epochs),
            "per_device_train_batch_size": trial.suggest_categorical(
                "per_device_train_batch_size", batch_sizes),
        }
        if self.warmup_ratio is not None:
            values["warmup_ratio"] = trial.suggest_float("warmup_ratio", *self.warmup_ratio)
        return values

    def searched(self) -> dict[str, Any]:
        """The dimensions this space samples, as {TrainingArguments field: values}."""
        return {name: values for name, values in asdict(self).items() if values is not None}

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when every value in `params` lies in this space."""
        space = self.searched()
        return all(name in space and (value in space[name] if SAMPLED[name] == "categorical"
                                      else space[name][0] <= value <= space[name][1])
                   for name, value in params.items())

    def table(self) -> pd.DataFrame:
        """The space as a table: parameter, run option, values, how they are sampled."""
        rows = []
        for name, values in self.searched().items():
            fixed = len(set(values)) == 1
            shown = (f"{values[0]:g}" if fixed else ", ".join(map(str, values))
                     if SAMPLED[name] == "categorical" else f"{values[0]:g} .. {values[1]:g}")
            rows.append({"parameter": name, "run option": TRAINER_TO_RUN[name], "values": shown,
                         "sampled": "fixed" if fixed else SAMPLED[name]})
        return pd.DataFrame(rows).set_index("parameter")


# ---------------------------------------------------------------------------------------------
# What a search returns


@dataclass
class TrialResult:
    """One trial: its sampled values, its objective and the main metric after every epoch."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    params: dict[str, Any]
    objective: float | None
    epoch_values: list[float] = field(default_factory=list)
    duration_s: float | None = None


@dataclass
class SearchResult:
    """Every trial of a search, the best one, and where the numbers come from."""

    task: str
    model: str
    metric: str  # main metric name
    split: str  # evaluation split it is measured on
    direction: str
    trials: list[TrialResult]
    space: dict[str, Any]
    train_examples: int
    eval_examples: int
    profile: str
    device: str
    wall_time_s: float
    run_args: dict[str, Any] = field(default_factory=dict)
    finished_at: str = ""

    @property
    def completed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.state == "COMPLETE" and t.objective is not None]

    @property
    def best(self) -> TrialResult:
        """The completed trial with the best objective (lowest number on ties)."""
        if not self.completed:
            raise ValueError("no trial of this search completed")
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(self.completed, key=lambda t: (sign * t.objective, -t.number))

    @property
    def label(self) -> str:
        """Provenance for titles: model, task, data size, profile."""
        tag = "tiny smoke run, not a result" if self.profile == "tiny" else f"{self.profile} run"
        return (f"{self.model} | {self.task} | search on {self.train_examples:,} train / "
                f"{self.eval_examples:,} {self.split} examples | {self.device} | {tag}")

    def table(self) -> pd.DataFrame:
        """One row per trial: objective, sampled values, duration; the best is marked."""
        best = self.best.number if self.completed else None
        rows = [{"trial": t.number, "state": t.state,
                 f"{self.split} {self.metric}": t.objective, **t.params,
                 "duration s": None if t.duration_s is None else round(t.duration_s, 1),
                 "best": "*" if t.number == best else ""} for t in self.trials]
        return pd.DataFrame(rows).set_index("trial")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON (`path` a file or a folder, which gets `search.json`)."""
        path = _search_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SearchResult":
        """Read a result written by `save`."""
        values = json.loads(_search_file(path).read_text())
        values["trials"] = [TrialResult(**t) for t in values["trials"]]
        return cls(**values)


def _search_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / SEARCH_FILE if path.is_dir() or not path.suffix else path


# ---------------------------------------------------------------------------------------------
# The search


def model_initializer(run: PreparedRun) -> Callable[[], nn.Module]:
    """The Trainer's `model_init`: a function (not a model) building a fresh model per trial."""
    return functools.partial(build_model, run.backbone, run.task, run.method)


def metric_objective(split: str, metric: str) -> Callable[[dict[str, float]], float]:
    """The Trainer's `compute_objective`: one metric of one split from its evaluation dict."""
    key = f"eval_{split}_{metric}"

    def objective(metrics: dict[str, float]) -> float:
        if key not in metrics:
            raise KeyError(f"{key} not among the evaluation metrics {sorted(metrics)}")
        return float(metrics[key])

    return objective


def search_arguments(args: RunArguments, train_fraction: float | None = None,
                     max_eval_samples: int | None = None) -> RunArguments:
    """The run options of a search: a train subset (a fraction of the official size, or
    `args.max_train_samples`), the HF trainer, no saved weights, its own output folder."""
    # warmup_steps would override the warmup_ratio that the search samples
    updates: dict[str, Any] = {"trainer": "hf", "save_model": False, "save_every_steps": None,
                               "resume": False, "warmup_steps": None}
    if train_fraction is not None and not args.tiny:
        updates["max_train_samples"] = search_subset_size(args.task_spec.name, train_fraction)
    if max_eval_samples is not None:
        updates["max_eval_samples"] = max_eval_samples
    if args.output_dir is None:
        updates["output_dir"] = args.resolved().output_dir + "-search"
    return dataclasses.replace(args, **updates).resolved()


def hyperparameter_search(args: RunArguments, n_trials: int = 10,
                          space: SearchSpace | None = None, train_fraction: float | None = None,
                          max_eval_samples: int | None = None) -> SearchResult:
    """Search `space` with Optuna's TPE sampler for `n_trials`, maximizing the task's main metric.

    The data is `args`'s, cut to `train_fraction` of the task's official train size (ignored in
    the tiny profile, whose fixtures are small already) or to `args.max_train_samples`, and to
    `max_eval_samples` per evaluation split. Pruning is off: trials with different batch sizes
    report at different steps, which the median pruner would compare unfairly.
    """
    from .training.hf import make_trainer, training_arguments
    from .training.prepare import check_output_dir, prepare_run
    from .training.record import device_description, timestamp

    optuna = require_optuna()
    started = time.perf_counter()
    space = space or SearchSpace()
    args = search_arguments(args, train_fraction, max_eval_samples)
    check_output_dir(args.output_dir)
    run = prepare_run(args)
    task = run.task
    split, metric = task.eval_splits[0], task.main_metric
    trainer = make_trainer(run, training_arguments(run.args, save_strategy="no"),
                           model_init=model_initializer(run))
    storage = optuna.storages.InMemoryStorage()
    study_name = f"{task.name}-{args.method}-{args.model}"
    trainer.hyperparameter_search(
        hp_space=space, compute_objective=metric_objective(split, metric), n_trials=n_trials,
        direction="maximize", backend="optuna", storage=storage, study_name=study_name,
        sampler=optuna.samplers.TPESampler(seed=args.seed), pruner=optuna.pruners.NopPruner())
    trials = [TrialResult(t.number, t.state.name, dict(t.params),  # a NaN objective is None
                          t.value if t.value is not None and math.isfinite(t.value) else None,
                          [float(t.intermediate_values[s]) for s in sorted(t.intermediate_values)],
                          None if t.duration is None else t.duration.total_seconds())
              for t in optuna.load_study(study_name=study_name, storage=storage).trials]
    result = SearchResult(
        task=task.name, model=args.model, metric=metric, split=split, direction="maximize",
        trials=trials, space=space.searched(), train_examples=len(run.data["train"]),
        eval_examples=len(run.data[split]), profile=args.profile,
        device=device_description(trainer.args.device),
        wall_time_s=round(time.perf_counter() - started, 3), run_args=asdict(args),
        finished_at=timestamp())
    result.save(args.output_dir)
    return result


def apply_best(args: RunArguments, best: TrialResult | Mapping[str, Any] | Any) -> RunArguments:
    """A copy of `args` with the best trial's values, mapped to `RunArguments` names.

    `best` may be a `TrialResult`, the Trainer's `BestRun` or a plain dict; keys may be Trainer
    names (`learning_rate`) or run option names (`lr`).
    """
    params = getattr(best, "params", None)
    if params is None:
        params = getattr(best, "hyperparameters", best)
    run_fields = {f.name for f in dataclasses.fields(RunArguments)}
    updates: dict[str, Any] = {}
    for name, value in params.items():
        target = TRAINER_TO_RUN.get(name, name)
        if target not in run_fields:
            raise ValueError(f"cannot apply {name!r}: it is neither a searched Trainer argument "
                             f"({', '.join(TRAINER_TO_RUN)}) nor a RunArguments field")
        updates[target] = int(value) if target in _INTEGER_FIELDS else (
            float(value) if isinstance(value, (int, float)) else value)
    if "warmup_ratio" in updates:
        updates.setdefault("warmup_steps", None)  # else --warmup-steps would override it
    return dataclasses.replace(args, **updates)
