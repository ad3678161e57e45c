"""Real weights for chapter 1's from-scratch BERT: a Hugging Face BERT checkpoint, renamed.

d2l's BERT and Google's (Hugging Face's `BertModel`) are the same network up to three choices,
which `BERTConfig` exposes with d2l's values as defaults:

* `embedding_norm`: BERT normalises (LayerNorm, then dropout) the summed embeddings; d2l does not.
* `activation`: BERT's feed-forward block uses GELU (the exact erf form); d2l uses ReLU.
* `layer_norm_eps`: BERT's LayerNorms use eps 1e-12; d2l keeps PyTorch's default 1e-5.

With those set as BERT has them, every tensor of the checkpoint has a place in d2l's model under
another name (`hf_to_d2l_names`, the map as data), and the converted encoder computes BERT's last
hidden state (`tests/test_convert.py` checks it to 1e-4). BERT's pooler (Linear + Tanh on the
`[CLS]` vector) becomes d2l's `hidden` layer. d2l's masked-LM and next-sentence heads have no
counterpart in `BertModel` (and d2l's MLM head uses ReLU where BERT's uses GELU), so they keep
their random initialisation; fine-tuning does not use them.

    bert, config = bert_from_huggingface(minilm_path())       # or "bert-base-uncased"
    encoded = bert.encoder(tokens, segments, valid_lens)       # == BertModel(...).last_hidden_state

The vocabulary bridge: the checkpoint's WordPiece vocabulary as chapter 1's `Vocab` (same ids;
`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]` renamed to d2l's `<cls>`, ... so `encode_pair`
works unchanged) and its tokenizer as a text -> tokens function in place of `snli.tokenize`.
Encoded with these, a pair gets the ids, segments and valid length the Hugging Face tokenizer
gives it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .bert import BERTConfig, BERTModel
from .snli import Vocab

# Hugging Face `BertModel` parameter name -> d2l `BERTModel` parameter name. `{i}` is the layer.
EMBEDDING_NAMES: dict[str, str] = {
    "embeddings.word_embeddings.weight": "encoder.token_embedding.weight",
    "embeddings.token_type_embeddings.weight": "encoder.segment_embedding.weight",
    # (max_len, hidden) in BERT, (1, max_len, hidden) in d2l: see `bert_from_huggingface`
    "embeddings.position_embeddings.weight": "encoder.pos_embedding",
    "embeddings.LayerNorm.weight": "encoder.embedding_norm.weight",
    "embeddings.LayerNorm.bias": "encoder.embedding_norm.bias",
}
LAYER_NAMES: dict[str, str] = {  # BertLayer part -> d2l EncoderBlock part, weight and bias each
    f"encoder.layer.{{i}}.{hf}.{kind}": f"encoder.blks.{{i}}.{d2l}.{kind}"
    for hf, d2l in [("attention.self.query", "attention.W_q"),
                    ("attention.self.key", "attention.W_k"),
                    ("attention.self.value", "attention.W_v"),
                    ("attention.output.dense", "attention.W_o"),
                    ("attention.output.LayerNorm", "addnorm1.ln"),
                    ("intermediate.dense", "ffn.dense1"),
                    ("output.dense", "ffn.dense2"),
                    ("output.LayerNorm", "addnorm2.ln")]
    for kind in ("weight", "bias")}
POOLER_NAMES: dict[str, str] = {
    "pooler.dense.weight": "hidden.0.weight",
    "pooler.dense.bias": "hidden.0.bias",
}


class ConversionError(ValueError):
    """The checkpoint is not a BERT that d2l's encoder can represent."""


def hf_to_d2l_names(num_layers: int, pooler: bool = True) -> dict[str, str]:
    """The full name map for a `num_layers`-layer BERT: HF name -> d2l name."""
    names = dict(EMBEDDING_NAMES)
    for i in range(num_layers):
        names.update({hf.format(i=i): d2l.format(i=i) for hf, d2l in LAYER_NAMES.items()})
    if pooler:
        names.update(POOLER_NAMES)
    return names


def config_from_huggingface(hf_config) -> BERTConfig:
    """The `BERTConfig` of a Hugging Face `BertConfig` (with BERT's three choices set)."""
    problems = []
    if getattr(hf_config, "model_type", "bert") != "bert":
        problems.append(f"model_type {hf_config.model_type!r} (need 'bert')")
    if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {hf_config.position_embedding_type!r}")
    if hf_config.type_vocab_size != 2:
        problems.append(f"type_vocab_size {hf_config.type_vocab_size} (d2l has 2 segments)")
    if hf_config.hidden_act not in ("gelu", "relu"):
        problems.append(f"hidden_act {hf_config.hidden_act!r} (d2l's FFN knows relu, gelu)")
    if problems:
        raise ConversionError("cannot convert to d2l's BERT: " + "; ".join(problems))
    return BERTConfig(num_hiddens=hf_config.hidden_size,
                      ffn_num_hiddens=hf_config.intermediate_size,
                      num_heads=hf_config.num_attention_heads,
                      num_layers=hf_config.num_hidden_layers,
                      max_len=hf_config.max_position_embeddings,
                      dropout=hf_config.hidden_dropout_prob,
                      embedding_norm=True, activation=hf_config.hidden_act,
                      layer_norm_eps=hf_config.layer_norm_eps)


def bert_from_huggingface(path_or_model, dropout: float | None = None
                          ) -> tuple[BERTModel, BERTConfig]:
    """d2l's `BERTModel` holding a Hugging Face BERT's weights, and its `BERTConfig`.

    `path_or_model`: a checkpoint folder or hub id (`BertModel.from_pretrained`), or a loaded
    `BertModel` / `BertFor...` model. The vocabulary is the checkpoint's: feed the model ids from
    its own WordPiece tokenizer (`wordpiece_vocab`; `load_tokenizer(...).tokenize` splits text
    into lower-cased `##` pieces). Without a pooler in the checkpoint, `hidden` stays random.
    `dropout` replaces the checkpoint's dropout rate.
    """
    hf = path_or_model
    if isinstance(hf, (str, Path)):
        from transformers import BertModel
        hf = BertModel.from_pretrained(str(hf))
    hf = getattr(hf, "bert", hf)  # the BertModel inside a BertForSequenceClassification etc.
    config = config_from_huggingface(hf.config)
    if dropout is not None:
        config = replace(config, dropout=dropout)
    model = BERTModel.from_config(hf.config.vocab_size, config)
    source = {name: t for name, t in hf.state_dict().items() if not name.endswith("position_ids")}
    names = hf_to_d2l_names(config.num_layers, pooler="pooler.dense.weight" in source)
    missing = sorted(set(names) - set(source))
    unused = sorted(set(source) - set(names))
    if missing or unused:
        raise ConversionError(f"checkpoint and name map disagree: missing {missing[:5]}, "
                              f"unmapped {unused[:5]}")
    target = model.state_dict()
    converted = {}
    for hf_name, d2l_name in names.items():
        tensor = source[hf_name].detach().float()
        if d2l_name == "encoder.pos_embedding":  # (max_len, hidden) -> (1, max_len, hidden)
            tensor = tensor.unsqueeze(0)
        if tensor.shape != target[d2l_name].shape:
            raise ConversionError(f"{hf_name} {tuple(tensor.shape)} does not fit {d2l_name} "
                                  f"{tuple(target[d2l_name].shape)}")
        converted[d2l_name] = tensor
    # strict=False: d2l's MLM / NSP heads (and `hidden` without a pooler) keep their random init
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return model, config


# WordPiece's special tokens under the names chapter 1's pair code (`encode_pair`) uses.
SPECIAL_TOKENS: dict[str, str] = {"[PAD]": "<pad>", "[UNK]": "<unk>", "[CLS]": "<cls>",
                                  "[SEP]": "<sep>", "[MASK]": "<mask>"}


def load_tokenizer(path_or_tokenizer):
    """The checkpoint's Hugging Face tokenizer (a path / hub id, or a tokenizer as it is)."""
    if isinstance(path_or_tokenizer, (str, Path)):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(path_or_tokenizer))
    return path_or_tokenizer


def wordpiece_vocab(path_or_tokenizer) -> Vocab:
    """The checkpoint's vocabulary as chapter 1's `Vocab`: same ids, d2l's special-token names."""
    tokenizer = load_tokenizer(path_or_tokenizer)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ConversionError("the tokenizer's ids are not 0..n-1")
    return Vocab.from_idx_to_token([SPECIAL_TOKENS.get(t, t) for t, _ in by_id])

