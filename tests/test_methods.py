"""Exact trainable-parameter counts of every method, checked against the numbers the original
course notebooks (seeds 000 and 003) report."""

import json

import pytest

from d2l_utils.cli import main
from d2l_utils.pages.references import COURSE_TRAINABLE as COURSE

# The course notebooks' counts (one table, `COURSE_TRAINABLE`) and what else the library counts
SEED_COUNTS = [
    # (command-line options, expected values)
    ("--model bert-base-uncased --task mnli --method freeze --trainable-layers 1",
     {"trainable": COURSE[3]["freeze"], "head_params": 2_307 + 590_592,
      "method_params": 7_087_872}),
    ("--model bert-base-uncased --task mnli --method lora --backend adapters --r 8 --alpha 16",
     {"trainable": COURSE[3]["lora"], "method_params": 294_912, "head_params": 592_899}),
    ("--model bert-base-uncased --task mnli --method prefix --backend adapters "
     "--prefix-length 30",
     {"trainable": COURSE[3]["prefix"], "method_params": 9_872_384, "head_params": 592_899}),
    ("--model roberta-base --task cola --method full",
     {"trainable": COURSE[5]["full"], "total": COURSE[5]["full"]}),
    ("--model roberta-base --task cola --method bitfit",
     {"trainable": COURSE[5]["bitfit"], "head_params": 770}),
    ("--model roberta-base --task cola --method lora --backend peft --r 2",
     {"method_params": COURSE[5]["lora r=2"], "total": 124_720_898}),
    ("--model roberta-base --task cola --method lora --backend peft --r 8",
     {"method_params": COURSE[5]["lora r=8"], "total": 124_942_082}),
    ("--model roberta-base --task cola --method lora --backend peft --r 64",
     {"method_params": COURSE[5]["lora r=64"], "total": 127_006_466}),
    ("--model roberta-base --task cola --method lora --backend peft --r 256",
     {"method_params": COURSE[5]["lora r=256"], "total": 134_084_354}),
    # the seed left the head frozen: --head frozen reproduces its trainable count exactly
    ("--model roberta-base --task stsb --method lora --r 8 --head frozen",
     {"trainable": COURSE[5]["lora r=8"], "head_params": 0}),
]


def run_params(capsys, options: str) -> dict:
    assert main(["params", *options.split()]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("options,expected", SEED_COUNTS, ids=[o for o, _ in SEED_COUNTS])
def test_seed_parameter_counts(capsys, options, expected):
    counts = run_params(capsys, options)
    for key, value in expected.items():
        assert counts[key] == value, key
    assert counts["trainable"] == counts["method_params"] + counts["head_params"]


@pytest.mark.parametrize("method,per_token_per_layer", [("ptuning-v2", 2), ("prompt-tuning", 0)])
def test_prompt_methods_count_virtual_tokens(capsys, method, per_token_per_layer):
    counts = run_params(capsys, f"--model bert-base-uncased --task sst2 --method {method} "
                                f"--num-virtual-tokens 20")
    hidden, layers = 768, 12
    expected = 20 * hidden * (per_token_per_layer * layers if per_token_per_layer else 1)
    assert counts["method_params"] == expected
    # BERT's linear head and the pooler it reads, which trains with a training head
    assert counts["head_params"] == hidden * 2 + 2 + hidden * hidden + hidden


def test_peft_prefix_matches_adapters_prefix_size(capsys):
    peft = run_params(capsys, "--model bert-base-uncased --task mnli --method prefix "
                              "--backend peft --prefix-length 30")
    assert peft["method_params"] == 9_872_384  # same MLP reparametrization as adapters


@pytest.mark.parametrize("options,message", [
    ("--task cola --method lora --r 0", "--r must be at least 1"),
    ("--task cola --method full --backend peft", "--backend peft is not available for full"),
    ("--task cola --method freeze --trainable-layers 3 --model tiny-bert",
     "only 2 encoder layers"),
    ("--task cola --method lora --backend adapters --target-modules dense",
     "not supported by the adapters backend"),
])
def test_invalid_method_options_exit_2_with_a_message(capsys, options, message):
    assert main(["params", *options.split()]) == 2
    assert message in capsys.readouterr().err


def test_method_options_are_defined_once_by_the_method_configs():
    """`RunArguments` and `bench` take each method option's default, help and range from the
    method's config; `method_config` checks them with the same words."""
    import dataclasses

    from benchmarks.bench import BenchArguments
    from d2l_utils.arguments import RunArguments
    from d2l_utils.methods import METHODS, MethodError, method_config

    run = {f.name: f for f in dataclasses.fields(RunArguments)}
    bench = {f.name: f for f in dataclasses.fields(BenchArguments)}
    checked = set()
    for cls in METHODS.values():
        for f in dataclasses.fields(cls):
            if f.name in run and f.name != "backend":
                for copy in (run[f.name], bench.get(f.name, run[f.name])):
                    assert copy.metadata == f.metadata, f.name
                    assert copy.default == f.default, f.name
                checked.add(f.name)
    assert checked == {"head", "pooler", "trainable_layers", "r", "alpha", "dropout",
                       "target_modules", "prefix_length", "num_virtual_tokens"}
    assert RunArguments(task="sst2").target_modules == ["query", "value"]
    for name, options, message in [
            ("lora", {"dropout": 1.0}, "--dropout must be at least 0 and less than 1, got 1"),
            ("lora", {"target_modules": []}, "--target-modules: needs at least one value"),
            ("freeze", {"trainable_layers": -1}, "--trainable-layers must be at least 0"),
            ("prompt-tuning", {"num_virtual_tokens": 0}, "--num-virtual-tokens must be at least")]:
        with pytest.raises(MethodError, match=message):
            method_config(name, **options)


@pytest.mark.parametrize("options", ["--task nope", "--task cola --method nope",
                                     "--task cola --head sideways"])
def test_unknown_choices_exit_2_listing_valid_ones(capsys, options):
    with pytest.raises(SystemExit) as info:
        main(["params", *options.split()])
    assert info.value.code == 2
    assert "choose from" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["ptuning-v2", "prefix --backend peft"])
def test_prefix_methods_on_distilbert_fail_before_training(tmp_path, capsys, method):
    """peft feeds these prompts as past key/values, which DistilBERT cannot take: say so before
    any data is loaded, instead of a traceback from inside the forward pass."""
    code = main(["train", "--tiny", "--task", "sst2", "--model", "distilbert-base-uncased",
                 "--random-init", *f"--method {method}".split(), "--output-dir", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "past key/values" in err and "distilbert" in err and "Traceback" not in err


def test_the_pooler_option():
    """BERT's pooler trains wherever the whole head trains, and counts with the head; `pooler`
    trains or freezes it on top of any method: MiniLM-L6 LoRA r=8 with its pooler = 221,953."""
    from d2l_utils.methods import MethodError, method_config, parameter_counts

    default = parameter_counts("minilm-l6", "stsb", method_config("lora", r=8))
    without = parameter_counts("minilm-l6", "stsb", method_config("lora", r=8, pooler="frozen"))
    assert without["trainable"] == 73_728 + 385
    assert default["trainable"] == 73_728 + 384 * 384 + 384 + 385 == 221_953
    assert default["head_params"] == 384 * 384 + 384 + 385  # the pooler counts with the head
    assert default["method_params"] == without["method_params"] == 73_728
    frozen_head = parameter_counts("minilm-l6", "stsb", method_config("lora", r=8, head="frozen"))
    assert frozen_head["trainable"] == 73_728  # a frozen head keeps the pooler as LoRA left it
    frozen = parameter_counts("tiny-bert", "sst2", method_config("freeze", pooler="frozen"))
    freeze = parameter_counts("tiny-bert", "sst2", method_config("freeze"))
    assert freeze["trainable"] - frozen["trainable"] == 64 * 64 + 64
    with pytest.raises(MethodError, match="adapters"):
        method_config("lora", backend="adapters", pooler="train")


def test_adapters_model_keeps_only_the_task_head(tmp_path):
    """A hub checkpoint whose config names a masked-LM architecture (bert-base-uncased's says
    BertForMaskedLM) loads into the `adapters` model with its MLM head as a "default" head.
    Found by the rehearsal (tests/test_rehearsal.py): it was counted as trainable (LoRA 1,510,461
    instead of the seed's 887,811), saved in checkpoints, and made active by a resume (a crash
    on the MLM logits)."""
    from transformers import BertConfig, BertForMaskedLM

    from d2l_utils.backbones import CONFIG_DIR, resolve_backbone
    from d2l_utils.methods import build_model, method_config
    from d2l_utils.tasks import get_task

    BertForMaskedLM(BertConfig.from_json_file(CONFIG_DIR / "tiny-bert.json")).save_pretrained(
        tmp_path / "pretraining-checkpoint")
    backbone = resolve_backbone(str(tmp_path / "pretraining-checkpoint"))
    model = build_model(backbone, get_task("mnli"), method_config("lora", backend="adapters"))
    assert list(model.heads) == ["mnli"] and model.active_head == "mnli"
