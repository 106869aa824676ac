"""The malaria loader on the real sample and on an M5 fixture built in the exact format."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.malaria.data import (
    NO_STAGE, Box, MalariaDataError, crop_window, extract_patches, field_key, load_fields,
    FieldSet, Field, load_iml, load_m5, load_patches, load_train_val, pair_microscopes, parse_voc, split_by_field,
    split_counts, window_label,
)

from lab3_support import sample_root

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- real sample
# Stage boxes per image, from malaria_sample/SOURCE.txt (ring, trophozoite, schizont, gametocyte).
SAMPLE_COUNTS = {
    "PA171710": [1, 0, 0, 0],
    "PA171772": [1, 1, 0, 2],
    "PA171862": [1, 0, 1, 1],
    "PA172005": [0, 1, 1, 2],
}


def test_real_sample_stage_counts():
    fields = load_fields(sample_root())  # finds iml_malaria/annotations_sample.json one level down
    assert fields.stage_counts() == {"ring": 3, "trophozoite": 2, "schizont": 2, "gametocyte": 5}
    assert sorted(f.key for f in fields) == sorted(SAMPLE_COUNTS)
    for f in fields:
        counts = np.bincount([b.stage for b in f.boxes], minlength=4).tolist()
        assert counts == SAMPLE_COUNTS[f.key], f.key
        assert (f.width, f.height) == (1280, 960)
        assert all(0 <= b.xmin < b.xmax <= f.width and 0 <= b.ymin < b.ymax <= f.height for b in f.boxes + f.negatives)
        assert len(f.negatives) > 50 and all(b.stage == NO_STAGE for b in f.negatives)  # red blood cells
    assert not fields.skipped


def test_real_sample_patches():
    sample = sample_root()
    x, y = load_patches(sample, size=32)
    assert x.shape == (12, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (12, 4) and y.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.05  # real pixels, not padding
    assert y.sum(0).tolist() == [3, 2, 2, 5]  # each cell-centred crop carries its own stage, no neighbours
    x2, y2 = load_patches(sample, size=64, negatives_per_field=3, seed=1)
    assert x2.shape == (24, 3, 64, 64) and y2.shape == (24, 4)
    assert (y2.sum(1) == 0).sum() >= 10  # red-blood-cell crops are mostly stage-free
    x3, _ = load_patches(sample, size=64, negatives_per_field=3, seed=1)
    assert torch.equal(x2, x3)


def test_iml_clipping_and_ignored_types(tmp_path):
    Image.new("RGB", (100, 80), (200, 100, 150)).save(tmp_path / "A.JPG")
    Image.new("RGB", (100, 80)).save(tmp_path / "B.JPG")
    entries = (
        '[{"image_name": "A.JPG", "objects": ['
        '{"type": "Ring", "bbox": {"x": "90", "y": "70", "h": "20", "w": "15"}}, '
        '{"type": "difficult", "bbox": {"x": "1", "y": "1", "h": "5", "w": "5"}}, '
        '{"type": "red blood cell", "bbox": {"x": "10", "y": "10", "h": "9", "w": "8"}}]}, '
        '{"image_name": "B.JPG", "objects": [{"type": "red blood cell", "bbox": {"x": "1", "y": "1", "h": "5", "w": "5"}}]}]'
    )
    (tmp_path / "annotations.json").write_text(entries)
    fields = load_iml(tmp_path / "annotations.json")
    assert len(fields) == 1
    assert fields[0].boxes == [Box(90, 70, 100, 80, 0)]  # x + w = 105 and y + h = 90 clipped
    assert fields[0].negatives == [Box(10, 10, 18, 19, NO_STAGE)]
    assert fields.skipped == {"other_class": 1, "image_without_objects": 1}


# ----------------------------------------------------------------------------- M5 fixture
MAG_SCALE = {"1000x": 10, "400x": 4, "100x": 1}  # image width = scale * 20 px (format spec 1.7)
STEM = "Malaria_CM1_21Jun2021101548_{:04d}_127.9_10.9"
A, B, C, D, E, F, G, H = (STEM.format(i) for i in range(1, 9))


def voc_xml(filename: str, size: tuple[int, int] | None, objects: list[tuple[str, tuple]], extra_size: str = "") -> str:
    """LabelImg-style VOC text; ``objects`` are (name, (xmin, ymin, xmax, ymax) as text or numbers)."""
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    objs = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b in objects
    )
    return (f'<annotation verified="yes"><folder>x</folder><filename>{filename}</filename><path>/x/{filename}</path>'
            f"<source><database>Unknown</database></source>{size_xml}{extra_size}<segmented>0</segmented>{objs}</annotation>")


def write_field(root: Path, mic: str, split: str, mag: str, name: str, objects, raw_xml: str | None = None,
                paint: tuple | None = None, extra_size: str = "") -> None:
    """``<name>_<mag>.png`` (black, ``paint`` = (box, colour) filled) and its XML."""
    w, h = 20 * MAG_SCALE[mag], 14 * MAG_SCALE[mag]
    img_dir, ann_dir = root / "Images" / mic / split / mag, root / "Annotations" / mic / split / mag
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    img = np.zeros((h, w, 3), np.uint8)
    if paint:
        (x0, y0, x1, y1), colour = paint
        img[y0:y1, x0:x1] = colour
    Image.fromarray(img).save(img_dir / f"{name}_{mag}.png")
    text = raw_xml if raw_xml is not None else voc_xml(f"{name}_{mag}.png", (w, h), objects, extra_size)
    (ann_dir / f"{name}_{mag}.xml").write_text(text)


@pytest.fixture
def m5_root(tmp_path) -> Path:
    """An M5 tree: HCM and LCM, three splits, three magnifications; dirty cases in HCM/train/1000x."""
    root = tmp_path / "M5-Malaria Dataset"
    for mic in ("HCM", "LCM"):
        for split, stems in (("train", [A, B, C, D, E, F, G, H]), ("val", [A]), ("test", [A])):
            (root / "Annotations" / mic / split).mkdir(parents=True)
            (root / "Annotations" / mic / split / f"{split}.txt").write_text("\n".join(stems) + "\n")
            for mag, k in MAG_SCALE.items():
                if (mic, split, mag) == ("HCM", "train", "1000x"):
                    continue
                for stem in (stems if split != "train" or mic == "LCM" else [A]):
                    if stem == G:
                        continue
                    write_field(root, mic, split, mag, stem, [("ring", (2 * k, 2 * k, 6 * k, 6 * k))])
    # HCM/train/1000x: 200 x 140 images.
    hcm = ("HCM", "train", "1000x")
    write_field(root, *hcm, A, [("ring", ("12.0", 20, 50, 60)), ("trophozoite", (100, 30, 140, 70)), ("wbc", (5, 5, 9, 9))],
                paint=((12, 20, 50, 60), (255, 0, 0)),
                extra_size="<size><width>999</width><height>999</height><depth>3</depth></size>")  # first <size> wins
    write_field(root, *hcm, B, [], raw_xml="<annotation><size><width>200</width><object><name>ring")  # unparsable
    write_field(root, *hcm, C, [])  # no objects
    write_field(root, *hcm, D, [("ring", (30, 30, 30, 60)), ("gametocyte", (60, 60, 100, 100))])  # zero-size box
    write_field(root, *hcm, E, [(" Ring ", (10, 10, 40, 40)), ("SCHIZONT", (150, 90, 190, 130))])
    write_field(root, *hcm, F, [("trophozoite", (180, 120, 230, 170)), ("ring", (250, 10, 300, 50))])  # off the image
    # G is listed in train.txt but has no files; H carries the HCM_ prefix some copies add.
    write_field(root, *hcm, "HCM_" + H, [("schizont", (70, 40, 110, 80))])
    return root


def test_parse_voc_dirty_cases(m5_root):
    ann = m5_root / "Annotations" / "HCM" / "train" / "1000x"
    voc = parse_voc(ann / f"{A}_1000x.xml")
    assert (voc.width, voc.height) == (200, 140)
    assert voc.boxes == [Box(12, 20, 50, 60, 0), Box(100, 30, 140, 70, 1)]
    assert voc.skipped == {"other_class": 1}
    assert parse_voc(ann / f"{D}_1000x.xml").skipped == {"degenerate_box": 1}
    assert [b.stage for b in parse_voc(ann / f"{E}_1000x.xml").boxes] == [0, 2]
    with pytest.raises(Exception):
        parse_voc(ann / f"{B}_1000x.xml")


def test_load_m5_hcm_train(m5_root):
    fields = load_m5(m5_root, split="train", magnification="1000x", microscope="HCM")
    by_key = {f.key: f for f in fields}
    assert list(by_key) == [A, D, E, F, H]  # split-list order; B unparsable, C empty, G missing
    assert by_key[A].boxes == [Box(12, 20, 50, 60, 0), Box(100, 30, 140, 70, 1)]
    assert by_key[D].boxes == [Box(60, 60, 100, 100, 3)]
    assert by_key[E].boxes == [Box(10, 10, 40, 40, 0), Box(150, 90, 190, 130, 2)]
    assert by_key[F].boxes == [Box(180, 120, 200, 140, 1)]  # clipped; the box wholly outside is dropped
    assert by_key[H].image_path.name == f"HCM_{H}_1000x.png"
    assert all((f.width, f.height) == (200, 140) for f in fields)
    assert fields.stage_counts() == {"ring": 2, "trophozoite": 2, "schizont": 2, "gametocyte": 1}
    assert fields.skipped == {
        "unparsable_xml": 1, "image_without_objects": 1, "missing_xml": 1,
        "other_class": 1, "degenerate_box": 1, "box_outside_image": 1,
    }


def test_load_m5_other_folders(m5_root):
    val = load_m5(m5_root, split="val", magnification="400x", microscope="LCM")
    assert len(val) == 1 and val[0].boxes == [Box(8, 8, 24, 24, 0)] and (val[0].width, val[0].height) == (80, 56)
    lcm = load_m5(m5_root, "train", "1000x", "LCM")
    assert [f.key for f in lcm] == [A, B, C, D, E, F, H]  # clean copies; G has no files
    pairs = pair_microscopes(load_m5(m5_root, "train", "1000x", "HCM"), lcm)
    assert [hcm.key for hcm, _ in pairs] == [A, D, E, F, H]  # the HCM_ prefix does not prevent pairing
    # Another copy's microscope names, and a split without its .txt list.
    shutil.copytree(m5_root / "Images" / "LCM", m5_root / "Images" / "China")
    shutil.copytree(m5_root / "Annotations" / "LCM", m5_root / "Annotations" / "China")
    (m5_root / "Annotations" / "China" / "test" / "test.txt").unlink()
    assert len(load_m5(m5_root, "test", "100x", "China")) == 1
    with pytest.raises(MalariaDataError, match="1000x, 100x, 400x"):
        load_m5(m5_root, "train", "40x", "HCM")


def test_m5_patches_and_labels(m5_root):
    fields = load_m5(m5_root, "train", "1000x", "HCM")
    x, y = extract_patches(fields, size=32, context=1.5)
    assert x.shape == (7, 3, 32, 32) and y.shape == (7, 4)
    # The first patch is centred on A's ring box, painted red on black.
    centre = x[0, :, 14:18, 14:18]
    assert torch.allclose(centre[0], torch.ones(4, 4)) and torch.allclose(centre[1:], -torch.ones(2, 4, 4))
    assert y.tolist()[:2] == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert y.sum(0).tolist() == [2, 2, 2, 1]
    xn, yn = extract_patches(fields, size=32, negatives_per_field=2, seed=0)
    assert xn.shape == (17, 3, 32, 32) and yn[:2].tolist() == y[:2].tolist()


def test_crop_window_and_label_rule():
    # Window shifted inside the image at the border, never larger than the image.
    assert crop_window(Box(0, 0, 10, 10, 0), 2.0, 100, 50) == (0, 0, 20)
    assert crop_window(Box(90, 40, 100, 50, 0), 2.0, 100, 50) == (80, 30, 20)
    assert crop_window(Box(0, 0, 80, 40, 0), 1.5, 100, 50) == (15, 0, 50)  # capped at the image height, still centred
    boxes = [Box(0, 0, 10, 10, 0), Box(15, 0, 25, 10, 3)]  # the gametocyte is half inside [0, 20)
    assert window_label(boxes, 0, 0, 20).tolist() == [1, 0, 0, 1]
    assert window_label(boxes, 0, 0, 20, min_visible=0.6).tolist() == [1, 0, 0, 0]
    assert field_key(f"HCM_{A}_400x.png") == A and field_key(f"{A}_1000x.xml") == A


def test_missing_sample_fails_instead_of_skipping(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="real malaria sample is missing"):
        sample_root()


def test_split_by_field_keeps_fields_whole():
    fields = load_fields(sample_root())
    train, val = split_by_field(fields, val_fraction=0.25, seed=0)
    assert len(train) == 3 and len(val) == 1
    assert {f.key for f in train}.isdisjoint({f.key for f in val})


def _synthetic_fields(stages_per_field: list[list[int]]) -> FieldSet:
    """Fields without images: only their stage boxes matter to the split."""
    fields = [Field(Path(f"f{i}.jpg"), 100, 100, [Box(0, 0, 10, 10, k) for k in stages], [], f"f{i}")
              for i, stages in enumerate(stages_per_field)]
    return FieldSet(fields, source="synthetic")


def test_stratified_split_holds_out_a_share_of_every_stage():
    # 8 fields with the rare schizont (2), each also holding gametocytes; 40 fields with gametocytes only.
    fields = _synthetic_fields([[2, 3]] * 8 + [[3]] * 40)
    for seed in range(5):
        train, val = split_by_field(fields, val_fraction=0.25, seed=seed)  # stratified by default
        assert val.stage_counts()["schizont"] == 2 and train.stage_counts()["schizont"] == 6, seed
        assert len(val) == 12 and len(train) == 36
        assert {f.key for f in train}.isdisjoint({f.key for f in val})
    # Without strata, a draw of 12 of 48 fields gives the schizont fields any share: some seed misses 2.
    counts = {split_by_field(fields, 0.25, seed=s, stratify=False)[1].stage_counts()["schizont"] for s in range(20)}
    assert counts != {2}
    table = split_counts({"train": train, "val": val})
    assert "| val | 12 | 0 | 0 | 2 | 12 | 14 | 0 |" in table, table


def test_extract_patches_field_index(tmp_path):
    fields = load_fields(sample_root())
    x, y = extract_patches(fields, size=16, negatives_per_field=3, seed=1)
    x2, y2, field = extract_patches(fields, size=16, negatives_per_field=3, seed=1, with_field_index=True)
    assert torch.equal(x, x2) and torch.equal(y, y2) and field.dtype == torch.long and len(field) == len(x)
    start = 0
    for i, f in enumerate(fields):  # per field: its stage boxes, then its 3 negatives, in field order
        n = len(f.boxes) + 3
        assert field[start:start + n].tolist() == [i] * n
        start += n
    assert start == len(x)
    empty = extract_patches([], size=16, with_field_index=True)
    assert [tuple(t.shape) for t in empty] == [(0, 3, 16, 16), (0, 4), (0,)]


def test_load_train_val_uses_m5_folders_or_splits_iml_fields(m5_root):
    train, val = load_train_val(m5_root)  # M5: the official train and val folders, HCM 1000x
    assert [f.key for f in train] == [A, D, E, F, H] and [f.key for f in val] == [A]
    assert "val" in str(val[0].image_path.parent.parent)
    train, val = load_train_val(m5_root, magnification="400x", microscope="LCM")
    assert len(train) == 7 and len(val) == 1 and train[0].width == 80
    with pytest.raises(TypeError, match="split="):
        load_train_val(m5_root, split="test")
    train, val = load_train_val(sample_root(), val_fraction=0.25, seed=0)  # IML: whole fields drawn at random
    assert (len(train), len(val)) == (3, 1) and {f.key for f in train}.isdisjoint({f.key for f in val})


def test_command_line(m5_root):
    run = subprocess.run([sys.executable, "-m", "helpers.malaria", "--data", str(m5_root)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Fields kept: 5" in run.stdout and "unparsable_xml 1" in run.stdout
    assert "Patches: (7, 3, 32, 32)" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "helpers.malaria", "--data", str(m5_root / "nope")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
