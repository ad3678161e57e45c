"""The profile switch (D2L_PROFILE / D2L_TINY) and the rehearsal caps (D2L_MAX_*): parsing,
conflicts, and that every trainer, the banner, the records and the Results page see the caps."""

from __future__ import annotations

import json

import pytest

from d2l_utils import profiles
from d2l_utils.arguments import RunArguments
from d2l_utils.profiles import (
    PROFILES,
    ProfileError,
    apply_caps,
    caps_note,
    choose,
    profile_name,
    profile_precision,
    rehearsal_caps,
    tiny_profile,
)

ALL_ENV = ("D2L_TINY", "D2L_PROFILE", *profiles.CAP_ENV)


@pytest.fixture
def env(monkeypatch):
    """A clean slate: no profile variable and no cap set (the suite runs with D2L_TINY=1)."""
    for var in ALL_ENV:
        monkeypatch.delenv(var, raising=False)

    def set_env(**values):
        for var, value in values.items():
            monkeypatch.setenv(var, value)
    return set_env


@pytest.mark.parametrize("values, expected", [
    ({}, "gpu"),
    ({"D2L_PROFILE": "gpu"}, "gpu"),
    ({"D2L_PROFILE": "cpu"}, "cpu"),
    ({"D2L_PROFILE": " Tiny "}, "tiny"),
    ({"D2L_TINY": "1"}, "tiny"),
    ({"D2L_TINY": "yes", "D2L_PROFILE": "tiny"}, "tiny"),
    ({"D2L_TINY": "0"}, "gpu"),
    ({"D2L_TINY": "false", "D2L_PROFILE": "cpu"}, "cpu"),
    ({"D2L_TINY": ""}, "gpu"),
])
def test_profile_name(env, values, expected):
    env(**values)
    assert profile_name() == expected
    assert tiny_profile() == (expected == "tiny")


def test_conflicting_settings_are_an_error(env):
    env(D2L_TINY="1", D2L_PROFILE="gpu")
    with pytest.raises(ProfileError, match="D2L_TINY=1 .*D2L_PROFILE=gpu.*unset one of them"):
        profile_name()


@pytest.mark.parametrize("value, hint", [("colab", "tiny, cpu, gpu"), ("gpus", "did you mean gpu")])
def test_unknown_profile_is_an_error(env, value, hint):
    env(D2L_PROFILE=value)
    with pytest.raises(ProfileError, match=hint):
        profile_name()


def test_choose(env):
    assert choose(tiny=1, gpu=2) == 2  # gpu is the default
    assert choose(1, 2, cpu=3) == 2
    env(D2L_TINY="1")
    assert choose(tiny=1, gpu=2) == 1 and choose(1, 2, cpu=3) == 1
    env(D2L_TINY="0", D2L_PROFILE="cpu")
    assert choose(1, 2, cpu=3) == 3
    assert choose(1, 2, cpu=None) is None  # None is a value, not "missing"
    with pytest.raises(ProfileError, match="no cpu profile yet"):
        choose(tiny=1, gpu=2)
    env(D2L_PROFILE="gpu")
    with pytest.raises(TypeError, match="gpu"):
        choose(1, cpu=3)  # the gpu profile's value is required
    with pytest.raises(TypeError, match="real"):
        choose(1, real=2, cpu=3)  # its old name is gone: every chapter says gpu=


@pytest.mark.parametrize("native", [True, False])
def test_profile_precision(env, monkeypatch, native):
    from d2l_utils import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert profile_precision() == "auto"  # gpu: the GPU decides
    env(D2L_TINY="1")
    assert profile_precision() == "auto"
    env(D2L_TINY="0", D2L_PROFILE="cpu")
    assert profile_precision() == ("bf16" if native else "no")


def test_run_arguments_profile_and_defaults(env):
    assert set(PROFILES) == {"tiny", "cpu", "gpu"}
    assert RunArguments(task="sst2", tiny=True).profile == "tiny"
    gpu = RunArguments(task="sst2").resolved()
    assert gpu.profile == "gpu" and gpu.model == "bert-base-uncased"
    env(D2L_PROFILE="cpu")
    cpu = RunArguments(task="sst2").resolved()
    assert cpu.profile == "cpu" and cpu.model == "minilm-l6"
    assert RunArguments(task="sst2", model="roberta-base").resolved().model == "roberta-base"


# ---------------------------------------------------------------------------------------------
# caps


def test_rehearsal_caps_parse_and_validate(env):
    assert rehearsal_caps() == {} and caps_note() == ""
    env(D2L_MAX_STEPS="2", D2L_MAX_BATCH_SIZE=" 4 ")
    assert rehearsal_caps() == {"max_steps": 2, "max_batch_size": 4}
    note = caps_note()
    assert "D2L_MAX_STEPS=2" in note and "D2L_MAX_BATCH_SIZE=4" in note and "not results" in note
    for bad in ("0", "-3", "2.5", "two"):
        env(D2L_MAX_EVAL_SAMPLES=bad)
        with pytest.raises(ProfileError, match=f"D2L_MAX_EVAL_SAMPLES='{bad}': must be a "
                                               "positive integer"):
            rehearsal_caps()


CAPS = {"max_steps": 2, "max_eval_samples": 32, "max_batch_size": 4}


def test_apply_caps_loop_and_hf():
    values = {"trainer": "hf", "batch_size": 16, "eval_batch_size": 32, "max_eval_samples": None,
              "max_steps": None, "epochs": 3.0, "train_batches_per_epoch": None}
    out = apply_caps(values, CAPS)
    assert (out["batch_size"], out["eval_batch_size"], out["max_eval_samples"],
            out["max_steps"], out["epochs"]) == (4, 4, 32, 2, 3.0)
    small = apply_caps({**values, "batch_size": 2, "max_eval_samples": 8, "max_steps": 1}, CAPS)
    assert (small["batch_size"], small["max_eval_samples"], small["max_steps"]) == (2, 8, 1)
    assert apply_caps({**values, "save_every_steps": 500}, CAPS)["save_every_steps"] == 2
    assert apply_caps({**values, "save_every_steps": None}, CAPS)["save_every_steps"] is None
    assert apply_caps(values, {}) == values


def test_apply_caps_fastnlp_counts_whole_epochs():
    values = {"trainer": "fastnlp", "batch_size": 32, "eval_batch_size": 64, "epochs": 10.0,
              "max_steps": None, "max_eval_samples": None, "train_batches_per_epoch": None}
    out = apply_caps(values, CAPS)
    assert out["max_steps"] is None  # fastNLP refuses --max-steps
    assert out["train_batches_per_epoch"] == 2 and out["epochs"] == 1.0
    one = apply_caps({**values, "train_batches_per_epoch": 1}, CAPS)
    assert one["train_batches_per_epoch"] == 1 and one["epochs"] == 2.0
    odd = apply_caps({**values, "train_batches_per_epoch": 2}, {"max_steps": 5})
    assert odd["epochs"] == 2.0  # 4 steps: never more than the cap


def test_resolved_arguments_carry_the_caps(env):
    env(D2L_MAX_STEPS="2", D2L_MAX_EVAL_SAMPLES="32", D2L_MAX_BATCH_SIZE="4")
    args = RunArguments(task="sst2", tiny=True, batch_size=16, epochs=3.0).resolved()
    assert (args.max_steps, args.max_eval_samples, args.batch_size, args.eval_batch_size) == (
        2, 32, 4, 4)
    assert args.resolved() == args  # idempotent
    fast = RunArguments(task="sst2", tiny=True, trainer="fastnlp", epochs=10.0).resolved()
    assert fast.max_steps is None and fast.train_batches_per_epoch == 2 and fast.epochs == 1.0


def test_search_space_batch_sizes_are_capped(env):
    from d2l_utils.hpo import SearchSpace

    class Trial:  # records what Optuna was asked to sample from
        def suggest_float(self, name, low, high, log=False):
            return low

        def suggest_int(self, name, low, high):
            return low

        def suggest_categorical(self, name, choices):
            self.choices = choices
            return choices[-1]

    trial = Trial()
    assert SearchSpace(per_device_train_batch_size=(16, 32))(trial)[
        "per_device_train_batch_size"] == 32
    env(D2L_MAX_BATCH_SIZE="4")
    assert SearchSpace(per_device_train_batch_size=(2, 16, 32))(trial)[
        "per_device_train_batch_size"] == 4
    assert trial.choices == [2, 4]


def test_chapter1_loop_is_capped(env, capsys):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from d2l_utils.scratch.training import train_classifier

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 3)
            self.batches: list[int] = []

        def forward(self, tokens, segments, valid_lens):
            if self.training:
                self.batches.append(len(tokens))
            return self.linear(tokens)

    n = 100
    dataset = TensorDataset(torch.randn(n, 3), torch.zeros(n, 3), torch.ones(n),
                            torch.randint(3, (n,)))
    collate = lambda rows: ((torch.stack([r[0] for r in rows]),  # noqa: E731
                             torch.stack([r[1] for r in rows]), torch.stack([r[2] for r in rows])),
                            torch.stack([r[3] for r in rows]))
    loaders = (DataLoader(dataset, 50, shuffle=True, collate_fn=collate),
               DataLoader(dataset, 50, collate_fn=collate))
    net = Net()
    history = train_classifier(net, *loaders, num_epochs=5, plot=False, progress=False)
    assert net.batches == [50, 50] * 5 and len(history["epoch"]) == 5
    env(D2L_MAX_STEPS="3", D2L_MAX_EVAL_SAMPLES="7", D2L_MAX_BATCH_SIZE="4")
    net = Net()
    history = train_classifier(net, *loaders, num_epochs=5, plot=False, progress=False)
    assert net.batches == [4, 4, 4] and history["epoch"] == [1]  # 3 steps, in one epoch
    assert "REHEARSAL CAPS" in capsys.readouterr().out
    env(D2L_MAX_STEPS="30")  # more steps than an epoch has: a second, shorter epoch
    net = Net()
    history = train_classifier(net, *loaders, num_epochs=5, plot=False, progress=False)
    assert history["epoch"] == [1, 2] and net.batches == [4] * 30


# ---------------------------------------------------------------------------------------------
# banner, records, Results page


def test_banner_names_the_profile_and_the_caps(env):
    from d2l_utils.pages.notebook import banner_text, profile_banner

    assert banner_text(a=1).startswith("Profile: GPU")
    env(D2L_PROFILE="cpu", D2L_MAX_STEPS="2")
    text = banner_text(a=1)
    assert text.startswith("Profile: CPU") and "D2L_MAX_STEPS=2" in text and "a = 1" in text
    env(D2L_PROFILE="tiny")
    assert banner_text().startswith("Profile: TINY")
    assert profile_banner() is None  # printed once, not echoed again as the cell's value


def test_capped_run_record_and_results_page(env, tmp_path):
    from d2l_utils.pages.records import committed_records
    from d2l_utils.training import train

    env(D2L_MAX_STEPS="1", D2L_MAX_EVAL_SAMPLES="3", D2L_MAX_BATCH_SIZE="2")
    record = train(RunArguments(task="sst2", tiny=True, save_model=False,
                                output_dir=str(tmp_path / "run"), progress=False))
    assert record["caps"] == {"max_steps": 1, "max_eval_samples": 3, "max_batch_size": 2}
    assert record["steps"] == 1 and record["data"]["eval_examples"] == {"validation": 3}
    assert record["args"]["batch_size"] == 2 and record["profile"] == "tiny"
    results = tmp_path / "results"
    (results / "ch06").mkdir(parents=True)
    ok = {"task": "sst2", "profile": "cpu", "caps": {}}
    (results / "ch06" / "sst2-full-old.json").write_text(json.dumps(ok))
    (results / "ch06" / "sst2-full-gpu.json").write_text(json.dumps({**ok, "profile": "gpu"}))
    (results / "ch06" / "chapter.json").write_text(json.dumps({"chapter": 6, "records": []}))
    read = committed_records("sst2-*", results)
    assert [r["profile"] for r in read] == ["gpu", "cpu"]
    assert read[0]["record_file"] == "ch06/sst2-full-gpu.json"
    assert committed_records(results_dir=results, chapter=6) == read  # no manifest among them
    (results / "ch06" / "sst2-lora-capped.json").write_text(
        json.dumps({**record, "profile": "gpu"}))
    with pytest.raises(ValueError, match="sst2-lora-capped.json: a rehearsal run, capped"):
        committed_records("sst2-*", results)
    assert len(committed_records("sst2-full-*", results)) == 2
    (results / "ch06" / "sst2-lora-capped.json").write_text(
        json.dumps({**ok, "profile": "tiny"}))
    with pytest.raises(ValueError, match="tiny-profile smoke run is not a result"):
        committed_records("sst2-*", results, chapter=6)


def test_committed_records_are_results():
    """Every committed record is a result, and each chapter folder matches its manifest (none
    may be there yet: then nothing is checked)."""
    from d2l_utils.pages.records import chapter_manifest, committed_records, run_name

    records = committed_records()
    assert all(not r.get("caps") and r["profile"] in ("cpu", "gpu") for r in records)
    for chapter in range(1, 7):
        manifest = chapter_manifest(chapter)
        found = committed_records(chapter=chapter)
        if manifest is not None:
            assert manifest["chapter"] == chapter
            assert sorted(manifest["records"]) == sorted(run_name(r) for r in found)
        assert all(r["chapter_run"]["chapter"] == chapter for r in found)


def test_runs_go_to_drive_when_it_is_mounted(monkeypatch, tmp_path):
    """On Colab with Drive mounted, default runs survive a recycled runtime; D2L_OUTPUT_DIR
    wins; elsewhere `runs`."""
    from d2l_utils import arguments

    monkeypatch.delenv("D2L_OUTPUT_DIR", raising=False)
    monkeypatch.setattr(arguments, "DRIVE", tmp_path / "missing")
    assert arguments.runs_root() == "runs"
    monkeypatch.setattr(arguments, "DRIVE", tmp_path)
    monkeypatch.setattr(arguments, "DRIVE_RUNS", tmp_path / "bert-glue-book" / "runs")
    assert arguments.runs_root() == str(tmp_path / "bert-glue-book" / "runs")
    monkeypatch.setenv("D2L_OUTPUT_DIR", str(tmp_path / "mine"))
    assert arguments.runs_root() == str(tmp_path / "mine")
