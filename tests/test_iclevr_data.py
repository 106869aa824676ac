"""i-CLEVR data: where the label files are found and fetched from, conditions, cached renders, the user's images."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import helpers.malaria.fetch as malaria_fetch
from helpers.env import settings
from helpers.iclevr import data as d
from helpers.iclevr.render import OBJECTS, render_entries


@pytest.fixture(scope="module")
def shared_meta():
    root = settings().data
    folder = root / d.META_FOLDER if root else None
    if folder is None or not (folder / "train.json").is_file():
        pytest.fail(f"GANLAB_DATA={root} has no iclevr_meta/; see data_README.md")
    return folder


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a non-file URL fails the test."""
    real = malaria_fetch._open_url
    opened = []

    def guarded(url, timeout):
        opened.append(url)
        assert url.startswith("file:"), f"the test reached for the network: {url}"
        return real(url, timeout)

    monkeypatch.setattr(malaria_fetch, "_open_url", guarded)
    return opened


@pytest.fixture
def isolated(tmp_path, monkeypatch, no_network):
    """A fresh working directory, cache and data root; offline."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path / "data_root"))
    monkeypatch.setenv("GANLAB_OFFLINE", "1")
    monkeypatch.delenv("GANLAB_ICLEVR_IMAGES", raising=False)
    return tmp_path


# ----------------------------------------------------------------------------- label files
def test_the_manifest_describes_the_shared_copy(shared_meta):
    manifest, folder = d.load_meta_manifest()
    assert folder == "lab6" and [f.path for f in manifest.files] == list(d.META_FILES)
    assert malaria_fetch.verify(shared_meta, manifest) == {}
    assert d.manifest_text(d.make_meta_manifest(shared_meta)) == d.MANIFEST_PATH.read_text()


def test_the_label_files_are_looked_for_in_order(isolated, shared_meta, capsys):
    data_root, local, cache = isolated / "data_root" / "iclevr_meta", isolated / "data" / "iclevr_meta", \
        isolated / "cache" / "iclevr_meta"
    for folder in (data_root, local, cache):
        shutil.copytree(shared_meta, folder)
    assert d.iclevr_meta_folder() == data_root
    (data_root / "test.json").write_text("[]")                     # a damaged copy is skipped, with a note
    assert d.iclevr_meta_folder().resolve() == local
    assert "not using" in capsys.readouterr().out
    shutil.rmtree(local)
    assert d.iclevr_meta_folder() == cache
    shutil.rmtree(cache)
    with pytest.raises(d.IclevrDataError) as info:
        d.iclevr_meta_folder()
    msg = str(info.value)
    for place in (str(data_root), str(local), str(cache), "GANLAB_OFFLINE", "data_README.md"):
        assert place in msg, f"{place} missing from: {msg}"


def test_a_fetch_from_a_file_url_gives_verified_files_and_a_corrupt_one_is_refused(isolated, shared_meta,
                                                                                    no_network):
    dest = d.fetch_iclevr_meta(isolated / "dest", source=shared_meta.as_uri(), verbose=False)
    assert malaria_fetch.verify(dest, d.load_meta_manifest()[0]) == {}
    assert len(no_network) == 4
    bad_source = isolated / "bad_source"
    shutil.copytree(shared_meta, bad_source)
    text = (bad_source / "test.json").read_text()
    (bad_source / "test.json").write_text(text.replace("red", "rEd", 1))  # same size, other bytes
    with pytest.raises(d.IclevrDataError, match="test.json") as info:
        d.fetch_iclevr_meta(isolated / "dest2", source=bad_source, retries=1, verbose=False)
    assert "SHA-256" in str(info.value)
    assert not (isolated / "dest2" / "test.json").exists(), "an unverified file was written"
    assert (isolated / "dest2" / "train.json").is_file()


def test_offline_nothing_is_fetched_from_the_internet(isolated, no_network):
    with pytest.raises(d.IclevrDataError, match="GANLAB_OFFLINE"):
        d.fetch_iclevr_meta(isolated / "dest")
    assert no_network == []


def test_the_cache_is_filled_from_a_given_source(isolated, shared_meta):
    assert d.iclevr_meta_folder(source=shared_meta) == isolated / "cache" / "iclevr_meta"
    assert d.iclevr_meta_folder() == isolated / "cache" / "iclevr_meta"   # now found without a source


def test_train_entries_and_test_conditions(shared_meta):
    entries = d.load_train_entries()
    assert len(entries) == 18009 and entries[0] == ("CLEVR_train_002066_0.png", ["cyan cube"])
    assert entries[2][1] == ["cyan cube", "cyan sphere", "brown cylinder"]
    test, new_test = d.load_test_conditions("test"), d.load_test_conditions("new_test")
    assert len(test) == len(new_test) == 32 and test[0] == ["gray cube"]
    assert [sum(len(c) == k for c in test) for k in (1, 2, 3)] == [6, 12, 14]
    assert [sum(len(c) == k for c in new_test) for k in (1, 2, 3)] == [0, 12, 20]
    with pytest.raises(ValueError, match="'test'"):
        d.load_test_conditions("tests")


# ----------------------------------------------------------------------------- conditions
def test_encode_and_decode_round_trip(shared_meta):
    conditions = [objs for _, objs in d.load_train_entries()[:200]] + d.load_test_conditions("new_test")
    vec = d.encode_conditions(conditions)
    assert vec.shape == (232, 24) and vec.dtype == np.float32
    for cond, row in zip(conditions, vec):
        assert sorted(d.decode_condition(row)) == sorted(cond)
        assert d.decode_condition(row) == [o for o in OBJECTS if o in cond]   # objects.json's order
    assert vec[0, OBJECTS.index("cyan cube")] == 1 and vec[0].sum() == 1
    np.testing.assert_array_equal(d.encode_conditions(vec), vec)
    np.testing.assert_array_equal(d.encode_conditions(torch.from_numpy(vec[:3])), vec[:3])
    one = d.encode_conditions(["red cube", "blue sphere"], n=4)
    assert one.shape == (4, 24) and (one == one[0]).all() and one[0].sum() == 2
    np.testing.assert_array_equal(d.encode_conditions(one[0], n=4), one)
    np.testing.assert_array_equal(d.encode_conditions(list(one[0].astype(int))), one[:1])
    np.testing.assert_array_equal(d.encode_conditions([list(one[0].astype(int)), ["red cube", "blue sphere"]]),
                                  one[:2])
    assert d.decode_condition(torch.tensor(one[0])) == ["red cube", "blue sphere"]


@pytest.mark.parametrize("objects, n, match", [
    ("red cube", None, "bare string"),
    (["red cube", "blue cube"], 2, None),                          # valid: the same condition twice
    ([["red cube"], "blue cube"], None, "bare string"),
    (["red cub"], None, "Did you mean 'red cube'"),
    (["pink cube"], None, "unknown object 'pink cube'"),
    (["red cube", "red cube"], None, "more than once"),
    ([], None, "no object"),
    ([["red cube"], []], None, "condition 1 has no object"),
    (["red cube", "blue cube", "green cube", "cyan cube"], None, "4 objects: at most 3"),
    (np.full(24, 0.5), None, "only 0 and 1"),
    (np.eye(24)[:3] * 2, None, "only 0 and 1"),
    (np.zeros(24), None, "no object"),
    (np.ones(24), None, "24 objects: at most 3"),
    (np.ones(23), None, "length 23"),
    (np.eye(24, 10), None, "length 10"),
    (np.zeros((2, 3, 24)), None, "shape"),
    ([["red cube"], ["blue cube"]], 3, "2 conditions for n=3"),
    (np.eye(24)[:2], 3, "2 conditions for n=3"),
    ({"red cube"}, None, "set"),
    ([["red cube"]], 0, "positive int"),
])
def test_encode_conditions_refuses_what_is_not_a_condition(objects, n, match):
    if match is None:
        assert d.encode_conditions(objects, n=n).shape == (2, 24)
        return
    with pytest.raises(ValueError, match=match):
        d.encode_conditions(objects, n=n)


def test_decode_condition_refuses_batches_and_non_binary_vectors():
    with pytest.raises(ValueError, match="one"):
        d.decode_condition(np.eye(24)[:2])
    with pytest.raises(ValueError, match="only 0 and 1"):
        d.decode_condition(np.full(24, 0.3))


# ----------------------------------------------------------------------------- images
def test_load_iclevr_renders_caches_and_extends(isolated, shared_meta, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(shared_meta.parent))
    calls = []
    real = d.render_entries
    monkeypatch.setattr(d, "render_entries", lambda entries, size: calls.append(len(entries)) or real(entries, size))
    x, y = d.load_iclevr(limit=12)
    assert x.shape == (12, 3, 64, 64) and x.dtype == torch.uint8 and y.shape == (12, 24) and y.dtype == torch.float32
    entries = d.load_train_entries()[:12]
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), render_entries(entries))
    np.testing.assert_array_equal(y.numpy(), d.encode_conditions([o for _, o in entries]))
    x8, _ = d.load_iclevr(limit=8)                                  # from the cache: nothing rendered
    x16, _ = d.load_iclevr(limit=16)                                # 4 more rendered, the cache extended
    assert calls == [12, 4]
    assert torch.equal(x8, x[:8]) and torch.equal(x16[:12], x)
    assert np.load(d.render_cache_path(64)).shape == (16, 64, 64, 3)
    small, _ = d.load_iclevr(limit=8, image_size=32)                # area-downsampled from the 64 px renders
    assert small.shape == (8, 3, 32, 32) and calls == [12, 4]
    expected = x8.float().reshape(8, 3, 32, 2, 32, 2).mean(dim=(3, 5))
    assert (small.float() - expected).abs().max() <= 0.5 + 1e-4


def test_a_renderer_version_change_or_a_damaged_cache_renders_again(isolated, shared_meta, monkeypatch, capsys):
    monkeypatch.setenv("GANLAB_DATA", str(shared_meta.parent))
    calls = []
    real = d.render_entries
    monkeypatch.setattr(d, "render_entries", lambda entries, size: calls.append(len(entries)) or real(entries, size))
    x, _ = d.load_iclevr(limit=10)
    v1 = d.render_cache_path(64)
    monkeypatch.setattr(d, "RENDERER_VERSION", d.RENDERER_VERSION + 1)
    assert d.render_cache_path(64) != v1
    assert torch.equal(d.load_iclevr(limit=10)[0], x) and calls == [10, 10]
    path = d.render_cache_path(64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])                        # truncated
    assert torch.equal(d.load_iclevr(limit=10)[0], x) and calls == [10, 10, 10]
    assert "re-rendering" in capsys.readouterr().out
    assert path.stat().st_size == len(data), "the cache was not written again in full"
    damaged = np.load(path)
    damaged[0, 30:34, 30:34] = 255                                  # right size, wrong pixels (or a stale renderer)
    np.save(path, damaged)
    assert torch.equal(d.load_iclevr(limit=10)[0], x) and calls == [10, 10, 10, 10]


def test_the_users_original_images_are_read_as_rgb_and_resized(isolated, shared_meta, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(shared_meta.parent))
    folder = isolated / "iclevr"
    folder.mkdir()
    entries = d.load_train_entries()[:3]
    rng = np.random.default_rng(0)
    for name, _ in entries:
        rgba = np.zeros((240, 320, 4), np.uint8)
        rgba[..., :3] = rng.integers(0, 256, 3)                    # one colour per image
        rgba[..., 3] = 255
        Image.fromarray(rgba, "RGBA").save(folder / name)
    x, y = d.load_iclevr(limit=3, images=folder)
    assert x.shape == (3, 3, 64, 64) and y.shape == (3, 24)
    for i, (name, _) in enumerate(entries):
        colour = np.asarray(Image.open(folder / name))[0, 0, :3]
        assert (x[i].permute(1, 2, 0).numpy() == colour).all()
    monkeypatch.setenv("GANLAB_ICLEVR_IMAGES", str(folder))
    assert torch.equal(d.load_iclevr(limit=3, image_size=32)[0][:, :, 0, 0], x[:, :, 0, 0])
    with pytest.raises(d.IclevrDataError, match="CLEVR_train_000341_0.png"):
        d.load_iclevr(limit=4)
    with pytest.raises(d.IclevrDataError, match="does not exist"):
        d.load_iclevr(limit=1, images=isolated / "nowhere")


def test_render_reference_is_seeded_and_follows_the_conditions(shared_meta):
    conditions = d.load_test_conditions("test")[:6]
    a, b = d.render_reference(conditions, seed=3), d.render_reference(conditions, seed=3)
    assert a.shape == (6, 3, 64, 64) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, d.render_reference(conditions, seed=4))
    assert torch.equal(d.render_reference(conditions[:2], seed=3), a[:2])
    assert d.render_reference(conditions, seed=3, size=32).shape == (6, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown object"):
        d.render_reference([["red cub"]])


def test_in_colab_the_label_files_are_kept_on_google_drive(isolated, shared_meta, monkeypatch):
    monkeypatch.delenv("GANLAB_CACHE")
    monkeypatch.setenv("GANLAB_DRIVE_MOUNT", str(isolated / "drive"))
    monkeypatch.setattr(d, "in_colab", lambda: True)
    (isolated / "drive" / "MyDrive").mkdir(parents=True)             # Drive already mounted
    expected = isolated / "drive" / "MyDrive" / "gan-lab" / "data" / "iclevr_meta"
    assert d.iclevr_meta_folder(source=shared_meta) == expected
    assert sorted(p.name for p in expected.iterdir()) == sorted(d.META_FILES)
    assert not d.render_cache_path(64).is_relative_to(isolated / "drive"), "renders belong on the local disk"
