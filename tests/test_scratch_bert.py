"""The from-scratch BERT (d2l names), the pair inputs, and its training loop."""

import pytest
import torch

from d2l_utils.data import load_task_data
from d2l_utils.scratch.bert import (
    BERT_CONFIGS,
    BERTClassifier,
    BERTConfig,
    BERTModel,
    MultiHeadAttention,
    draw_architecture,
    masked_softmax,
    parameters_without_grad,
)
from d2l_utils.scratch.snli import (
    SNLIBERTDataset,
    Vocab,
    corpus_tokens,
    encode_pair,
    predict_snli,
    tokenize,
    truncate_pair,
)
from d2l_utils.scratch.training import (
    evaluate_accuracy,
    history_row,
    plot_history,
    train_classifier,
    try_all_gpus,
)
from d2l_utils.tasks import get_task

V = 1000  # any vocabulary size; d2l's bert.small vocab.json decides the real one
H, F, MAX_LEN = 256, 512, 512

# Written out from d2l's PyTorch source (d2l/torch.py: BERTModel -> encoder = BERTEncoder with
# token_embedding, segment_embedding, blks[i] = EncoderBlock(attention = MultiHeadAttention
# W_q/W_k/W_v/W_o with use_bias=True, addnorm1.ln, ffn = PositionWiseFFN dense1/dense2,
# addnorm2.ln), pos_embedding; hidden = Sequential(Linear, Tanh); mlm = MaskLM.mlp =
# Sequential(Linear, ReLU, LayerNorm, Linear); nsp = NextSentencePred.output), for bert.small:
# num_hiddens 256, ffn_num_hiddens 512, 4 heads, 2 layers, max_len 512.
EXPECTED_BERT_SMALL = {
    "encoder.pos_embedding": (1, MAX_LEN, H),
    "encoder.token_embedding.weight": (V, H),
    "encoder.segment_embedding.weight": (2, H),
    "encoder.blks.0.attention.W_q.weight": (H, H),
    "encoder.blks.0.attention.W_q.bias": (H,),
    "encoder.blks.0.attention.W_k.weight": (H, H),
    "encoder.blks.0.attention.W_k.bias": (H,),
    "encoder.blks.0.attention.W_v.weight": (H, H),
    "encoder.blks.0.attention.W_v.bias": (H,),
    "encoder.blks.0.attention.W_o.weight": (H, H),
    "encoder.blks.0.attention.W_o.bias": (H,),
    "encoder.blks.0.addnorm1.ln.weight": (H,),
    "encoder.blks.0.addnorm1.ln.bias": (H,),
    "encoder.blks.0.ffn.dense1.weight": (F, H),
    "encoder.blks.0.ffn.dense1.bias": (F,),
    "encoder.blks.0.ffn.dense2.weight": (H, F),
    "encoder.blks.0.ffn.dense2.bias": (H,),
    "encoder.blks.0.addnorm2.ln.weight": (H,),
    "encoder.blks.0.addnorm2.ln.bias": (H,),
    "encoder.blks.1.attention.W_q.weight": (H, H),
    "encoder.blks.1.attention.W_q.bias": (H,),
    "encoder.blks.1.attention.W_k.weight": (H, H),
    "encoder.blks.1.attention.W_k.bias": (H,),
    "encoder.blks.1.attention.W_v.weight": (H, H),
    "encoder.blks.1.attention.W_v.bias": (H,),
    "encoder.blks.1.attention.W_o.weight": (H, H),
    "encoder.blks.1.attention.W_o.bias": (H,),
    "encoder.blks.1.addnorm1.ln.weight": (H,),
    "encoder.blks.1.addnorm1.ln.bias": (H,),
    "encoder.blks.1.ffn.dense1.weight": (F, H),
    "encoder.blks.1.ffn.dense1.bias": (F,),
    "encoder.blks.1.ffn.dense2.weight": (H, F),
    "encoder.blks.1.ffn.dense2.bias": (H,),
    "encoder.blks.1.addnorm2.ln.weight": (H,),
    "encoder.blks.1.addnorm2.ln.bias": (H,),
    "hidden.0.weight": (H, H),
    "hidden.0.bias": (H,),
    "mlm.mlp.0.weight": (H, H),
    "mlm.mlp.0.bias": (H,),
    "mlm.mlp.2.weight": (H,),
    "mlm.mlp.2.bias": (H,),
    "mlm.mlp.3.weight": (V, H),
    "mlm.mlp.3.bias": (V,),
    "nsp.output.weight": (2, H),
    "nsp.output.bias": (2,),
}


def tiny_bert(vocab_size=50, num_hiddens=16, num_layers=1, max_len=32, dropout=0.0):
    return BERTModel(vocab_size, num_hiddens, 2 * num_hiddens, 2, num_layers, dropout, max_len)


@pytest.fixture(scope="module")
def snli():
    return load_task_data(get_task("snli"), tiny=True)


# ------------------------------------------------------------------------------------ model


def test_bert_small_state_dict_has_d2l_names_and_shapes():
    bert = BERTModel.from_config(V, BERT_CONFIGS["bert.small"])
    shapes = {key: tuple(t.shape) for key, t in bert.state_dict().items()}
    assert shapes == EXPECTED_BERT_SMALL
    # ...so a state_dict with exactly d2l's names loads strictly (what pretrained.params holds)
    d2l_state = {key: torch.zeros(shape) for key, shape in EXPECTED_BERT_SMALL.items()}
    assert not bert.load_state_dict(d2l_state, strict=True).missing_keys


def test_bert_base_config_is_d2l_exercise():
    base = BERT_CONFIGS["bert.base"]
    assert (base.num_hiddens, base.ffn_num_hiddens, base.num_heads, base.num_layers) == (
        768, 3072, 12, 12)


def test_state_dict_round_trips_through_torch_save(tmp_path):
    bert = tiny_bert()
    torch.save(bert.state_dict(), tmp_path / "pretrained.params")
    other = tiny_bert()
    other.load_state_dict(torch.load(tmp_path / "pretrained.params", weights_only=True))
    tokens = torch.randint(5, 50, (2, 10))
    segments = torch.zeros_like(tokens)
    bert.eval(), other.eval()
    assert torch.allclose(bert.encoder(tokens, segments, None),
                          other.encoder(tokens, segments, None))


def test_masked_softmax_ignores_keys_beyond_valid_length():
    weights = masked_softmax(torch.randn(2, 3, 4), torch.tensor([2, 4]))
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))
    assert torch.all(weights[0, :, 2:] < 1e-6) and torch.all(weights[1] > 0)


def test_multi_head_attention_shape():
    attention = MultiHeadAttention(16, num_heads=4, dropout=0.0)
    X = torch.randn(3, 7, 16)
    assert attention(X, X, X, torch.tensor([7, 3, 1])).shape == (3, 7, 16)
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, num_heads=4, dropout=0.0)


def test_padding_does_not_change_the_cls_vector():
    bert = tiny_bert().eval()
    tokens = torch.randint(5, 50, (1, 12))
    segments = torch.tensor([[0] * 6 + [1] * 6])
    valid = torch.tensor([8])
    other = tokens.clone()
    other[0, 8:] = torch.randint(5, 50, (4,))  # different content after the valid length
    out_a = bert.encoder(tokens, segments, valid)[:, :8]
    out_b = bert.encoder(other, segments, valid)[:, :8]
    assert torch.allclose(out_a, out_b, atol=1e-5)


def test_segments_and_positions_matter():
    bert = tiny_bert().eval()
    tokens = torch.tensor([[3, 7, 7, 4]])
    a = bert.encoder(tokens, torch.tensor([[0, 0, 0, 0]]), None)
    b = bert.encoder(tokens, torch.tensor([[0, 0, 1, 1]]), None)
    assert not torch.allclose(a, b)
    assert not torch.allclose(a[0, 1], a[0, 2])  # same token, different position
    with pytest.raises(ValueError, match="longer than"):
        bert.encoder(torch.zeros(1, 40, dtype=torch.long), torch.zeros(1, 40, dtype=torch.long),
                     None)


def test_pretraining_heads_shapes():
    bert = tiny_bert()
    tokens = torch.randint(5, 50, (2, 10))
    encoded, mlm, nsp = bert(tokens, torch.zeros_like(tokens), torch.tensor([10, 6]),
                             torch.tensor([[1, 2, 5], [1, 3, 4]]))
    assert encoded.shape == (2, 10, 16) and mlm.shape == (2, 3, 50) and nsp.shape == (2, 2)


def test_classifier_shares_encoder_and_leaves_heads_without_grad():
    bert = tiny_bert()
    net = BERTClassifier(bert, num_classes=3)
    assert net.encoder is bert.encoder and net.hidden is bert.hidden
    tokens = torch.randint(5, 50, (4, 10))
    logits = net(tokens, torch.zeros_like(tokens), torch.tensor([10, 9, 5, 3]))
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert sorted(parameters_without_grad(bert)) == sorted(
        k for k in bert.state_dict() if k.startswith(("mlm.", "nsp.")))


def test_architecture_figure():
    import matplotlib.pyplot as plt

    fig = draw_architecture(BERTConfig(64, 128, 2, 2))
    assert "2 layers" in fig.axes[0].get_title()
    plt.close(fig)


# ------------------------------------------------------------------------------------ inputs


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("A man's dog doesn't run.") == ["a", "man", "'s", "dog", "does", "n't",
                                                     "run", "."]


def test_vocab_like_d2l():
    vocab = Vocab([["b", "a", "b"], ["c", "b", "a"]], min_freq=2)
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>", "b", "a"]
    assert vocab["b"] == 5 and vocab["c"] == vocab.unk == 0
    assert vocab[["a", "zzz"]] == [6, 0] and vocab.to_tokens([5, 6]) == ["b", "a"]
    loaded = Vocab.from_idx_to_token(["<unk>", "<pad>", "x"])
    assert loaded["x"] == 2 and loaded["y"] == 0 and len(loaded) == 3
    with pytest.raises(ValueError, match="<unk>"):
        Vocab.from_idx_to_token(["<pad>", "x"])


@pytest.mark.parametrize("p_len, h_len, max_len, expected", [
    (3, 2, 10, (3, 2)),    # fits: untouched
    (10, 2, 10, (5, 2)),   # only the longer premise loses tokens
    (2, 10, 10, (2, 5)),   # only the longer hypothesis loses tokens
    (6, 6, 10, (4, 3)),    # tie: the hypothesis goes first, then they alternate
    (5, 4, 10, (4, 3)),    # premise trimmed to a tie, then the hypothesis
    (4, 4, 3, (0, 0)),     # nothing but the special tokens fits
])
def test_truncate_pair_trims_the_longer_side(p_len, h_len, max_len, expected):
    p = [f"p{i}" for i in range(p_len)]
    h = [f"h{i}" for i in range(h_len)]
    p2, h2 = truncate_pair(p, h, max_len)
    assert (len(p2), len(h2)) == expected
    assert p2 == p[:len(p2)] and h2 == h[:len(h2)]  # tokens go from the end
    assert len(p2) + len(h2) <= max_len - 3
    assert len(p) == p_len  # the inputs are not modified


def test_tokens_segments_and_padding():
    vocab = Vocab([["a", "b", "c"]])
    ids, segs, valid = encode_pair(["a", "b"], ["c"], vocab, max_len=9)
    assert vocab.to_tokens(ids[:6]) == ["<cls>", "a", "b", "<sep>", "c", "<sep>"]
    assert segs[:6] == [0, 0, 0, 0, 1, 1]
    assert valid == 6 and len(ids) == len(segs) == 9
    assert ids[6:] == [vocab["<pad>"]] * 3 and segs[6:] == [0, 0, 0]
    assert ids[0] == vocab["<cls>"] and vocab.to_tokens(ids[3]) == "<sep>"


def test_snli_dataset_from_task_data(snli):
    vocab = Vocab(corpus_tokens(snli["train"]), min_freq=1)
    ds = SNLIBERTDataset(snli["test"], vocab, max_len=16)
    assert len(ds) == len(snli["test"]) == 12
    (tokens, segments, valid), label = ds[0]
    assert tokens.shape == segments.shape == (16,) and tokens.dtype == torch.long
    assert 0 < int(valid) <= 16 and int(label) == snli["test"][0]["label"]
    assert ds.label_names == ["entailment", "neutral", "contradiction"]
    assert 0 < ds.truncated_fraction() <= 1  # max_len 16 cuts some fixture pairs
    assert 0 < ds.unk_fraction() < 0.5  # test words the training split never had
    assert SNLIBERTDataset(snli["train"], vocab, 16).unk_fraction() == 0
    assert SNLIBERTDataset(snli["test"], Vocab([]), 16).unk_fraction() == 1
    table = ds.example_table(0)
    assert list(table.index) == ["token", "id", "segment", "attended"]
    assert table.loc["token", 0] == "<cls>"


# ------------------------------------------------------------------------------------ training


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and immune to busy CI cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_learns_the_fixtures(snli, one_thread):
    torch.manual_seed(0)
    vocab = Vocab(corpus_tokens(snli["train"]), min_freq=1)
    train = SNLIBERTDataset(snli["train"], vocab, max_len=32)
    net = BERTClassifier(BERTModel(len(vocab), 32, 64, 2, 1, 0.0, max_len=32))
    loader = torch.utils.data.DataLoader(train, batch_size=30, shuffle=True)
    before = evaluate_accuracy(net, loader)
    history = train_classifier(net, loader, loader, num_epochs=25, lr=3e-3,
                               devices=[torch.device("cpu")], plot=False, progress=False)
    assert set(history) >= {"train_loss", "train_acc", "test_acc", "examples_per_sec",
                            "device", "epoch"}
    assert len(history["train_loss"]) == 25
    assert history["train_loss"][-1] < history["train_loss"][0] - 0.3
    assert history["test_acc"][-1] >= max(0.7, before + 0.2)  # "test" = the train set here
    row = history_row(history, run="smoke")
    assert row["run"] == "smoke" and row["epochs"] == 25
    assert row["test acc"] == round(history["test_acc"][-1], 3)
    # predict_snli encodes a pair as the dataset does: the trained net's answer on a training
    # pair is its answer in the loader
    example = snli["train"][0]
    probabilities = predict_snli(net, vocab, example["premise"], example["hypothesis"], 32,
                                 train.label_names)
    assert list(probabilities) == train.label_names
    assert sum(probabilities.values()) == pytest.approx(1.0)
    (tokens, segments, valid), _ = train[0]
    with torch.no_grad():
        logits = net(tokens[None], segments[None], valid[None])
    expected = torch.softmax(logits, dim=-1)[0].tolist()
    assert list(probabilities.values()) == pytest.approx(expected, abs=1e-6)


def test_live_plot_draws_once_outside_notebooks(snli, one_thread):
    import matplotlib.pyplot as plt

    vocab = Vocab(corpus_tokens(snli["train"]), min_freq=1)
    loader = torch.utils.data.DataLoader(SNLIBERTDataset(snli["test"], vocab, 16), batch_size=6)
    net = BERTClassifier(BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=16))
    before = set(plt.get_fignums())
    history = train_classifier(net, loader, loader, num_epochs=3, progress=False)
    drawn = set(plt.get_fignums()) - before
    assert len(drawn) == 1  # nothing drawn per epoch, one figure at the end, left open
    fig = plt.figure(drawn.pop())
    assert [line.get_label() for line in fig.axes[0].lines] == [
        "train loss", "train acc", "test acc"]
    assert fig.axes[0].get_title() == history["device"]
    plt.close(fig)
    plt.close(plot_history(history, title="x"))


def test_devices():
    devices = try_all_gpus()
    assert devices and all(isinstance(d, torch.device) for d in devices)
