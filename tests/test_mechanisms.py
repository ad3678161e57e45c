"""What the chapters' "under the hood" and "look inside" cells show, checked outside the pages:
the literal `TrainingArguments(...)` of chapter 2 equals what the library builds (in every
profile), and the equalities the look-inside cells assert hold on the tiny model."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from tools.notebook_drift import cell_code

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_2 = ROOT / "notebooks" / "02_glue_hf_trainer_hpo.ipynb"


def code_cells(path: Path) -> list[str]:
    """The code cells after the first (the Colab install cell, which holds shell lines)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell_code(c) for c in notebook["cells"] if c["cell_type"] == "code"][1:]


def parameter_cell(path: Path) -> str:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    tagged = [c for c in notebook["cells"]
              if c["cell_type"] == "code" and "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    return cell_code(tagged[0])


def statements_assigning(path: Path, name: str) -> str:
    """The imports and assignments of the one code cell that assigns `name`, up to that one."""
    found = []
    for code in code_cells(path):
        tree = ast.parse(code)
        assigns = [i for i, node in enumerate(tree.body) if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)]
        if assigns:
            kept = [node for node in tree.body[:assigns[0] + 1]
                    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign))]
            found.append("\n".join(ast.get_source_segment(code, node) for node in kept))
    assert len(found) == 1, f"{path.name}: {len(found)} cells assign {name}"
    return found[0]


@pytest.mark.parametrize("profile", ["tiny", "gpu", "gpu, rehearsal caps"])
def test_chapter_2_trainer_arguments_are_the_librarys(profile, monkeypatch, capsys):
    """The page writes `TrainingArguments(...)` out; it must equal `training_arguments(args)`
    for the chapter's own `recipe_args`, field by field, in the tiny and the real profile, and
    under the caps of a rehearsal (D2L_MAX_STEPS & co.)."""
    from d2l_utils.training.hf import training_arguments

    monkeypatch.delenv("D2L_PROFILE", raising=False)
    for var in ("D2L_MAX_STEPS", "D2L_MAX_EVAL_SAMPLES", "D2L_MAX_BATCH_SIZE"):
        monkeypatch.delenv(var, raising=False)
    if profile == "tiny":
        monkeypatch.setenv("D2L_TINY", "1")
    else:
        monkeypatch.delenv("D2L_TINY", raising=False)
    if "caps" in profile:
        monkeypatch.setenv("D2L_MAX_STEPS", "2")
        monkeypatch.setenv("D2L_MAX_BATCH_SIZE", "4")
    namespace: dict = {"torch": torch}  # imported by an earlier cell of the chapter
    exec(parameter_cell(CHAPTER_2), namespace)
    exec(statements_assigning(CHAPTER_2, "recipe_args"), namespace)
    exec(statements_assigning(CHAPTER_2, "training_args"), namespace)
    page = namespace["training_args"].to_dict()
    library = training_arguments(namespace["recipe_args"].resolved()).to_dict()
    assert set(page) == set(library)
    differences = {k: (v, library[k]) for k, v in page.items()
                   if k != "logging_dir" and library[k] != v}
    assert not differences
    assert page["save_strategy"] == ("no" if profile == "tiny" else "steps")
    if "caps" in profile:
        assert (page["max_steps"], page["per_device_train_batch_size"]) == (2, 4)


def test_the_trainer_arguments_check_can_fail(monkeypatch):
    """A changed value in the page is a difference the comparison reports."""
    from d2l_utils.training.hf import training_arguments

    monkeypatch.setenv("D2L_TINY", "1")
    monkeypatch.delenv("D2L_PROFILE", raising=False)
    namespace: dict = {"torch": torch}  # imported by an earlier cell of the chapter
    exec(parameter_cell(CHAPTER_2), namespace)
    exec(statements_assigning(CHAPTER_2, "recipe_args"), namespace)
    code = statements_assigning(CHAPTER_2, "training_args")
    assert "save_total_limit=options.keep_checkpoints" in code
    exec(code.replace("save_total_limit=options.keep_checkpoints", "save_total_limit=3"),
         namespace)
    page = namespace["training_args"].to_dict()
    library = training_arguments(namespace["recipe_args"].resolved()).to_dict()
    assert page["save_total_limit"] != library["save_total_limit"]


# ---------------------------------------------------------------------------------------------
# The look-inside cells' equalities (chapters 3 to 5), on the tiny model


def test_trainable_table_freeze_trains_the_last_layer_pooler_and_head():
    from d2l_utils.pages.look_inside import tiny_model, trainable_table

    table = trainable_table({"full": tiny_model("mnli", "full"),
                             "freeze": tiny_model("mnli", "freeze", trainable_layers=1),
                             "bitfit": tiny_model("mnli", "bitfit")})
    frozen = table["freeze"].str.startswith("0 /")
    assert frozen["embeddings"] and frozen["encoder.layer.0.attention"]
    assert not frozen[["encoder.layer.1.attention", "encoder.layer.1.output", "pooler",
                       "classifier"]].any()
    assert (table["full"].map(lambda v: v.split(" / ")[0] == v.split(" / ")[1])).all()
    # BitFit: in a module with weights, only the biases train
    trained, total = (int(n.replace(",", "")) for n in
                      table.loc["encoder.layer.0.attention", "bitfit"].split(" / "))
    assert 0 < trained < total and trained == 4 * 64 + 64  # q, k, v, output + LayerNorm bias


@pytest.mark.parametrize("backend", ["adapters", "peft"])
def test_lora_b_starts_at_zero_so_the_model_starts_as_the_base_model(backend):
    from d2l_utils.pages.look_inside import parameter_shapes, tiny_batch, tiny_model

    lora = tiny_model("mnli", "lora", backend=backend, r=8, alpha=16)
    shapes = parameter_shapes(lora, "lora_")
    a = shapes[shapes.index.str.contains("lora_A")]
    b = shapes[shapes.index.str.contains("lora_B")]
    assert len(a) == len(b) == 2 * 2  # query and value in 2 layers
    assert set(a["shape"]) == {(8, 64)} and set(b["shape"]) == {(64, 8)}
    assert b["all zeros"].all() and not a["all zeros"].any()
    batch = tiny_batch("mnli")
    with torch.no_grad():
        with_lora = lora(**batch).logits
        if backend == "peft":
            with lora.disable_adapter():
                without = lora(**batch).logits
        else:
            lora.set_active_adapters(None)
            without = lora(**batch).logits
    assert torch.equal(with_lora, without)


@pytest.mark.parametrize("method, options, prefix", [
    ("prefix", {"backend": "adapters", "prefix_length": 30}, 30),
    ("prefix", {"backend": "peft", "prefix_length": 12}, 12),
    ("ptuning-v2", {"num_virtual_tokens": 20}, 20),
])
def test_prefix_methods_add_keys_values_and_mask_columns_in_every_layer(method, options, prefix):
    from d2l_utils.pages.look_inside import prefix_shapes, tiny_batch, tiny_model

    batch = tiny_batch("mnli")
    length = batch["input_ids"].shape[1]
    shapes = prefix_shapes(tiny_model("mnli", method, **options), batch)
    assert list(shapes.index) == [0, 1]  # one row per layer of the tiny model
    for _, row in shapes.iterrows():
        assert row["prefix keys"] == row["prefix values"] == (2, 2, prefix, 32)
        assert row["keys in attention"] == (2, 2, prefix + length, 32)
        assert row["attention mask"][-1] == prefix + length


def test_prompt_tuning_moves_cls_to_position_20_and_the_pooler_reads_virtual_token_0():
    from d2l_utils.pages.look_inside import encoder_inputs, tiny_batch, tiny_model

    batch = tiny_batch("sst2")
    length = batch["input_ids"].shape[1]
    model = tiny_model("sst2", "prompt-tuning", num_virtual_tokens=20)
    seen = encoder_inputs(model, batch)
    assert seen["inputs_embeds"].shape == (2, 20 + length, 64)
    assert seen["attention_mask"].shape == seen["token_type_ids"].shape == (2, 20 + length)
    assert torch.equal(seen["inputs_embeds"][:, 20],
                       model.word_embeddings(batch["input_ids"][:, 0]))  # [CLS]
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        bert = model.get_base_model()
        pool = bert.bert.pooler
        head = lambda h: bert.classifier(pool.activation(pool.dense(h)))  # noqa: E731
        assert hidden.shape == (2, 20 + length, 64)
        assert torch.allclose(out.logits, head(hidden[:, 0]), atol=1e-6)
        assert not torch.allclose(out.logits, head(hidden[:, 20]), atol=1e-4)


def test_ptuning_v2_keeps_the_sequence_length():
    from d2l_utils.pages.look_inside import tiny_batch, tiny_model

    batch = tiny_batch("sst2")
    model = tiny_model("sst2", "ptuning-v2", num_virtual_tokens=20)
    cache = model.get_prompt(batch_size=2)
    assert [tuple(k.shape) for k, _ in cache] == [(2, 2, 20, 32)] * 2
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
    assert hidden.shape == (2, batch["input_ids"].shape[1], 64)


def test_a_hand_written_lora_layer_equals_peft_and_merging_keeps_the_outputs():
    import copy

    from d2l_utils.pages.look_inside import tiny_batch, tiny_model
    from d2l_utils.scratch.lora import LoRALinear

    lora = tiny_model("cola", "lora", r=8, alpha=8)
    batch = tiny_batch("cola", n=4)
    lora.train()
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        lora(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    lora.eval()
    merged = copy.deepcopy(lora).merge_and_unload()
    with torch.no_grad():
        assert torch.allclose(lora(**batch).logits, merged(**batch).logits, atol=1e-5)
    query = lora.base_model.model.bert.encoder.layer[0].attention.self.query
    ours = LoRALinear(copy.deepcopy(query.base_layer), r=8, alpha=8)
    assert torch.count_nonzero(ours.lora_B.weight) == 0  # starts as the base layer
    assert not any(p.requires_grad for p in ours.base.parameters())
    with torch.no_grad():
        ours.lora_A.weight.copy_(query.lora_A["default"].weight)
        ours.lora_B.weight.copy_(query.lora_B["default"].weight)
        x = torch.randn(3, 7, 64)
        assert ours.lora_B.weight.abs().max() > 0
        assert ours.scaling == query.scaling["default"] == 1.0
        assert torch.allclose(ours(x), query(x), atol=1e-6)
        assert torch.allclose(ours.merge()(x), ours(x), atol=1e-5)


def test_lora_linear_starts_at_its_base_layer():
    from d2l_utils.scratch.lora import LoRALinear

    base = torch.nn.Linear(16, 12)
    layer = LoRALinear(base, r=4, alpha=8, dropout=0.1).eval()
    x = torch.randn(5, 16)
    assert torch.equal(layer(x), base(x)) and layer.scaling == 2.0
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == [
        "lora_A.weight", "lora_B.weight"]
