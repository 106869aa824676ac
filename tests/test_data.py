import gzip
import shutil
import stat

import pytest
import torch

from helpers import data as data_mod
from helpers.data import DataNotFoundError, TensorBatcher, load_fashion_mnist, load_mnist


def _snapshot(folder):
    return sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*"))


def _make_read_only(folder):
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_loads_from_read_only_root_without_writing(tmp_path, data_root, monkeypatch):
    ro = tmp_path / "ro"
    shutil.copytree(data_root / "MNIST", ro / "MNIST")
    _make_read_only(ro)
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    before = _snapshot(ro)
    try:
        x, y = load_mnist(root=ro, train=False)
    finally:
        for p in [ro, *ro.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert _snapshot(ro) == before
    assert not (tmp_path / "cache").exists()
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert sorted(torch.unique(y).tolist()) == list(range(10))
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the first MNIST test labels


def test_root_resolution_prefers_argument_then_env(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("GANLAB_DATA", str(data_root))
    assert data_mod.resolve_data_root() == data_root.resolve()
    assert data_mod.resolve_data_root(tmp_path) == tmp_path.resolve()
    monkeypatch.delenv("GANLAB_DATA")
    monkeypatch.chdir(tmp_path)
    assert data_mod.resolve_data_root() == (tmp_path / "data").resolve()


def test_fashion_mnist_loads_with_limit(data_root):
    x, y = load_fashion_mnist(root=data_root, limit=100)
    assert x.shape == (100, 1, 28, 28)
    assert y.shape == (100,)


def test_missing_dataset_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(root=empty, download=False)
    msg = str(info.value)
    assert str(empty / "MNIST" / "raw") in msg
    assert "data_README.md" in msg and "GANLAB_DATA" in msg


def test_failed_download_gives_the_same_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))

    def no_network(name, root):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data_mod, "_download", no_network)
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(root=tmp_path / "nowhere", download=True)
    msg = str(info.value)
    assert "could not be downloaded" in msg and "Network is unreachable" in msg
    assert str(tmp_path / "nowhere" / "FashionMNIST" / "raw") in msg and "data_README.md" in msg


def test_truncated_file_is_reported(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    path = raw / "t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())[:5000]
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(DataNotFoundError, match="truncated"):
        load_mnist(root=tmp_path, train=False, download=False)


def test_batcher_covers_every_image_once_per_epoch():
    x = torch.arange(10).float()
    y = torch.arange(10) * 2
    batches = TensorBatcher((x, y), batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3
    seen = []
    for bx, by in batches:
        assert torch.equal(by, bx.long() * 2)  # pairs stay together
        seen += bx.long().tolist()
    assert sorted(seen) == list(range(10))
    assert len(TensorBatcher((x,), batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError):
        TensorBatcher((x, torch.arange(3)), batch_size=2)
