"""Named downloadable assets with SHA-1 checksums, in d2l's `DATA_HUB` habit.

`ASSETS[name]` says where a file lives and what its SHA-1 must be; `download(name)` fetches it
once into a cache folder and verifies the hash before anything uses it; `download_extract(name)`
unpacks a zip next to it. Offline (an `*_OFFLINE` variable set, or the host not answering within
a few seconds) both fail at once with an `AssetError` instead of hanging.

`load_pretrained_bert("bert.small")` returns d2l's pretrained BERT and its vocabulary;
`pretrained_or_random_bert` is what the chapter calls: the pretrained model when one is named,
a randomly initialised one only when none is (`PRETRAINED = None`). A named model that cannot be
fetched, fails its checksum or is laid out unexpectedly stops the chapter with an `AssetError`
that names the file, the URL and the fix: never a silent random init.

`D2L_ASSET_URL` replaces the registry's base URL (a mirror, e.g. the rehearsal's local server);
the registered SHA-1 still applies. A different file needs its hash said explicitly:
`D2L_ASSET_SHA1="bert.small=<sha1>"` (several: comma-separated). `asset_registry()` is the
registry with both applied; every function here looks names up in it by default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..hub import OFFLINE_VARS, offline_reason  # noqa: F401 (re-exported)
from .bert import BERT_CONFIGS, BERTConfig, BERTModel, num_parameters
from .snli import Vocab
from .snli import tokenize as snli_tokenize

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
# The variables that already mean "no network" for the hub (see hub.py), plus one of our own.
CACHE_ENV = "D2L_CACHE_DIR"
ASSET_URL_ENV = "D2L_ASSET_URL"  # base URL instead of DATA_URL (the file names stay)
ASSET_SHA1_ENV = "D2L_ASSET_SHA1"  # "name=sha1[,name=sha1]": the only way to accept another file
EXTRACTED_MARKER = ".extracted-from-sha1"  # in an extracted folder: the SHA-1 of its zip


class AssetError(RuntimeError):
    """An asset that cannot be had or used; the message says which and why."""


class ChecksumError(AssetError):
    """A file whose SHA-1 is not the registered one."""


@dataclass(frozen=True)
class Asset:
    """One downloadable file: where it lives, its SHA-1, and (for BERT zips) its shape."""

    url: str
    sha1: str
    description: str = ""
    bert_config: BERTConfig | None = None
    overridden: str = ""  # which environment variables changed url/sha1 ('' for the registry)

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name


ASSETS: dict[str, Asset] = {
    "bert.small": Asset(DATA_URL + "bert.small.torch.zip",
                        "c72329e68a732bef0452e4b96a1c341c8910f81f",
                        "d2l's small BERT pretrained on WikiText-2",
                        BERT_CONFIGS["bert.small"]),
    "bert.base": Asset(DATA_URL + "bert.base.torch.zip",
                       "225d66f04cae318b841a13d32af3acc165f253ac",
                       "d2l's BERT-base-sized model pretrained on WikiText-2",
                       BERT_CONFIGS["bert.base"]),
}


def sha1_overrides() -> dict[str, str]:
    """`D2L_ASSET_SHA1` as {name: sha1}; an `AssetError` for a malformed value or unknown name."""
    raw = os.environ.get(ASSET_SHA1_ENV, "").strip()
    out = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, sha1 = item.partition("=")
        name, sha1 = name.strip(), sha1.strip().lower()
        if name not in ASSETS or not re.fullmatch("[0-9a-f]{40}", sha1):
            raise AssetError(f"{ASSET_SHA1_ENV}={raw!r}: expected NAME=SHA1 (40 hex digits), "
                             f"comma-separated, NAME one of {', '.join(ASSETS)}; e.g. "
                             f"{ASSET_SHA1_ENV}=bert.small=<sha1 of your bert.small.torch.zip>")
        out[name] = sha1
    return out


def asset_registry() -> dict[str, Asset]:
    """`ASSETS` with `D2L_ASSET_URL` (base URL) and `D2L_ASSET_SHA1` (hashes) applied."""
    base = os.environ.get(ASSET_URL_ENV, "").strip()
    if base and urllib.parse.urlparse(base).scheme not in ("http", "https", "file"):
        raise AssetError(f"{ASSET_URL_ENV}={base!r}: not a URL; give the base URL the zips are "
                         "under, with its scheme (http://HOST/PATH/, https:// or file://)")
    hashes = sha1_overrides()
    out = {}
    for name, asset in ASSETS.items():
        url = base.rstrip("/") + "/" + asset.filename if base else asset.url
        named = [var for var, on in ((ASSET_URL_ENV, base), (ASSET_SHA1_ENV, name in hashes))
                 if on]
        out[name] = replace(asset, url=url, sha1=hashes.get(name, asset.sha1),
                            overridden=", ".join(named))
    return out


def get_asset(name: str, registry: Mapping[str, Asset] | None = None) -> Asset:
    """Look `name` up in `registry` (default: `asset_registry()`, i.e. `ASSETS` with the
    environment's overrides); the error lists the known names."""
    registry = asset_registry() if registry is None else registry
    if name not in registry:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(registry)}")
    return registry[name]


def sha1sum(path: str | os.PathLike) -> str:
    """Hex SHA-1 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def verify_sha1(path: str | os.PathLike, expected: str, hint: str = "") -> None:
    """Raise `ChecksumError` naming the file and both hashes (then `hint`) unless `path` has
    SHA-1 `expected`."""
    if (actual := sha1sum(path)) != expected.lower():
        raise ChecksumError(f"{path}: SHA-1 mismatch (expected {expected}, got {actual}); the "
                            "file is damaged or not the registered one. Delete it and download "
                            f"again. {hint}".rstrip())


def download(name: str, cache_dir: str | os.PathLike | None = None,
             registry: Mapping[str, Asset] | None = None, timeout: float = 3.0) -> Path:
    """The verified local copy of asset `name`, downloaded into `cache_dir` (default:
    `$D2L_CACHE_DIR`, else `~/.cache/d2l_utils`) if not there yet."""
    asset = get_asset(name, registry)
    cache = Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "d2l_utils")
    path = cache / asset.filename
    # what to do about a checksum mismatch (the override only when the file is meant)
    hint = (f"If {asset.url} deliberately serves another {asset.filename} (a mirror or your own "
            f"build), accept its hash explicitly: {ASSET_SHA1_ENV}={name}=<its SHA-1>.")
    if path.exists():  # a cached file is used only if it is the right one
        verify_sha1(path, asset.sha1, hint)
        return path
    if (reason := offline_reason(asset.url, timeout)) is not None:
        raise AssetError(f"cannot download {name!r} from {asset.url}: {reason}. Make the URL "
                         f"reachable (or set {ASSET_URL_ENV} to a server that has "
                         f"{asset.filename}), or put the file at {path} (SHA-1 {asset.sha1}).")
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(asset.url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm.wrapattr(out, "write", total, bytes=False, unit="B", unit_scale=True,
                               desc=f"downloading {name}") as counted:
                shutil.copyfileobj(response, counted, 1 << 20)
        verify_sha1(partial, asset.sha1, f"(downloaded from {asset.url}) {hint}")
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise AssetError(f"downloading {name!r} from {asset.url} failed: {err}") from err
    partial.replace(path)
    return path


def download_extract(name: str, cache_dir: str | os.PathLike | None = None,
                     registry: Mapping[str, Asset] | None = None) -> Path:
    """Download asset `name` (a zip), extract it once, and return the folder with its files.

    A zip holding a single top-level folder (d2l's `bert.small.torch/`) yields that folder.
    """
    archive = download(name, cache_dir, registry)
    asset = get_asset(name, registry)
    target = archive.with_name(archive.name.removesuffix(".zip"))
    marker = target / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text().strip() == asset.sha1:
        return target
    staging = archive.with_name(f".{target.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            root = staging.resolve()
            for member in zf.namelist():  # never write outside the staging folder
                if not (root / member).resolve().is_relative_to(root):
                    raise AssetError(f"{archive}: unsafe path {member!r} in the archive")
            zf.extractall(staging)
    except zipfile.BadZipFile as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise AssetError(f"{archive} (from {asset.url}) is not a readable zip file ({err}); "
                         "delete it and check what the URL serves") from None
    entries = list(staging.iterdir())
    content = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    shutil.rmtree(target, ignore_errors=True)
    content.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(asset.sha1 + "\n")
    return target


BERT_ZIP_FILES = ("vocab.json", "pretrained.params")


def check_bert_layout(folder: Path, archive: Path, asset: Asset) -> None:
    """d2l's BERT zips hold one folder with `vocab.json` and `pretrained.params`, nothing else
    at the top; the extracted `folder` of any other layout (an extra top-level folder, missing
    files) is an `AssetError` naming the file, what it holds and the fix."""
    if all((folder / f).is_file() for f in BERT_ZIP_FILES):
        return
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != EXTRACTED_MARKER)
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} files)" if len(names) > 8 else "")
    expected = ", ".join(f"{folder.name}/{f}" for f in BERT_ZIP_FILES)
    raise AssetError(f"{archive} (from {asset.url}) has an unexpected layout: it holds "
                     f"{shown or 'nothing'}. Delete {archive} and check what {asset.url} "
                     f"serves: d2l's layout is {expected}.")


def load_pretrained_bert(name: str, cache_dir: str | os.PathLike | None = None,
                         dropout: float = 0.1, registry: Mapping[str, Asset] | None = None
                         ) -> tuple[BERTModel, Vocab]:
    """(bert, vocab) from d2l's zip `name`: `vocab.json` and the `pretrained.params` state_dict."""
    asset = get_asset(name, registry)
    if asset.bert_config is None:
        raise AssetError(f"asset {name!r} is not a BERT checkpoint")
    folder = download_extract(name, cache_dir, registry)
    check_bert_layout(folder, folder.with_name(folder.name + ".zip"), asset)
    # a JSON list of tokens, position = id
    vocab = Vocab.from_idx_to_token(json.loads((folder / "vocab.json").read_text("utf-8")))
    bert = BERTModel.from_config(len(vocab), replace(asset.bert_config, dropout=dropout))
    state = torch.load(folder / "pretrained.params", map_location="cpu", weights_only=True)
    if state and all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key.removeprefix("module."): value for key, value in state.items()}
    try:
        bert.load_state_dict(state)
    except RuntimeError as err:
        raise AssetError(f"{folder / 'pretrained.params'} does not fit the {name!r} "
                         f"architecture ({asset.bert_config.describe()}): {err}") from None
    return bert, vocab


@dataclass
class ChapterBERT:
    """The BERT a chapter trains, its vocabulary, and where both came from."""

    bert: BERTModel
    vocab: Vocab
    config: BERTConfig
    pretrained: bool
    message: str
    name: str | None = None
    # text -> tokens as this model's vocabulary expects them: d2l's word split, or the
    # converted checkpoint's own WordPiece tokenizer
    tokenize: Callable[[str], list[str]] = snli_tokenize

    @property
    def label(self) -> str:
        """'bert.small (pretrained)', 'bert.small shape (random init)' or the bare shape."""
        if self.pretrained:
            return f"{self.name} (pretrained)"
        shape = f"{self.name} shape" if self.name else f"{self.config.num_layers}-layer BERT"
        return f"{shape} (random init)"


def pretrained_or_random_bert(name: str | None, corpus: Iterable[Sequence[str]],
                              config: BERTConfig | None = None, min_freq: int = 5,
                              dropout: float = 0.1, cache_dir: str | os.PathLike | None = None,
                              registry: Mapping[str, Asset] | None = None,
                              verbose: bool = True) -> ChapterBERT:
    """d2l's pretrained BERT `name`; a randomly initialised one only when `name` is None.

    A named model that cannot be had (no network, wrong checksum, unexpected zip layout, wrong
    architecture) raises `AssetError` with the file, the URL and the fixes, one of which is
    asking for random init explicitly (`name=None`, the chapter's `PRETRAINED = None`). The
    random-init model has `config`'s shape and a vocabulary built from `corpus` (tokenized
    sentences, read only when needed) with `min_freq`.
    """
    path = huggingface_path(name) if name is not None else None
    tokenize = snli_tokenize  # d2l's word split; a converted checkpoint brings its WordPiece
    if path:  # a Hugging Face BERT checkpoint as chapter 1's `BERTModel`, with its WordPiece
        # vocabulary and tokenizer (the weights are copied through `convert.hf_to_d2l_names`)
        from .convert import bert_from_huggingface, load_tokenizer, wordpiece_vocab

        bert, config = bert_from_huggingface(path, dropout=dropout)
        tokenizer = load_tokenizer(path)
        vocab, tokenize = wordpiece_vocab(tokenizer), tokenizer.tokenize
        message = (f"Converted the Hugging Face BERT {name} into this chapter's BERT "
                   f"({config.describe()}; its own {len(vocab):,}-token WordPiece vocabulary; "
                   f"{num_parameters(bert):,} parameters).")
    elif name is None:
        config = replace(bert_config(name, config, registry), dropout=dropout)
        vocab = Vocab(corpus, min_freq=min_freq)
        bert = BERTModel.from_config(len(vocab), config)
        message = ("RANDOM INITIALISATION, not pretrained: no pretrained model was asked for "
                   f"(PRETRAINED = None). Training a {config.describe()} BERT from scratch with "
                   f"a {len(vocab):,}-token vocabulary built from the training data "
                   f"(min_freq={min_freq}); expect accuracy well below the pretrained model's.")
    else:
        config = replace(bert_config(name, config, registry), dropout=dropout)
        asset = get_asset(name, registry)
        try:
            bert, vocab = load_pretrained_bert(name, cache_dir, dropout, registry)
        except AssetError as err:
            via = f", set by {asset.overridden}" if asset.overridden else ""
            raise type(err)(
                f"{err}\nd2l's pretrained {name} (from {asset.url}{via}) is needed for this "
                f"run. Fix the download as said above, or ask for a randomly initialised BERT "
                f"explicitly: PRETRAINED = None and CONFIG = BERT_CONFIGS[{name!r}] in the "
                "parameter cell (not comparable with d2l's accuracy).") from None
        message = (f"Loaded d2l's pretrained {name} from {asset.url} ({config.describe()}; "
                   f"{len(vocab):,}-token vocabulary; {num_parameters(bert):,} parameters).")
    if verbose:
        print(message)
    return ChapterBERT(bert, vocab, config, name is not None, message, name, tokenize)


# Hugging Face BERT checkpoints chapter 1 can load into its own BERT (`convert.py`): the
# pretrained MiniLM-L6 shipped by pip, or any hub BERT written `hf:<hub id>`.
HF_PREFIX = "hf:"


def huggingface_path(name: str) -> str | None:
    """The checkpoint folder or hub id behind `minilm-l6` / `hf:<hub id>` (names converted from
    Hugging Face, not d2l zips); None for any other name."""
    if name == "minilm-l6":
        from ..backbones import minilm_path

        return minilm_path()
    return name.removeprefix(HF_PREFIX) if name.startswith(HF_PREFIX) else None


def bert_config(name: str | None, config: BERTConfig | None = None,
                registry: Mapping[str, Asset] | None = None) -> BERTConfig:
    """The shape of the model a chapter will train: `config` if given, else the named d2l
    asset's or Hugging Face checkpoint's (read from its config, no weights loaded)."""
    if config is not None:
        return config
    if name is None:
        raise ValueError("give a pretrained `name` or a `config` for the random-init model")
    if path := huggingface_path(name):
        from transformers import AutoConfig

        from .convert import config_from_huggingface

        return config_from_huggingface(AutoConfig.from_pretrained(path))
    return get_asset(name, registry).bert_config

