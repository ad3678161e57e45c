"""Named downloadable assets with SHA-1 checksums, in d2l's `DATA_HUB` habit.

`ASSETS[name]` says where a file lives and what its SHA-1 must be; `download(name)` fetches it
once into a cache folder and verifies the hash before anything uses it; `download_extract(name)`
unpacks a zip next to it. Offline (an `*_OFFLINE` variable set, or the host not answering within
a few seconds) both fail at once with an `AssetError` instead of hanging.

`load_pretrained_bert("bert.small")` returns d2l's pretrained BERT and its vocabulary;
`pretrained_or_random_bert` is what the chapter calls: the pretrained model when it can be had,
otherwise a randomly initialised one of the same shape, and it says which.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..hub import OFFLINE_VARS, offline_reason  # noqa: F401 (re-exported)
from .bert import BERT_CONFIGS, BERTConfig, BERTModel, count_parameters
from .snli import Vocab

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
# The variables that already mean "no network" for the hub (see hub.py), plus one of our own.
CACHE_ENV = "D2L_CACHE_DIR"


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


def default_cache_dir() -> Path:
    """`$D2L_CACHE_DIR`, else `~/.cache/d2l_utils`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "d2l_utils")


def get_asset(name: str, registry: Mapping[str, Asset] | None = None) -> Asset:
    """Look `name` up in `registry` (default `ASSETS`); the error lists the known names."""
    registry = ASSETS if registry is None else registry
    if name not in registry:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(registry)}")
    return registry[name]


def sha1sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-1 of a file, read in chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha1(path: str | os.PathLike, expected: str) -> None:
    """Raise `ChecksumError` naming the file and both hashes unless `path` has SHA-1 `expected`."""
    actual = sha1sum(path)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: SHA-1 mismatch (expected {expected}, got {actual}); the "
                            "file is damaged or not the registered one. Delete it and download "
                            "again.")


def download(name: str, cache_dir: str | os.PathLike | None = None,
             registry: Mapping[str, Asset] | None = None, timeout: float = 3.0) -> Path:
    """The verified local copy of asset `name`, downloaded into `cache_dir` if not there yet."""
    asset = get_asset(name, registry)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / asset.filename
    if path.exists():
        verify_sha1(path, asset.sha1)  # a cached file is used only if it is the right one
        return path
    reason = offline_reason(asset.url, timeout)
    if reason is not None:
        raise AssetError(f"cannot download {name!r} from {asset.url}: {reason}. To use it "
                         f"offline, put the file at {path} (SHA-1 {asset.sha1}).")
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        _fetch(asset.url, partial, desc=name)
        verify_sha1(partial, asset.sha1)
    except ChecksumError as err:
        partial.unlink(missing_ok=True)
        raise ChecksumError(f"downloaded {asset.url} -> {err}") from None
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise AssetError(f"downloading {name!r} from {asset.url} failed: {err}") from err
    partial.replace(path)
    return path


def _fetch(url: str, target: Path, desc: str) -> None:
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {desc}") as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def download_extract(name: str, cache_dir: str | os.PathLike | None = None,
                     registry: Mapping[str, Asset] | None = None, timeout: float = 3.0) -> Path:
    """Download asset `name` (a zip), extract it once, and return the folder with its files.

    A zip holding a single top-level folder (d2l's `bert.small.torch/`) yields that folder.
    """
    archive = download(name, cache_dir, registry, timeout)
    asset = get_asset(name, registry)
    target = archive.with_name(archive.name.removesuffix(".zip"))
    marker = target / ".extracted-from-sha1"
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
        raise AssetError(f"{archive}: not a readable zip file ({err})") from None
    entries = list(staging.iterdir())
    content = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    shutil.rmtree(target, ignore_errors=True)
    content.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(asset.sha1 + "\n")
    return target


def load_pretrained_bert(name: str, cache_dir: str | os.PathLike | None = None,
                         dropout: float = 0.1, registry: Mapping[str, Asset] | None = None,
                         timeout: float = 3.0) -> tuple[BERTModel, Vocab]:
    """(bert, vocab) from d2l's zip `name`: `vocab.json` and the `pretrained.params` state_dict."""
    asset = get_asset(name, registry)
    if asset.bert_config is None:
        raise AssetError(f"asset {name!r} is not a BERT checkpoint")
    folder = download_extract(name, cache_dir, registry, timeout)
    for needed in ("vocab.json", "pretrained.params"):
        if not (folder / needed).is_file():
            raise AssetError(f"{folder}: {needed} is missing from the {name!r} archive")
    vocab = Vocab.load_json(folder / "vocab.json")
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
    """d2l's pretrained BERT `name` when it can be had; otherwise random init, and say so.

    The random-init fallback has `name`'s shape (or `config`'s when `name` is None) and a
    vocabulary built from `corpus` (tokenized sentences, read only when needed) with
    `min_freq`.
    """
    reason = "no pretrained model was asked for"
    if name is not None:
        asset = get_asset(name, registry)
        config = config or asset.bert_config
        try:
            bert, vocab = load_pretrained_bert(name, cache_dir, dropout, registry)
        except AssetError as err:
            reason = str(err)
        else:
            message = (f"Loaded d2l's pretrained {name} ({config.describe()}; "
                       f"{len(vocab):,}-token vocabulary; {count_parameters(bert):,} "
                       "parameters).")
            if verbose:
                print(message)
            return ChapterBERT(bert, vocab, config, True, message, name)
    if config is None:
        raise ValueError("give a pretrained `name` or a `config` for the random-init model")
    config = replace(config, dropout=dropout)
    vocab = Vocab(corpus, min_freq=min_freq)
    bert = BERTModel.from_config(len(vocab), config)
    message = (f"RANDOM INITIALISATION, not pretrained: {reason}. Training a {config.describe()}"
               f" BERT from scratch with a {len(vocab):,}-token vocabulary built from the "
               f"training data (min_freq={min_freq}); expect accuracy well below the pretrained "
               "model's.")
    if verbose:
        print(message)
    return ChapterBERT(bert, vocab, config, False, message, name)
