"""Length-grouped batches (every example once, seeded, little padding, well mixed), gradient
clipping by group (head and pooler | method), and the study behind the sampler's default
(`tools/batching_study.py`). Synthetic lengths, fixtures, tiny models: offline, seconds (the
study's grid, a subprocess per run, about half a minute: marked slow)."""

import json
import math
import random
import statistics

import pytest
import torch
import torch.nn as nn
from datasets import Dataset

from d2l_utils.preprocessing import (
    MEGA_BATCH,
    LengthGroupedBatchSampler,
    choose_mega_batch,
    eval_dataloader,
    length_label_share,
)
from d2l_utils.training.clipping import clip_by_group_, clip_groups

BATCH = 32


def epoch(lengths, seed=0, epoch_=0, **options):
    sampler = LengthGroupedBatchSampler(lengths, BATCH, seed=seed, **options)
    sampler.set_epoch(epoch_)
    return list(sampler)


def padding_tokens(batches, lengths):
    """Pad tokens of an epoch: each batch padded to its longest example."""
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b)
               for b in batches)


def genre_corpus(n=6000, seed=0):
    """STS-B-like (its train file, tokenized): captions (35%, 21.7 +- 5.4 tokens), forum (8%,
    25.3 +- 6.8) and news (57%; half as short as captions, half long: mean 31.9, 75th
    percentile 43), so the long batches are news only when grouping is too sharp."""
    rng = random.Random(seed)
    genres, lengths = [], []
    for _ in range(n):
        genre = rng.choices((0, 1, 2), weights=(35, 8, 57))[0]
        if genre == 2:
            mean, sd = (21, 4) if rng.random() < 0.55 else (45, 14)
        else:
            mean, sd = ((21.7, 5.4), (25.3, 6.8))[genre]
        genres.append(genre)
        lengths.append(max(8, min(128, round(rng.gauss(mean, sd)))))
    return lengths, genres


@pytest.mark.parametrize("n", [1, 31, 32, 1000, 3 * 32 * MEGA_BATCH + 5])
@pytest.mark.parametrize("grouped", [True, False])
def test_every_index_exactly_once_per_epoch(n, grouped):
    lengths = [random.Random(n).randint(3, 120) for _ in range(n)]
    for e in range(3):
        batches = epoch(lengths, seed=7, epoch_=e, group_by_length=grouped)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert len(batches) == len(LengthGroupedBatchSampler(lengths, BATCH)) == -(-n // BATCH)
        assert all(1 <= len(b) <= BATCH for b in batches)


def test_order_depends_only_on_seed_and_epoch():
    lengths, _ = genre_corpus(2000)
    first = epoch(lengths, seed=3, epoch_=1)
    torch.manual_seed(12345)  # the global RNGs play no part
    random.seed(99)
    assert epoch(lengths, seed=3, epoch_=1) == first
    assert epoch(lengths, seed=3, epoch_=2) != first
    assert epoch(lengths, seed=4, epoch_=1) != first
    sampler = LengthGroupedBatchSampler(lengths, BATCH, seed=3)
    list(sampler)  # iterating does not advance anything: set_epoch does
    sampler.set_epoch(1)
    assert list(sampler) == first == list(sampler)


def test_pads_far_less_than_random_batches_on_skewed_lengths():
    rng = random.Random(1)
    lengths = [min(128, max(5, round(rng.lognormvariate(3.0, 0.6)))) for _ in range(8000)]
    grouped, shuffled = epoch(lengths), epoch(lengths, group_by_length=False)
    assert padding_tokens(shuffled, lengths) > 1.5 * sum(lengths)  # 2/3 of the tokens: padding
    assert padding_tokens(grouped, lengths) < 0.5 * padding_tokens(shuffled, lengths)
    # larger mega-batches pad less still (and mix less: the next tests)
    assert padding_tokens(epoch(lengths, mega_batch=50), lengths) < padding_tokens(grouped,
                                                                                 lengths)


def label_mean_spread(batches, labels):
    return statistics.pstdev([statistics.fmean(labels[i] for i in b)
                              for b in batches if len(b) == BATCH])


def test_evaluation_batches_hold_every_example_once_longest_first():
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1000)]
    data = Dataset.from_dict({"length": lengths, "labels": list(range(1000))})
    loader = eval_dataloader(data, 64, lambda rows: rows)
    rows = [row for batch in loader for row in batch]
    assert sorted(r["labels"] for r in rows) == list(range(1000))
    seen = [r["length"] for r in rows]
    assert seen == sorted(lengths, reverse=True)
    batches = [range(i, min(i + 64, 1000)) for i in range(0, 1000, 64)]
    assert padding_tokens(batches, seen) < padding_tokens(batches, lengths) / 4  # file order


def test_batches_mix_labels_that_go_with_length():
    """Labels correlated with length (about +0.3, STS-B has +0.21): the spread of the batch
    label means is not much larger than with random batches (averaged over epochs)."""
    rng = random.Random(2)
    lengths = [rng.randint(8, 60) for _ in range(8000)]
    labels = [1.0 if rng.random() < 0.3 + 0.4 * (n - 8) / 52 else 0.0 for n in lengths]
    assert 0.2 < statistics.correlation(lengths, labels) < 0.4

    def spread(**options):
        return statistics.fmean(label_mean_spread(epoch(lengths, epoch_=e, **options), labels)
                                for e in range(4))

    random_spread = spread(group_by_length=False)
    assert spread() < 1.6 * random_spread
    assert spread() < spread(mega_batch=50)


def test_few_batches_of_one_genre():
    """Where length goes with genre, 50-batch mega-batches (the Trainer's) make one batch in
    six of one genre (>= 90%); the default's batches stay mixed (real STS-B: 16% vs 1%)."""
    lengths, genres = genre_corpus()

    def one_genre_share(**options):
        shares = []
        for e in range(3):
            full = [b for b in epoch(lengths, epoch_=e, **options) if len(b) == BATCH]
            shares.append(sum(max(sum(genres[i] == g for i in b) for g in range(3))
                              >= 0.9 * BATCH for b in full) / len(full))
        return statistics.fmean(shares)

    assert one_genre_share(group_by_length=False) == 0
    assert one_genre_share(mega_batch=50) > 0.12
    assert one_genre_share() < 0.04


def test_the_mega_batch_size_is_chosen_from_the_labels():
    """50 (least padding) where length-sorted batches would still be mixed, 3 where the labels
    go with length; the choice depends only on the data and the batch size."""
    rng = random.Random(3)
    lengths = [rng.randint(8, 60) for _ in range(6000)]
    unrelated = [float(rng.random() < 0.5) for _ in lengths]
    scores = [0.23 * 5 * (n - 8) / 52 + rng.uniform(0, 5) for n in lengths]  # STS-B: 0.05
    three_classes = [float(rng.random() < 0.2 + 0.6 * (n > 34)) + float(rng.random() < 0.3)
                     for n in lengths]
    assert length_label_share(lengths, unrelated) < 0.002
    assert 0.03 < length_label_share(lengths, scores) < 0.08
    assert choose_mega_batch(lengths, unrelated, 32) == 50
    assert choose_mega_batch(lengths, scores, 32) == 3
    assert choose_mega_batch(lengths, scores, 4) == 50  # a small batch is noisy anyway
    assert choose_mega_batch(lengths, three_classes, 32) == 3  # class shares, not class ids
    assert choose_mega_batch(lengths[:100], unrelated[:100], 32) == MEGA_BATCH  # too few
    sampler = LengthGroupedBatchSampler(lengths, 32, labels=scores)
    assert sampler.mega_batch == 3
    assert LengthGroupedBatchSampler(lengths, 32, labels=unrelated).mega_batch == 50
    assert LengthGroupedBatchSampler(lengths, 32, labels=scores, mega_batch=7).mega_batch == 7
    assert LengthGroupedBatchSampler(lengths, 32).mega_batch == MEGA_BATCH == 3


def test_options_are_checked():
    with pytest.raises(ValueError, match="batch-size"):
        LengthGroupedBatchSampler([5, 6], 0)
    with pytest.raises(ValueError, match="mega_batch"):
        LengthGroupedBatchSampler([5, 6], 2, mega_batch=0)


# ---------------------------------------------------------------------------------------------
# Clipping by group


class Toy(nn.Module):
    """The names that matter: an encoder (with LoRA-like and frozen parts), BERT's pooler and
    a classifier head, as a peft-wrapped BERT names them."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.lora_A = nn.Linear(4, 2, bias=False)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.bert = nn.Module()
        self.bert.pooler = nn.Module()
        self.bert.pooler.dense = nn.Linear(4, 4)
        self.classifier = nn.Module()
        self.classifier.modules_to_save = nn.Linear(4, 1)


def set_grads(params, norm):
    """Give `params` gradients of total norm `norm`."""
    count = sum(p.numel() for p in params)
    for p in params:
        p.grad = torch.full_like(p, norm / count ** 0.5)


def total_norm(params):
    return torch.norm(torch.stack([p.grad.norm() for p in params])).item()


def test_groups_are_head_and_pooler_versus_the_method():
    model = Toy()
    groups = clip_groups(model)
    named = {id(p): n for n, p in model.named_parameters()}
    assert sorted(named[id(p)] for p in groups["head"]) == [
        "bert.pooler.dense.bias", "bert.pooler.dense.weight",
        "classifier.modules_to_save.bias", "classifier.modules_to_save.weight"]
    assert sorted(named[id(p)] for p in groups["method"]) == [
        "encoder.bias", "encoder.weight", "lora_A.weight"]  # frozen parameters in neither
    model.encoder.requires_grad_(False)
    model.lora_A.requires_grad_(False)
    assert list(clip_groups(model)) == ["head"]  # no empty groups


def test_each_group_is_clipped_to_max_norm_on_its_own():
    model = Toy()
    groups = clip_groups(model)
    set_grads(groups["head"], 8.0)  # an untrained regression head: large gradients
    set_grads(groups["method"], 0.4)  # LoRA's: small
    norms = clip_by_group_(groups, 1.0)
    assert norms["head"].item() == pytest.approx(8.0, rel=1e-5)
    assert norms["method"].item() == pytest.approx(0.4, rel=1e-5)
    assert total_norm(groups["head"]) == pytest.approx(1.0, rel=1e-4)  # clipped
    assert total_norm(groups["method"]) == pytest.approx(0.4, rel=1e-5)  # untouched
    # one global norm would have divided the method's gradients by ~8 too
    set_grads(groups["head"], 8.0)
    everything = groups["head"] + groups["method"]
    torch.nn.utils.clip_grad_norm_(everything, 1.0)
    assert total_norm(groups["method"]) < 0.06
    # both large: both clipped, each to the limit
    set_grads(groups["head"], 3.0)
    set_grads(groups["method"], 5.0)
    clip_by_group_(groups, 0.5)
    assert total_norm(groups["head"]) == pytest.approx(0.5, rel=1e-4)
    assert total_norm(groups["method"]) == pytest.approx(0.5, rel=1e-4)


def test_the_loop_clips_by_group(tmp_path, monkeypatch):
    """The library loop hands its per-group clipping the groups of the real (peft) model."""
    from d2l_utils.arguments import RunArguments
    from d2l_utils.training import loop as loop_module
    from d2l_utils.training.prepare import prepare_run

    run = prepare_run(RunArguments(task="stsb", method="lora", pooler="train", tiny=True,
                                   max_steps=2, output_dir=str(tmp_path), progress=False,
                                   save_model=False))
    calls, samplers = [], []

    class SpySampler(LengthGroupedBatchSampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            samplers.append(kwargs)

    monkeypatch.setattr(loop_module, "LengthGroupedBatchSampler", SpySampler)

    def spy(groups, max_norm, accelerator=None):
        calls.append(({k: len(v) for k, v in groups.items()}, max_norm))
        return clip_by_group_(groups, max_norm, accelerator)

    monkeypatch.setattr(loop_module, "clip_by_group_", spy)
    loop = loop_module.Loop(run)
    assert samplers[0]["labels"] == run.data["train"]["labels"]  # to choose the mega-batch
    names = {id(p): n for n, p in loop.model.named_parameters()}
    head = [names[id(p)] for p in loop.clip_groups["head"]]
    assert head and all(("classifier" in n or "pooler" in n) for n in head)
    assert any("pooler" in n for n in head)
    assert all("lora_" in names[id(p)] for p in loop.clip_groups["method"])
    loop.run()
    assert len(calls) == 2 and calls[0][1] == 1.0


# ---------------------------------------------------------------------------------------------
# tools/batching_study.py end to end: the shipped fixtures (its default --data-dir), tiny-bert


def study():
    from tools import batching_study

    return batching_study


def table_rows(text):
    """The data rows of a markdown table in `text` (header and rule left out)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_the_padding_study_measures_every_candidate(tmp_path, capsys):
    module = study()
    rows_path = tmp_path / "rows.jsonl"
    assert module.main(["padding", "--model", "tiny-bert", "--batch-size", "4", "--tasks",
                        "stsb", "sst2", "--seeds", "1", "2", "--json", str(rows_path)]) == 0
    out = capsys.readouterr().out
    names = list(module.candidates(4))
    assert len(names) == 11 and names[:2] == ["random", "default (chosen)"]
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    assert [(r["task"], r["candidate"]) for r in rows] == [(t, n) for t in ("stsb", "sst2")
                                                           for n in names]
    assert [row[:2] for row in table_rows(out)] == [[r["task"], r["candidate"]] for r in rows]
    for row in rows:
        assert 0 <= row["padding_share"] < 1
        assert math.isfinite(row["label_spread_vs_random"]) and row["label_spread_vs_random"] > 0
        assert ("genre_spread_vs_random" in row) == (row["task"] == "stsb")  # STS-B's genres
        if row["candidate"] == "random":
            assert row["padded_tokens_vs_random"] == row["label_spread_vs_random"] == 1.0
        else:  # grouping by length pads no more than random batches
            assert row["padded_tokens_vs_random"] <= 1.0
    assert "stsb: 28 examples" in out and "chosen mega-batch at batch 4" in out


def test_the_table_without_runs_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study().main(["table", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert f"no {tmp_path / 'runs.jsonl'}" in capsys.readouterr().err


@pytest.mark.slow  # two training runs, each in a fresh Python: 25-40 s on two busy cores
def test_the_grid_trains_each_batching_and_tabulates_them(tmp_path, capsys):
    """1 task x 1 method x 1 seed x 2 batchings, two optimizer steps each: the JSON lines, the
    table, no leftover claims or checkpoints; a second `grid` finds the runs done."""
    module = study()
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = ["grid", "--model", "tiny-bert", "--batch-size", "4", "--tasks", "stsb",
            "--methods", "lora", "--seeds", "1", "--train-options=--max-steps 2",
            "--out", str(out), "--runs-dir", str(runs)]
    assert module.main(argv) == 0
    lines = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [(r["name"], r["batching"]) for r in lines] == [
        ("stsb-lora-grouped-s1", "grouped"), ("stsb-lora-random-s1", "random")]
    for line in lines:
        assert (line["task"], line["method"], line["seed"], line["model"]) == (
            "stsb", "lora", 1, "tiny-bert")
        assert line["metric"] == "pearson" and math.isfinite(line["score"])
        assert line["options"][-2:] == ["--max-steps", "2"]
        assert line["train_time_s"] > 0 and line["examples_per_s"] > 0
        assert line["trainable"] > 0 and len(line["per_epoch"]) >= 1
        record = json.loads((runs / line["name"] / "record.json").read_text())
        assert record["args"]["model"] == "tiny-bert" and record["args"]["batch_size"] == 4
        assert record["args"]["group_by_length"] == (line["batching"] == "grouped")
        assert not (runs / line["name"] / module.CHECKPOINTS).exists()
    assert list((out / "claims").iterdir()) == []
    table = (out / "table.md").read_text()
    [row] = table_rows(table)
    assert row[:3] == ["stsb", "lora", "pearson"] and row[-2] == "1"
    capsys.readouterr()
    assert module.main(["table", "--out", str(out)]) == 0
    assert capsys.readouterr().out == table
    assert module.main(argv) == 0  # nothing left to run: no new lines
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2
    assert "[run]" not in capsys.readouterr().out
