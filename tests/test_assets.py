"""The asset registry: checksums, extraction, caching, offline fail-fast, pretrained loading."""

import hashlib
import json
import socket
import time
import zipfile

import pytest
import torch

from d2l_utils import hub
from d2l_utils.scratch import assets
from d2l_utils.scratch.assets import (
    ASSETS,
    Asset,
    AssetError,
    ChecksumError,
    asset_registry,
    download,
    download_extract,
    load_pretrained_bert,
    offline_reason,
    pretrained_or_random_bert,
    sha1sum,
    verify_sha1,
)
from d2l_utils.scratch.bert import BERT_CONFIGS, BERTConfig, BERTModel
from d2l_utils.scratch.snli import BERT_RESERVED_TOKENS, UNK

TINY = BERTConfig(num_hiddens=8, ffn_num_hiddens=16, num_heads=2, num_layers=1, max_len=16)


def write_zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def fake_bert_zip(path, folder="bert.tiny.torch", prefix="", config=TINY, extra=None):
    """A zip shaped like d2l's: one folder with vocab.json and a BERTModel state_dict (plus the
    files in `extra`, {name: bytes}, to spoil the layout)."""
    idx_to_token = [UNK, *BERT_RESERVED_TOKENS, "a", "dog", "runs"]
    bert = BERTModel.from_config(len(idx_to_token), config)
    params = path.parent / "pretrained.params"
    torch.save({prefix + key: value for key, value in bert.state_dict().items()}, params)
    write_zip(path, {f"{folder}/vocab.json": json.dumps(idx_to_token).encode(),
                     f"{folder}/pretrained.params": params.read_bytes(), **(extra or {})})
    params.unlink()
    return bert


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a connection or a URL."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")
    monkeypatch.setattr(hub.socket, "create_connection", refuse)
    monkeypatch.setattr(assets.urllib.request, "urlopen", refuse)


def test_registry_has_d2l_bert_zips():
    assert ASSETS["bert.small"].url == ("http://d2l-data.s3-accelerate.amazonaws.com/"
                                        "bert.small.torch.zip")
    assert ASSETS["bert.small"].sha1 == "c72329e68a732bef0452e4b96a1c341c8910f81f"
    assert ASSETS["bert.base"].url.endswith("/bert.base.torch.zip")
    assert ASSETS["bert.base"].sha1 == "225d66f04cae318b841a13d32af3acc165f253ac"
    assert ASSETS["bert.small"].bert_config.num_hiddens == 256
    assert ASSETS["bert.base"].bert_config.num_layers == 12
    assert ASSETS["bert.small"].filename == "bert.small.torch.zip"


def test_sha1_verify_good_and_bad(tmp_path):
    archive = write_zip(tmp_path / "x.zip", {"x/a.txt": b"hello"})
    good = hashlib.sha1(archive.read_bytes()).hexdigest()
    assert sha1sum(archive) == good
    verify_sha1(archive, good)
    with pytest.raises(ChecksumError) as err:
        verify_sha1(archive, "0" * 40)
    message = str(err.value)
    assert str(archive) in message and "0" * 40 in message and good in message


def test_download_from_a_local_url_verifies_caches_and_extracts(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # file:// needs no network anyway
    source = write_zip(tmp_path / "data.zip", {"data/a.txt": b"A", "data/sub/b.txt": b"B"})
    registry = {"data": Asset(source.as_uri(), sha1sum(source))}
    cache = tmp_path / "cache"
    path = download("data", cache, registry)
    assert path == cache / "data.zip" and sha1sum(path) == registry["data"].sha1
    folder = download_extract("data", cache, registry)
    assert folder == cache / "data"  # the single top-level folder of the zip
    assert (folder / "a.txt").read_text() == "A" and (folder / "sub" / "b.txt").exists()
    source.unlink()  # cached now: neither download nor extraction needs the source
    (folder / "a.txt").write_text("kept")
    assert download_extract("data", cache, registry) == folder
    assert (folder / "a.txt").read_text() == "kept"


def test_download_rejects_a_wrong_checksum_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    source = write_zip(tmp_path / "data.zip", {"a.txt": b"A"})
    registry = {"data": Asset(source.as_uri(), "f" * 40)}
    with pytest.raises(ChecksumError, match="f" * 40):
        download("data", tmp_path / "cache", registry)
    assert not list((tmp_path / "cache").iterdir())


def test_damaged_cached_file_is_a_clear_error(tmp_path, no_network):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "bert.small.torch.zip").write_bytes(b"truncated")
    with pytest.raises(ChecksumError, match="c72329e68a732bef0452e4b96a1c341c8910f81f"):
        download("bert.small", cache)


def test_offline_fails_fast_without_touching_the_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_reason(ASSETS["bert.small"].url) == "HF_HUB_OFFLINE is set"
    start = time.perf_counter()
    with pytest.raises(AssetError, match="HF_HUB_OFFLINE is set") as err:
        download("bert.small", tmp_path)
    assert time.perf_counter() - start < 1
    assert "bert.small.torch.zip" in str(err.value)
    with pytest.raises(AssetError, match="unknown asset"):
        download("bert.huge", tmp_path)


def test_unreachable_host_is_reported(monkeypatch):
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)

    def unreachable(*args, **kwargs):
        raise TimeoutError("timed out")
    monkeypatch.setattr(hub.socket, "create_connection", unreachable)
    assert "not reachable (TimeoutError)" in offline_reason("http://example.invalid/x.zip")


def test_zip_with_unsafe_paths_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    source = write_zip(tmp_path / "evil.zip", {"../outside.txt": b"x"})
    registry = {"evil": Asset(source.as_uri(), sha1sum(source))}
    with pytest.raises(AssetError, match="unsafe path"):
        download_extract("evil", tmp_path / "cache", registry)
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("prefix", ["", "module."])  # "module.": saved from DataParallel
def test_load_pretrained_bert_from_a_d2l_shaped_zip(tmp_path, monkeypatch, prefix):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    original = fake_bert_zip(tmp_path / "bert.tiny.torch.zip", prefix=prefix)
    source = tmp_path / "bert.tiny.torch.zip"
    registry = {"bert.tiny": Asset(source.as_uri(), sha1sum(source), bert_config=TINY)}
    bert, vocab = load_pretrained_bert("bert.tiny", tmp_path / "cache", registry=registry)
    assert vocab["dog"] == 6 and vocab["cat"] == vocab.unk == 0
    for key, value in original.state_dict().items():
        assert torch.equal(bert.state_dict()[key], value), key
    chapter = pretrained_or_random_bert("bert.tiny", corpus=iter(()), cache_dir=tmp_path / "cache",
                                        registry=registry, verbose=False)
    assert chapter.pretrained and "pretrained bert.tiny" in chapter.message
    assert chapter.label == "bert.tiny (pretrained)"


def test_wrong_architecture_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake_bert_zip(tmp_path / "bert.tiny.torch.zip")
    source = tmp_path / "bert.tiny.torch.zip"
    wrong = BERTConfig(num_hiddens=16, ffn_num_hiddens=16, num_heads=2, num_layers=1, max_len=16)
    registry = {"bert.tiny": Asset(source.as_uri(), sha1sum(source), bert_config=wrong)}
    with pytest.raises(AssetError, match="does not fit"):
        load_pretrained_bert("bert.tiny", tmp_path / "cache", registry=registry)


CORPUS = [["a", "dog", "runs"], ["a", "cat"]]
# What every chapter-level asset error must say: the file, and the way out (random init only
# when asked for).
FIX = "PRETRAINED = None"


def test_random_init_only_when_asked_for(tmp_path, monkeypatch, no_network, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chapter = pretrained_or_random_bert(None, CORPUS, BERT_CONFIGS["bert.small"], min_freq=1)
    assert not chapter.pretrained
    assert chapter.config.num_hiddens == 256 and chapter.vocab["dog"] > 4
    assert chapter.bert.encoder.token_embedding.num_embeddings == len(chapter.vocab)
    assert chapter.label == "2-layer BERT (random init)"
    printed = capsys.readouterr().out
    assert "RANDOM INITIALISATION" in printed and FIX in printed
    with pytest.raises(ValueError, match="config"):
        pretrained_or_random_bert(None, CORPUS)
    # offline, a named model is an error that says why and how out, never a silent random init
    with pytest.raises(AssetError, match="HF_HUB_OFFLINE is set") as err:
        pretrained_or_random_bert("bert.small", CORPUS, min_freq=1, cache_dir=tmp_path)
    assert "bert.small.torch.zip" in str(err.value) and FIX in str(err.value)


# ---------------------------------------------------------------------------------------------
# D2L_ASSET_URL / D2L_ASSET_SHA1, and the chapter's strict loading


@pytest.fixture
def online(monkeypatch):
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("D2L_ASSET_SHA1", raising=False)


def served_from(monkeypatch, folder):
    """Point D2L_ASSET_URL at `folder` (a file:// URL: no network, no server)."""
    monkeypatch.setenv("D2L_ASSET_URL", folder.as_uri() + "/")


def small_zip(folder, extra=None, nested=""):
    """A bert.small.torch.zip with bert.small's shape (random weights) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bert.small.torch.zip"
    fake_bert_zip(path, folder=nested + "bert.small.torch", config=BERT_CONFIGS["bert.small"],
                  extra=extra)
    return path


def load_small(tmp_path):
    return pretrained_or_random_bert("bert.small", CORPUS, cache_dir=tmp_path / "cache",
                                     verbose=False)


def test_asset_url_keeps_the_registered_checksum(tmp_path, monkeypatch, online):
    zipped = small_zip(tmp_path / "server")
    served_from(monkeypatch, tmp_path / "server")
    asset = asset_registry()["bert.small"]
    assert asset.url == (tmp_path / "server").as_uri() + "/bert.small.torch.zip"
    assert asset.sha1 == ASSETS["bert.small"].sha1 and asset.overridden == "D2L_ASSET_URL"
    with pytest.raises(ChecksumError) as err:  # another file: never a silent pass
        load_small(tmp_path)
    message = str(err.value)
    assert ASSETS["bert.small"].sha1 in message and sha1sum(zipped) in message
    assert "D2L_ASSET_SHA1=bert.small=" in message and FIX in message
    assert not (tmp_path / "cache" / "bert.small.torch.zip").exists()
    # the hash said explicitly: accepted, and the chapter says where the model came from
    monkeypatch.setenv("D2L_ASSET_SHA1", f"bert.small={sha1sum(zipped).upper()}")
    chapter = load_small(tmp_path)
    assert chapter.pretrained and chapter.label == "bert.small (pretrained)"
    assert asset.url in chapter.message
    assert asset_registry()["bert.small"].overridden == "D2L_ASSET_URL, D2L_ASSET_SHA1"
    assert asset_registry()["bert.base"].sha1 == ASSETS["bert.base"].sha1


@pytest.mark.parametrize("value", ["bert.small", "bert.small=123", "bert.huge=" + "a" * 40,
                                   "bert.small=" + "g" * 40])
def test_malformed_sha1_override_is_an_error(monkeypatch, value):
    monkeypatch.setenv("D2L_ASSET_SHA1", value)
    with pytest.raises(AssetError, match="D2L_ASSET_SHA1=.*NAME=SHA1"):
        asset_registry()


@pytest.mark.parametrize("value", ["127.0.0.1:8000/d2l-data/", "d2l-data", "ftp//host/"])
def test_an_asset_url_without_a_scheme_is_an_error(monkeypatch, value):
    """Was "None is not reachable" at download time."""
    monkeypatch.setenv("D2L_ASSET_URL", value)
    with pytest.raises(AssetError, match=f"D2L_ASSET_URL='{value}': not a URL; .*http://"):
        asset_registry()


def test_corrupted_zip_is_an_error_naming_the_file_and_the_fix(tmp_path, monkeypatch, online):
    zipped = small_zip(tmp_path / "server")
    zipped.write_bytes(zipped.read_bytes()[:5000])  # truncated in transit
    served_from(monkeypatch, tmp_path / "server")
    with pytest.raises(ChecksumError) as err:  # the registered hash catches it
        load_small(tmp_path)
    assert "bert.small.torch.zip" in str(err.value) and FIX in str(err.value)
    # even with its (wrong) hash accepted, a damaged zip stops the chapter
    monkeypatch.setenv("D2L_ASSET_SHA1", f"bert.small={sha1sum(zipped)}")
    with pytest.raises(AssetError, match="not a readable zip file") as err:
        load_small(tmp_path)
    cached = tmp_path / "cache" / "bert.small.torch.zip"
    assert str(cached) in str(err.value) and FIX in str(err.value)
    # a damaged file in the cache (the registered hash): named, with what to do
    monkeypatch.delenv("D2L_ASSET_SHA1")
    with pytest.raises(ChecksumError, match="Delete it and download again") as err:
        load_small(tmp_path)
    assert str(cached) in str(err.value) and FIX in str(err.value)


def test_unreachable_asset_url_is_an_error_naming_the_url_and_the_fix(tmp_path, monkeypatch,
                                                                      online):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("D2L_ASSET_URL", f"http://127.0.0.1:{port}/d2l-data/")
    start = time.perf_counter()
    with pytest.raises(AssetError) as err:
        load_small(tmp_path)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/d2l-data/bert.small.torch.zip" in message
    assert "not reachable" in message and "set by D2L_ASSET_URL" in message
    assert str(tmp_path / "cache" / "bert.small.torch.zip") in message and FIX in message


@pytest.mark.parametrize("layout", ["extra top-level folder", "nested one level deeper",
                                    "missing vocab.json"])
def test_unexpected_zip_layout_is_an_error_naming_the_file_and_the_fix(tmp_path, monkeypatch,
                                                                       online, layout):
    if layout == "extra top-level folder":
        zipped = small_zip(tmp_path / "server", extra={"__MACOSX/._vocab.json": b"x"})
    elif layout == "nested one level deeper":
        zipped = small_zip(tmp_path / "server", nested="bert.small/")
    else:
        zipped = tmp_path / "server" / "bert.small.torch.zip"
        zipped.parent.mkdir()
        write_zip(zipped, {"bert.small.torch/pretrained.params": b"x"})
    served_from(monkeypatch, tmp_path / "server")
    monkeypatch.setenv("D2L_ASSET_SHA1", f"bert.small={sha1sum(zipped)}")
    with pytest.raises(AssetError, match="unexpected layout") as err:
        load_small(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cache" / "bert.small.torch.zip") in message and FIX in message
    assert "bert.small.torch/vocab.json, bert.small.torch/pretrained.params" in message
