"""The i-CLEVR stand-in renderer: deterministic, one scene per _0/_1/_2 group, the objects it is asked for."""

import colorsys
import json

import numpy as np
import pytest

from helpers.env import settings
from helpers.iclevr.render import COLOURS, OBJECTS, _screen, place_objects, render_entries, render_scene, scene_seed


@pytest.fixture(scope="module")
def entries() -> list:
    root = settings().data
    path = root / "iclevr_meta" / "train.json" if root else None
    if path is None or not path.is_file():
        pytest.fail(f"GANLAB_DATA={root} has no iclevr_meta/train.json; see data_README.md")
    return list(json.loads(path.read_text()).items())[:60]


def test_the_same_entry_gives_the_same_image_and_a_prefix_does_not_depend_on_the_rest(entries):
    full = render_entries(entries[:30])
    assert full.shape == (30, 64, 64, 3) and full.dtype == np.uint8
    np.testing.assert_array_equal(render_entries(entries[:5]), full[:5])
    np.testing.assert_array_equal(render_entries(entries[7:9]), full[7:9])
    name, objects = entries[3]
    np.testing.assert_array_equal(render_scene(objects, scene_seed(name)), full[3])
    assert not np.array_equal(full[0], full[3]), "two different scenes drew the same image"


def test_scene_seed_ignores_only_the_step_suffix():
    assert scene_seed("CLEVR_train_002066_0.png") == scene_seed("CLEVR_train_002066_2.png")
    assert scene_seed("CLEVR_train_002066_0.png") != scene_seed("CLEVR_train_002067_0.png")


def test_each_step_of_a_scene_keeps_the_earlier_objects_and_changes_only_near_the_new_one(entries):
    steps = [(n, o) for n, o in entries if n.startswith(entries[0][0][:-6])]
    assert [len(o) for _, o in steps] == [1, 2, 3]
    checked = 0
    for name, objects in entries:
        if not name.endswith(("_1.png", "_2.png")):
            continue
        seed = scene_seed(name)
        before, after = render_scene(objects[:-1], seed), render_scene(objects, seed)
        assert place_objects(objects[:-1], seed) == place_objects(objects, seed)[:-1]
        new = place_objects(objects, seed)[-1]
        col, row, unit = _screen(new.x, new.z, 64)
        rows, cols = np.mgrid[0:64, 0:64]
        # the new object stands on (col, row) and rises up to ~2.2 radii; its soft shadow fades out to the right
        # (by less than 3 grey levels beyond ~3.5 radii), so "changed" means by more than 2 levels
        near = np.hypot(cols - col, (rows - (row - new.radius * unit)) * 0.8) <= 3.5 * new.radius * unit + 3
        changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 2
        assert changed.any(), f"{name}: adding {objects[-1]} changed nothing"
        assert not (changed & ~near).any(), f"{name}: pixels far from the new object changed"
        checked += 1
    assert checked >= 30


def _hue_deg(rgb) -> float:
    return 360.0 * colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255.0))[0]


@pytest.mark.parametrize("shape", ["cube", "sphere", "cylinder"])
def test_a_one_object_scene_shows_that_object_in_its_colour(shape):
    floor = render_scene([], seed=11)
    for colour, rgb in COLOURS.items():
        img = render_scene([f"{colour} {shape}"], seed=11)
        changed = np.abs(img.astype(int) - floor.astype(int)).max(axis=2) > 30
        assert changed.sum() >= 20, f"{colour} {shape}: only {changed.sum()} pixels differ from the bare floor"
        if colour == "gray":
            assert img[changed].mean() < floor[changed].mean(), "the gray object should be darker than the floor"
            continue
        pixels = img[changed].astype(float) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
        vivid = hsv[hsv[:, 1] > 0.3]
        assert len(vivid) >= 0.5 * len(pixels), f"{colour} {shape}: the object is mostly grey"
        diff = np.abs((360 * vivid[:, 0] - _hue_deg(rgb) + 180) % 360 - 180)
        assert np.median(diff) < 15, f"{colour} {shape}: hue off by {np.median(diff):.0f} degrees"


def test_unknown_objects_are_refused():
    with pytest.raises(ValueError, match="unknown object"):
        render_scene(["pink cube"], seed=0)
    assert len(OBJECTS) == 24 and OBJECTS[0] == "gray cube" and OBJECTS[8] == "gray sphere"
