"""A BERT written out piece by piece, in the style of d2l's from-scratch chapters.

The pieces, bottom up: scaled dot-product attention that ignores padding (valid lengths),
multi-head attention, add & norm, the position-wise feed-forward network, the encoder block, the
encoder (token + segment + learned position embeddings), the two pretraining heads (masked
language model, next-sentence prediction) and, for fine-tuning, `BERTClassifier`: the encoder,
the hidden Linear+Tanh layer and a new output layer on the `<cls>` vector.

Module and parameter names follow d2l's PyTorch `BERTModel` (`d2l/torch.py` in d2l-ai/d2l-en
and d2l-ai/d2l-zh), so the `pretrained.params` state_dict of d2l's `bert.small` / `bert.base`
zips loads with `load_state_dict` unchanged (`tests/test_scratch_bert.py` checks every name and
shape of bert.small's architecture).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BERTConfig:
    """The shape of a BERT encoder; `vocab_size` comes from the vocabulary it is used with."""

    num_hiddens: int
    ffn_num_hiddens: int
    num_heads: int
    num_layers: int
    max_len: int = 512
    dropout: float = 0.1
    # Where Hugging Face's BERT differs from d2l's; the defaults are d2l's, so its zips load.
    embedding_norm: bool = False  # BERT: LayerNorm (and dropout) after the summed embeddings
    activation: str = "relu"  # the feed-forward block's nonlinearity; BERT: "gelu" (exact, erf)
    layer_norm_eps: float = 1e-5  # BERT: 1e-12

    def describe(self) -> str:
        """One line: layers, hidden size, FFN size, heads, maximum length."""
        return (f"{self.num_layers} layers, {self.num_hiddens} hidden, {self.ffn_num_hiddens} "
                f"FFN, {self.num_heads} heads, max_len {self.max_len}")


# The two architectures of d2l's pretrained zips (d2l's `load_pretrained_model` arguments).
BERT_CONFIGS: dict[str, BERTConfig] = {
    "bert.small": BERTConfig(num_hiddens=256, ffn_num_hiddens=512, num_heads=4, num_layers=2),
    "bert.base": BERTConfig(num_hiddens=768, ffn_num_hiddens=3072, num_heads=12, num_layers=12),
}


def masked_softmax(scores: torch.Tensor, valid_lens: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis that gives zero weight to keys at positions >= valid length.

    `scores`: (batch, ..., num_keys); `valid_lens`: (batch,), one length per sequence.
    Masked scores become -1e6 (as in d2l), so a row with no valid key is uniform, never NaN.
    """
    if valid_lens is None:
        return torch.softmax(scores, dim=-1)
    num_keys = scores.shape[-1]
    keep = torch.arange(num_keys, device=scores.device)[None, :] < valid_lens[:, None]
    keep = keep.reshape(keep.shape[0], *([1] * (scores.dim() - 2)), num_keys)
    return torch.softmax(scores.masked_fill(~keep, -1e6), dim=-1)


class DotProductAttention(nn.Module):
    """Scaled dot-product attention: softmax(Q K^T / sqrt(d)) V, padding keys masked out."""

    def __init__(self, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None  # kept for inspection

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        d = queries.shape[-1]
        scores = queries @ keys.transpose(-2, -1) / math.sqrt(d)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values


class MultiHeadAttention(nn.Module):
    """`num_heads` attentions in parallel on slices of the projected queries, keys and values.

    Names as in d2l: `W_q`, `W_k`, `W_v` project the inputs, `W_o` mixes the concatenated heads.
    BERT uses biases in all four (d2l's `use_bias=True`).
    """

    def __init__(self, num_hiddens: int, num_heads: int, dropout: float, bias: bool = True):
        super().__init__()
        if num_hiddens % num_heads:
            raise ValueError(f"num_hiddens={num_hiddens} is not divisible by "
                             f"num_heads={num_heads}")
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def split_heads(self, X: torch.Tensor) -> torch.Tensor:
        """(batch, steps, num_hiddens) -> (batch, heads, steps, num_hiddens / heads)."""
        return X.reshape(X.shape[0], X.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None) -> torch.Tensor:
        heads = self.attention(self.split_heads(self.W_q(queries)),
                               self.split_heads(self.W_k(keys)),
                               self.split_heads(self.W_v(values)), valid_lens)
        concat = heads.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], -1)
        return self.W_o(concat)


class AddNorm(nn.Module):
    """Residual connection, then layer normalisation: LayerNorm(X + dropout(Y)).

    `eps` is LayerNorm's guard against dividing by zero: 1e-5 in d2l (PyTorch's default), 1e-12
    in Google's BERT.
    """

    def __init__(self, num_hiddens: int, dropout: float, eps: float = 1e-5):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(num_hiddens, eps=eps)

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.ln(self.dropout(Y) + X)


class PositionWiseFFN(nn.Module):
    """The same two-layer MLP applied to every position: dense2(activation(dense1(X))).

    d2l uses ReLU; Google's BERT uses GELU (`activation="gelu"`, the exact erf form).
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, activation: str = "relu"):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation={activation!r}: choose 'relu' (d2l) or 'gelu' (BERT)")
        self.dense1 = nn.Linear(num_hiddens, ffn_num_hiddens)
        self.activation = nn.ReLU() if activation == "relu" else nn.GELU()
        self.dense2 = nn.Linear(ffn_num_hiddens, num_hiddens)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.dense2(self.activation(self.dense1(X)))


class EncoderBlock(nn.Module):
    """One Transformer encoder block: self-attention, add & norm, FFN, add & norm (post-LN)."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 activation: str = "relu", layer_norm_eps: float = 1e-5):
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias=True)
        self.addnorm1 = AddNorm(num_hiddens, dropout, layer_norm_eps)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens, activation)
        self.addnorm2 = AddNorm(num_hiddens, dropout, layer_norm_eps)

    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None) -> torch.Tensor:
        Y = self.addnorm1(X, self.attention(X, X, X, valid_lens))
        return self.addnorm2(Y, self.ffn(Y))


class BERTEncoder(nn.Module):
    """Token + segment + learned position embeddings, then `num_layers` encoder blocks.

    d2l-zh's PyTorch forward reads `pos_embedding.data`, so there the position embeddings never
    receive a gradient; here (as in d2l-en) they are an ordinary trainable parameter.
    `embedding_norm=True` adds Google BERT's LayerNorm and dropout after the summed embeddings
    (d2l has neither; the parameters `embedding_norm.weight/bias` exist only then).
    """

    def __init__(self, vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int,
                 num_layers: int, dropout: float, max_len: int = 512,
                 embedding_norm: bool = False, activation: str = "relu",
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.embedding_norm = (nn.LayerNorm(num_hiddens, eps=layer_norm_eps) if embedding_norm
                               else None)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blks = nn.Sequential()
        for i in range(num_layers):
            self.blks.add_module(f"{i}", EncoderBlock(num_hiddens, ffn_num_hiddens, num_heads,
                                                      dropout, activation, layer_norm_eps))
        self.pos_embedding = nn.Parameter(torch.randn(1, max_len, num_hiddens))

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor,
                valid_lens: torch.Tensor | None) -> torch.Tensor:
        steps, max_len = tokens.shape[1], self.pos_embedding.shape[1]
        if steps > max_len:
            raise ValueError(f"sequences of {steps} tokens are longer than the {max_len} "
                             "positions this encoder has embeddings for")
        X = self.token_embedding(tokens) + self.segment_embedding(segments)
        X = X + self.pos_embedding[:, :steps, :]
        if self.embedding_norm is not None:
            X = self.embedding_dropout(self.embedding_norm(X))
        for blk in self.blks:
            X = blk(X, valid_lens)
        return X


class MaskLM(nn.Module):
    """Masked-language-model head: predicts the vocabulary id at the given positions."""

    def __init__(self, vocab_size: int, num_hiddens: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                                 nn.LayerNorm(num_hiddens), nn.Linear(num_hiddens, vocab_size))

    def forward(self, X: torch.Tensor, pred_positions: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(X.shape[0], device=X.device)[:, None]
        return self.mlp(X[rows, pred_positions])  # (batch, num_predictions, vocab_size)


class NextSentencePred(nn.Module):
    """Next-sentence-prediction head: is segment B the sentence that follows segment A?"""

    def __init__(self, num_hiddens: int):
        super().__init__()
        self.output = nn.Linear(num_hiddens, 2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.output(X)


class BERTModel(nn.Module):
    """The pretraining model: encoder, hidden Linear+Tanh on `<cls>`, MLM and NSP heads."""

    def __init__(self, vocab_size: int, num_hiddens: int, *args, **kwargs):  # BERTEncoder's
        super().__init__()
        self.encoder = BERTEncoder(vocab_size, num_hiddens, *args, **kwargs)
        self.hidden = nn.Sequential(nn.Linear(num_hiddens, num_hiddens), nn.Tanh())
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = NextSentencePred(num_hiddens)

    @classmethod
    def from_config(cls, vocab_size: int, config: BERTConfig) -> "BERTModel":
        """A randomly initialised BERT of `config`'s shape for a vocabulary of `vocab_size`."""
        return cls(vocab_size, **asdict(config))

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor,
                valid_lens: torch.Tensor | None = None,
                pred_positions: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        encoded = self.encoder(tokens, segments, valid_lens)
        mlm_logits = self.mlm(encoded, pred_positions) if pred_positions is not None else None
        nsp_logits = self.nsp(self.hidden(encoded[:, 0, :]))  # position 0 holds <cls>
        return encoded, mlm_logits, nsp_logits


class BERTClassifier(nn.Module):
    """Fine-tuning model: BERT's encoder and hidden layer, plus a new output layer on `<cls>`.

    The MLM and NSP heads are left behind: they only serve the pretraining losses, so nothing
    in a classification loss would reach them.
    """

    def __init__(self, bert: BERTModel, num_classes: int = 3):
        super().__init__()
        self.encoder = bert.encoder
        self.hidden = bert.hidden
        self.output = nn.Linear(bert.hidden[0].out_features, num_classes)

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor,
                valid_lens: torch.Tensor | None) -> torch.Tensor:
        encoded = self.encoder(tokens, segments, valid_lens)
        return self.output(self.hidden(encoded[:, 0, :]))


def num_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in `module`."""
    return sum(p.numel() for p in module.parameters())


def parameters_without_grad(module: nn.Module) -> list[str]:
    """Names of trainable parameters whose `.grad` is None, e.g. heads a loss never reached."""
    return [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]


def draw_architecture(config: BERTConfig | None = None, num_classes: int = 3):
    """A block diagram of `BERTClassifier`: embeddings, encoder blocks, the `<cls>` MLP head."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    config = config or BERT_CONFIGS["bert.small"]
    fig, ax = plt.subplots(figsize=(9, 6.2))
    ax.set(xlim=(0, 10), ylim=(0, 11.4))
    ax.axis("off")

    def box(x, y, w, h, text, color, size=9):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color,
                                    ec="0.3", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color="0.3", lw=1))

    tokens = ["<cls>", "a", "dog", "runs", "<sep>", "an", "animal", "<sep>"]
    segments = [0, 0, 0, 0, 0, 1, 1, 1]
    width = 1.05
    for i, (tok, seg) in enumerate(zip(tokens, segments)):
        x = 0.6 + i * 1.12
        box(x, 0.2, width, 0.55, tok, "#dde8f5" if seg == 0 else "#f9e2c8", 8)
        box(x, 1.15, width, 0.45, f"seg {seg}", "#eeeeee", 7)
        box(x, 1.85, width, 0.45, f"pos {i}", "#eeeeee", 7)
        arrow(x + width / 2, 2.35, x + width / 2, 2.85)
    ax.text(0.05, 0.47, "tokens", fontsize=8, rotation=90, va="center")
    box(0.6, 2.9, 8.9, 0.6, "token embedding + segment embedding + learned position embedding"
        + (", then LayerNorm" if config.embedding_norm else ""), "#e6f2e6")
    arrow(5.05, 3.55, 5.05, 4.0)
    ax.add_patch(FancyBboxPatch((0.5, 4.0), 9.1, 3.5, boxstyle="round,pad=0.1", fc="none",
                                ec="0.5", ls="--"))
    ax.text(9.55, 7.25, f"x {config.num_layers}", ha="right", fontsize=10, weight="bold")
    box(1.5, 4.2, 7.0, 0.55, f"multi-head self-attention ({config.num_heads} heads, "
        "padding masked by valid length)", "#fbe3e3")
    box(1.5, 5.0, 7.0, 0.45, "add & norm", "#f3f3d6")
    box(1.5, 5.7, 7.0, 0.55, f"position-wise FFN ({config.num_hiddens} -> "
        f"{config.ffn_num_hiddens} -> {config.num_hiddens}, {config.activation.upper()})",
        "#fbe3e3")
    box(1.5, 6.5, 7.0, 0.45, "add & norm", "#f3f3d6")
    for y0, y1 in [(4.75, 5.0), (5.45, 5.7), (6.25, 6.5)]:
        arrow(5.0, y0, 5.0, y1)
    arrow(1.1, 7.6, 1.1, 8.2)
    ax.text(1.3, 7.85, "vector at position 0 (<cls>)", fontsize=8)
    box(0.6, 8.2, 4.2, 0.6, f"hidden: Linear({config.num_hiddens}, {config.num_hiddens}) + "
        "Tanh", "#e3ecfb")
    arrow(2.7, 8.85, 2.7, 9.35)
    box(0.6, 9.35, 4.2, 0.6, f"output: Linear({config.num_hiddens}, {num_classes}) - new",
        "#d9f0d9")
    arrow(2.7, 10.0, 2.7, 10.5)
    box(0.6, 10.5, 4.2, 0.6, "entailment / neutral / contradiction", "#ffffff")
    box(5.5, 8.2, 4.0, 1.75, "pretraining heads, unused in fine-tuning:\n"
        "MaskLM (mlm): predicts masked tokens\nNextSentencePred (nsp): is B next after A?",
        "#eeeeee", 8)
    ax.set_title(f"BERTClassifier on a BERT encoder ({config.describe()})", fontsize=10)
    fig.tight_layout()
    return fig
