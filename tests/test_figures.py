"""The book's architecture figures: expected labels and counts, the SVG tool, reproducible bytes,
the SVGs the package ships."""

from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from d2l_utils.pages.figures import figure_svg, show_figure
from tools import diagrams as figures
from tools import draw_figures as tool
from tools.draw_figures import FIGURES, save_figures

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 60_000


def _count(trainable: int, total: int) -> dict:
    return {"trainable": trainable, "total": total}


# count_parameters of every method with the library defaults (bert-base MNLI, roberta-base CoLA),
# so the tests need not build 14 base-size models; test_overview_counts checks one of them.
COUNTS = {
    "bert-base-uncased": {
        "full": _count(109_484_547, 109_484_547), "freeze": _count(7_680_771, 109_484_547),
        "bitfit": _count(102_915, 109_484_547), "lora": _count(297_219, 109_779_459),
        "prefix": _count(10_465_283, 119_947_523), "ptuning-v2": _count(370_947, 109_853_187),
        "prompt-tuning": _count(17_667, 109_499_907)},
    "roberta-base": {
        "full": _count(124_647_170, 124_647_170), "freeze": _count(7_680_002, 124_647_170),
        "bitfit": _count(102_914, 124_647_170), "lora": _count(887_042, 124_942_082),
        "prefix": _count(10_464_514, 135_110_146), "ptuning-v2": _count(960_770, 125_015_810),
        "prompt-tuning": _count(607_490, 124_662_530)},
}
for _model, _head in (("bert-base-uncased", 2_307), ("roberta-base", 592_130)):
    COUNTS[_model]["full"]["head_params"] = _head


def _joined(fig: Figure) -> str:
    """Every non-empty string drawn on `fig` (boxes, notes, legends, tick labels), a line each."""
    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_text())


def _assert_texts(fig: Figure, *needles: str) -> None:
    text = _joined(fig)
    missing = [n for n in needles if n not in text]
    assert not missing, f"missing {missing} in the figure's texts"


def test_bert_finetuning_labels():
    fig = figures.bert_finetuning()
    assert isinstance(fig, Figure)
    _assert_texts(fig, "[CLS]", "[SEP]", "premise", "hypothesis", "token\nembeddings",
                  "segment\nembeddings", "position\nembeddings", "encoder block", "h[CLS]",
                  "classification head", "entailment", "neutral", "contradiction",
                  "trains in full fine-tuning", "109,484,547")


def test_lora_labels_and_counts():
    fig = figures.lora()
    assert isinstance(fig, Figure)
    _assert_texts(fig, "B = 0 at init", "A   (r × d)", "B   (d × r)", "× α/r", "768 × 768",
                  "2 · r · d = 12,288", "d² = 589,824", "24 × 12,288 = 294,912", "frozen",
                  "trainable")
    # a different rank changes the printed counts
    _assert_texts(figures.lora(r=2), "2 · r · d = 3,072", "r = 2")


def test_prefix_tuning_labels_and_counts():
    fig = figures.prefix_tuning()
    assert isinstance(fig, Figure)
    _assert_texts(fig, "P_k (30)", "P_v (30)", "W_Q", "W_K", "W_V", "MLP (reparametrization)",
                  "prefix embedding P′\n30 × 768", "= 9,872,384",
                  "12 × 2 × 30 × 768 = 552,960", "frozen", "trainable")


def test_ptuning_v2_vs_prompt_tuning_labels_and_counts():
    fig = figures.ptuning_v2_vs_prompt_tuning()
    assert isinstance(fig, Figure)
    text = _joined(fig)
    _assert_texts(fig, "Prompt tuning (shallow)", "P-Tuning v2 (deep)", "20 virtual tokens",
                  "EVERY layer", "no MLP", "20 × 768 = 15,360", "12 × 2 × 20 × 768 = 368,640")
    # a key/value prompt beside each drawn layer of the deep panel, none in the shallow one
    assert text.count("P_k, P_v") == 3
    assert text.count("encoder layer 12") == 2


def test_methods_overview_grid_and_shares():
    fig = tool.methods_overview(COUNTS)
    assert isinstance(fig, Figure)
    labels = [label for _, label in tool.OVERVIEW_METHODS]
    parts = list(tool.OVERVIEW_PARTS)
    _assert_texts(fig, *labels, *parts, "bert-base-uncased (MNLI, 3 labels)",
                  "roberta-base (CoLA, 2 labels)", "297,219  (0.271 %)", "102,914  (0.0826 %)",
                  "109,484,547  (100 %)", "17,667  (0.0161 %)", "trains in part")
    # one bar per method and backbone
    bars = [p for p in fig.axes[1].patches if p.get_width() > 0]
    assert len(bars) == len(labels) * len(COUNTS)


def test_methods_overview_skips_missing_methods():
    fig = tool.methods_overview({"bert-base-uncased": {"lora": COUNTS["bert-base-uncased"]
                                                          ["lora"]}})
    assert "297,219  (0.271 %)" in _joined(fig)
    assert len(fig.axes[1].patches) == 1


def test_overview_counts_match_the_library():
    counts = tool.overview_counts([("bert-base-uncased", "mnli")], methods=["full"])
    full = counts["bert-base-uncased"]["full"]
    assert full["total"] == full["trainable"] == figures.BERT_BASE_MNLI_TOTAL
    assert full["trainable"] == COUNTS["bert-base-uncased"]["full"]["trainable"]


def test_save_figures_writes_small_reproducible_svgs(tmp_path):
    first = save_figures(tmp_path / "a", overview_counts=COUNTS)
    second = save_figures(tmp_path / "b", overview_counts=COUNTS)
    assert [p.name for p in first] == [f"{name}.svg" for name in FIGURES]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        f"{name}.svg" for name in ("bert_finetuning", "lora", "prefix_tuning",
                                   "ptuning_v2_vs_prompt_tuning", "methods_overview"))
    for a, b in zip(first, second):
        data = a.read_bytes()
        assert data == b.read_bytes(), f"{a.name} differs between two runs"
        assert len(data) < MAX_BYTES, f"{a.name} is {len(data):,} bytes"
        assert data.startswith(b"<?xml") and b"<text" in data  # text kept as text
        assert b"<dc:date>" not in data
    assert "B = 0 at init" in (tmp_path / "a" / "lora.svg").read_text(encoding="utf-8")


def test_tool_writes_the_chosen_figures(tmp_path, capsys):
    assert tool.main(["--out-dir", str(tmp_path), "--only", "lora", "prefix_tuning"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora.svg", "prefix_tuning.svg"]
    assert "lora.svg" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main(["--only", "no_such_figure"])
    with pytest.raises(ValueError, match="unknown figures"):
        save_figures(tmp_path, ["no_such_figure"])


def test_committed_figures_are_current(tmp_path):
    """d2l_utils/figures/*.svg match what the code draws (regenerate: tools/draw_figures.py)."""
    for path in save_figures(tmp_path, overview_counts=COUNTS):
        committed = ROOT / "d2l_utils" / "figures" / path.name
        assert committed.exists(), f"{committed} missing: run python tools/draw_figures.py"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed.name} is stale: run python tools/draw_figures.py")


def test_a_chapter_shows_the_shipped_svg():
    """What `show_figure` displays is the committed file, as SVG; a wrong name lists the others."""
    shipped = (ROOT / "d2l_utils" / "figures" / "lora.svg").read_text(encoding="utf-8")
    assert figure_svg("lora") == shipped
    shown = show_figure("lora")._repr_svg_()
    assert shown.startswith("<svg") and "B = 0 at init" in shown
    with pytest.raises(ValueError, match="no figure 'lora2'.*prefix_tuning"):
        figure_svg("lora2")
