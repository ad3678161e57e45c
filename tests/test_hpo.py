"""Hyperparameter search (Optuna through the Trainer) on the SST-2 fixtures with tiny-bert, and
the helpers around it: the install hint, `apply_best`, the task overview tables."""

import dataclasses
import sys

import matplotlib
import pytest

from d2l_utils.arguments import RunArguments
from d2l_utils.hpo import (
    OptunaMissingError,
    SearchResult,
    SearchSpace,
    TrialResult,
    apply_best,
    hyperparameter_search,
    metric_objective,
    model_initializer,
    require_optuna,
    search_arguments,
)
from d2l_utils.pages.plots import plot_params, plot_trial_history
from d2l_utils.pages.tables import metric_table, task_table
from d2l_utils.tasks import GLUE_TASKS, OFFICIAL_SIZES, search_subset_size

matplotlib.use("Agg")

SPACE = SearchSpace(learning_rate=(1e-4, 1e-3), num_train_epochs=(1, 1),
                    per_device_train_batch_size=(8, 16), warmup_ratio=(0.0, 0.1))


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> SearchResult:
    """One two-trial search for the module: 16 train and 16 dev examples, one epoch a trial."""
    args = RunArguments(task="sst2", tiny=True, progress=False, max_train_samples=16,
                        max_eval_samples=16, output_dir=str(tmp_path_factory.mktemp("search")))
    return hyperparameter_search(args, n_trials=2, space=SPACE)


def test_search_runs_every_trial_inside_the_space(search):
    assert [t.number for t in search.trials] == [0, 1]
    assert (search.task, search.metric, search.split) == ("sst2", "accuracy", "validation")
    assert (search.train_examples, search.eval_examples) == (16, 16)
    for trial in search.trials:
        assert trial.state == "COMPLETE"
        assert set(trial.params) == set(SPACE.table().index)
        assert SPACE.contains(trial.params), trial.params
        assert 0.0 <= trial.objective <= 1.0
        # one evaluation per epoch, and the objective is the last one
        assert len(trial.epoch_values) == trial.params["num_train_epochs"]
        assert trial.objective == trial.epoch_values[-1]


def test_best_is_the_argmax_and_the_result_round_trips(search, tmp_path):
    objectives = [t.objective for t in search.trials]
    assert search.best.objective == max(objectives)
    assert search.best.number == objectives.index(max(objectives))  # first on ties
    table = search.table()
    assert list(table.index) == [0, 1] and table.loc[search.best.number, "best"] == "*"
    assert "tiny smoke run" in search.label
    again = SearchResult.load(search.save(tmp_path))
    assert again.trials == search.trials and again.best == search.best


def test_search_plots_draw(search):
    assert len(plot_trial_history(search).axes) == 2
    assert len(plot_params(search).axes) == len(SPACE.table())


def test_best_is_argmax_also_with_distinct_values():
    trials = [TrialResult(i, "COMPLETE", {}, v) for i, v in enumerate([0.2, 0.7, 0.5])]
    trials.append(TrialResult(3, "PRUNED", {}, None, [0.9]))
    result = SearchResult("cola", "tiny-bert", "matthews_correlation", "validation", "maximize",
                          trials, {}, 1, 1, "tiny", "CPU", 0.0)
    assert result.best.number == 1
    assert [t.number for t in result.completed] == [0, 1, 2]


def test_missing_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    with pytest.raises(OptunaMissingError, match=r"pip install optuna.*\[hpo\]"):
        require_optuna()
    with pytest.raises(ImportError, match="pip install optuna"):
        hyperparameter_search(RunArguments(task="sst2", tiny=True), n_trials=1)


def test_apply_best_maps_trainer_names_to_run_options():
    args = RunArguments(task="cola", tiny=True, trainer="hf", max_train_samples=100,
                        warmup_steps=10)
    best = TrialResult(0, "COMPLETE", {"learning_rate": 3e-5, "num_train_epochs": 4,
                                       "per_device_train_batch_size": 32, "seed": 17,
                                       "warmup_ratio": 0.06}, 0.5)
    new = apply_best(args, best)
    assert (new.lr, new.epochs, new.batch_size, new.seed, new.warmup_ratio) == (
        3e-5, 4.0, 32, 17, 0.06)
    assert isinstance(new.epochs, float) and isinstance(new.batch_size, int)
    assert (new.task, new.trainer, new.max_train_samples) == ("cola", "hf", 100)
    assert new.warmup_steps is None  # the searched ratio is not overridden by the steps
    assert args.lr is None  # the input is not changed
    # the Trainer's BestRun (attribute `hyperparameters`) and plain dicts work too
    from transformers.trainer_utils import BestRun

    assert apply_best(args, BestRun("0", 0.5, {"learning_rate": 1e-4})).lr == 1e-4
    assert apply_best(args, {"lr": 2e-5, "weight_decay": 0.1}).weight_decay == 0.1
    with pytest.raises(ValueError, match="gradient_checkpointing"):
        apply_best(args, {"gradient_checkpointing": True})


def test_search_space_validation_and_membership():
    space = SearchSpace()
    assert space.contains({"learning_rate": 2e-5, "per_device_train_batch_size": 32})
    assert not space.contains({"learning_rate": 1e-3})
    assert not space.contains({"per_device_train_batch_size": 16})
    assert space.table().loc["learning_rate", "sampled"] == "log-uniform"
    with pytest.raises(ValueError, match="learning_rate"):
        SearchSpace(learning_rate=(1e-4, 1e-5))


def test_the_default_space_is_the_bert_papers_glue_search_without_the_seed():
    """Devlin et al. 2019, section 4.1: batch 32, 3 epochs, lr chosen on dev in 2e-5..5e-5.
    The random seed is no hyperparameter: it is never sampled."""
    space = SearchSpace()
    assert (space.learning_rate, space.num_train_epochs,
            space.per_device_train_batch_size) == ((2e-5, 5e-5), (3, 3), (32,))
    assert "seed" not in space.searched() and not hasattr(space, "seed")
    table = space.table()
    assert list(table.index) == ["learning_rate", "num_train_epochs",
                                 "per_device_train_batch_size"]
    assert table.loc["num_train_epochs", "sampled"] == "fixed"
    assert table.loc["num_train_epochs", "values"] == "3"

    class Trial:  # just enough of optuna.Trial for the sampler
        def suggest_float(self, name, low, high, log=False):
            return low

        def suggest_int(self, name, low, high):
            return low

        def suggest_categorical(self, name, choices):
            return choices[0]

    assert space(Trial()) == {"learning_rate": 2e-5, "num_train_epochs": 3,
                              "per_device_train_batch_size": 32}
    assert "warmup_ratio" in SearchSpace(warmup_ratio=(0.0, 0.1))(Trial())


def test_model_init_is_a_function_building_fresh_models():
    run_args = search_arguments(RunArguments(task="sst2", tiny=True, output_dir="unused"))
    from d2l_utils.training import prepare_run

    run = prepare_run(run_args)
    model_init = model_initializer(run)
    first, second = model_init(), model_init()
    assert first is not second and type(first) is type(run.model)
    objective = metric_objective("validation", "accuracy")
    assert objective({"eval_validation_accuracy": 0.75, "eval_validation_loss": 0.1}) == 0.75
    with pytest.raises(KeyError, match="eval_validation_accuracy"):
        objective({"eval_loss": 0.1})


def test_search_arguments_subset_and_output_dir(monkeypatch):
    monkeypatch.delenv("D2L_OUTPUT_DIR", raising=False)  # default runs/ (notebook sessions set it)
    args = search_arguments(RunArguments(task="cola", model="minilm-l6"), train_fraction=0.1,
                            max_eval_samples=500)
    assert args.max_train_samples == 855 and args.max_eval_samples == 500
    assert args.trainer == "hf" and not args.save_model and args.warmup_steps is None
    assert args.output_dir == "runs/cola-full-minilm-l6-search"
    tiny = search_arguments(RunArguments(task="cola", tiny=True), train_fraction=0.1)
    assert tiny.max_train_samples is None  # the fixtures are small already


def test_task_overview_tables():
    table = task_table()
    assert list(table.index) == list(GLUE_TASKS)
    assert table.loc["stsb", "num_labels"] == 1 and table.loc["mnli", "num_labels"] == 3
    assert table.loc["cola", "metrics"].split(", ")[0] == "matthews_correlation"
    assert table.loc["mnli", "dev"] == "9,815 / 9,832"
    assert table.loc["sst2", "train"] == "67,349"
    assert set(metric_table().index) == set(GLUE_TASKS)
    assert search_subset_size("mnli", 0.1) == 39_270
    assert set(OFFICIAL_SIZES) == set(GLUE_TASKS)
    with pytest.raises(ValueError):
        search_subset_size("cola", 0)


def test_trainer_arguments_follow_the_run_options():
    from d2l_utils.training.hf import training_arguments

    args = RunArguments(task="cola", tiny=True, lr=3e-5, batch_size=4, epochs=3,
                        weight_decay=0.1, warmup_ratio=0.2).resolved()
    hf = training_arguments(args, save_strategy="no")
    assert (hf.learning_rate, hf.per_device_train_batch_size, hf.num_train_epochs) == (3e-5, 4, 3)
    assert (hf.weight_decay, hf.get_warmup_steps(100), hf.save_strategy) == (0.1, 20, "no")
    steps = training_arguments(dataclasses.replace(args, warmup_steps=7))
    assert steps.get_warmup_steps(100) == 7  # --warmup-steps wins, as in the library's loop
