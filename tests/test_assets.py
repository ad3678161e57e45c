"""The asset registry: checksums, extraction, caching, offline fail-fast, pretrained loading."""

import hashlib
import json
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
    download,
    download_extract,
    load_pretrained_bert,
    offline_reason,
    pretrained_or_random_bert,
    sha1sum,
    verify_sha1,
)
from d2l_utils.scratch.bert import BERTConfig, BERTModel
from d2l_utils.scratch.snli import BERT_RESERVED_TOKENS, UNK

TINY = BERTConfig(num_hiddens=8, ffn_num_hiddens=16, num_heads=2, num_layers=1, max_len=16)


def write_zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def fake_bert_zip(path, folder="bert.tiny.torch", prefix=""):
    """A zip shaped like d2l's: one folder with vocab.json and a BERTModel state_dict."""
    idx_to_token = [UNK, *BERT_RESERVED_TOKENS, "a", "dog", "runs"]
    bert = BERTModel.from_config(len(idx_to_token), TINY)
    params = path.parent / "pretrained.params"
    torch.save({prefix + key: value for key, value in bert.state_dict().items()}, params)
    write_zip(path, {f"{folder}/vocab.json": json.dumps(idx_to_token).encode(),
                     f"{folder}/pretrained.params": params.read_bytes()})
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


def test_offline_chapter_falls_back_to_random_init_and_says_so(tmp_path, monkeypatch,
                                                               no_network, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = [["a", "dog", "runs"], ["a", "cat"]]
    chapter = pretrained_or_random_bert("bert.small", corpus, min_freq=1, cache_dir=tmp_path)
    assert not chapter.pretrained
    assert chapter.config.num_hiddens == 256 and chapter.vocab["dog"] > 4
    assert chapter.bert.encoder.token_embedding.num_embeddings == len(chapter.vocab)
    assert chapter.label == "bert.small shape (random init)"
    printed = capsys.readouterr().out
    assert "RANDOM INITIALISATION" in printed and "HF_HUB_OFFLINE is set" in printed
    with pytest.raises(ValueError, match="config"):
        pretrained_or_random_bert(None, corpus)
