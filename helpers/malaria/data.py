"""Malaria thin-blood-smear fields and the cell patches a small GAN trains on.

Two annotation formats are read (``../shared/data/malaria_FORMAT.md`` describes both):

* **M5-Malaria** (Sultani et al., CVPR 2022): Pascal VOC XML, one file per image::

      <root>/Images/<MIC>/<split>/<mag>/<stem>_<mag>.png
      <root>/Annotations/<MIC>/<split>/<mag>/<stem>_<mag>.xml
      <root>/Annotations/<MIC>/<split>/<split>.txt       one <stem> per line

  ``<MIC>`` is ``HCM`` (high-cost microscope) or ``LCM`` (low-cost); other copies use other
  names (``Olympus``/``China``), so the microscope folder is a parameter. ``<mag>`` is
  ``1000x``, ``400x`` or ``100x``.
* **IML-Malaria** (Arshad et al., 2022): one JSON array
  ``[{"image_name", "objects": [{"type", "bbox": {"x", "y", "w", "h"}}]}]``, numbers stored as
  strings, ``(x, y)`` the top-left corner. Red blood cells are annotated too.

What the official M5 reader skips is skipped here, and counted in :attr:`FieldSet.skipped`:
unparsable XML, images without a stage box, degenerate boxes (``xmax <= xmin`` or
``ymax <= ymin``, also after clipping to the image). Class names are matched after
``.strip().lower()``; any other name is ignored.

Class indices (one mapping for the whole lab; files store names, never ids)::

    ring 0, trophozoite 1, schizont 2, gametocyte 3        (= STAGES order)

Whole fields are hundreds to thousands of pixels wide, while the GAN works on 32-64 px
patches. :func:`extract_patches` therefore cuts one square **cell-centred** crop per stage box,
``context`` times the box's longer side, and resizes it so that the cell fills the patch.
Optional **negative** crops are centred on cells without a stage (IML red blood cells) or,
when no such cells are annotated (M5), on random points. Every patch gets a multi-hot label:
stage ``k`` is on when at least ``min_visible`` (default half) of the area of some stage-``k``
box lies inside the crop window, so a neighbouring parasite that is mostly in view counts too.

Command line (prints a summary of what was found and skipped)::

    python -m helpers.malaria --data PATH [--split train] [--magnification 1000x] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image

STAGES = ("ring", "trophozoite", "schizont", "gametocyte")
STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}  # name -> column of the label vector
NO_STAGE = -1  # Box.stage of an annotated cell without a parasite stage (IML red blood cell)
MAGNIFICATIONS = ("1000x", "400x", "100x")
SPLITS = ("train", "val", "test")
IML_NEGATIVE_TYPES = ("red blood cell",)  # IML types used as no-stage cells; "difficult" is ignored
_IMAGE_EXTENSIONS = (".png", ".PNG", ".jpg", ".JPG", ".jpeg", ".JPEG")
_FORMAT_HINT = "See data_README.md (section \"Malaria data\") for where to get it and the expected layouts."


class MalariaDataError(FileNotFoundError):
    """The malaria data is not where it was looked for; the message says what was expected."""


class Box(NamedTuple):
    """One annotated cell in pixel coordinates of its own image (origin top-left, x = column).

    ``xmax``/``ymax`` are exclusive: the box is ``xmax - xmin`` pixels wide.
    """

    xmin: int
    ymin: int
    xmax: int
    ymax: int
    stage: int  # index into STAGES, or NO_STAGE

    @property
    def width(self) -> int:
        return self.xmax - self.xmin

    @property
    def height(self) -> int:
        return self.ymax - self.ymin

    @property
    def center(self) -> tuple[float, float]:
        return (self.xmin + self.xmax) / 2, (self.ymin + self.ymax) / 2


@dataclass
class Field:
    """One microscope image (a smear field) and its boxes, clipped to the image."""

    image_path: Path
    width: int  # pixels, read from the image file
    height: int
    boxes: list[Box]  # stage boxes, stage in 0..3
    negatives: list[Box] = field(default_factory=list)  # cells with no stage (stage = NO_STAGE)
    key: str = ""  # name shared by the HCM and LCM image of this field (see field_key)


@dataclass
class FieldSet:
    """The fields a loader kept, and how many of each thing it skipped and why."""

    fields: list[Field]
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    source: str = ""  # what was read, for summaries

    def __len__(self) -> int:
        return len(self.fields)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __getitem__(self, i: int) -> Field:
        return self.fields[i]

    def stage_counts(self) -> dict[str, int]:
        """Number of stage boxes per stage, in STAGES order."""
        counts = Counter(b.stage for f in self.fields for b in f.boxes)
        return {name: counts[i] for i, name in enumerate(STAGES)}


# ----------------------------------------------------------------------------- boxes
def _to_int(text: str | None) -> int:
    """Integer pixel coordinate from annotation text; tolerant of ``"12.0"`` like the official reader."""
    if text is None:
        raise ValueError("missing coordinate")
    return int(float(text.strip()))


def clip_box(box: Box, width: int, height: int) -> Box | None:
    """``box`` clipped to a ``width`` x ``height`` image, or None when nothing of it is left."""
    clipped = Box(
        min(max(box.xmin, 0), width), min(max(box.ymin, 0), height),
        min(max(box.xmax, 0), width), min(max(box.ymax, 0), height), box.stage,
    )
    if clipped.xmax <= clipped.xmin or clipped.ymax <= clipped.ymin:
        return None
    return clipped


def stage_of(name: str | None) -> int | None:
    """Stage index of a class name (case and surrounding spaces ignored), None for other names."""
    return STAGE_INDEX.get((name or "").strip().lower())


def field_key(name: str) -> str:
    """The part of an M5 file name shared by both microscopes and all magnifications.

    ``HCM_Malaria_CM1_..._10.9_1000x.png`` -> ``Malaria_CM1_..._10.9``: the extension, an
    ``HCM_`` prefix (some copies add it to HCM names) and the ``_<mag>`` suffix are removed.
    """
    stem = Path(name.strip()).name
    for ext in _IMAGE_EXTENSIONS + (".xml",):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    if stem.startswith("HCM_"):
        stem = stem[len("HCM_"):]
    for mag in MAGNIFICATIONS:
        if stem.endswith("_" + mag):
            stem = stem[: -len(mag) - 1]
            break
    return stem


# ----------------------------------------------------------------------------- M5 (Pascal VOC)
@dataclass
class VocAnnotation:
    """What :func:`parse_voc` reads from one Pascal VOC file."""

    filename: str | None  # <filename>, may be None
    width: int | None  # first <size>; None when absent or unreadable
    height: int | None
    boxes: list[Box]  # stage boxes that are not degenerate, clipped to <size> when known
    skipped: Counter  # reason -> number of <object>s dropped


def parse_voc(path: str | os.PathLike) -> VocAnnotation:
    """Read one LabelImg-style Pascal VOC XML file.

    Args:
        path: the ``.xml`` file.

    Returns:
        The annotation; objects with another class name, an unreadable box or a degenerate
        box are dropped and counted in ``skipped``.

    Raises:
        ET.ParseError: the file is not well-formed XML (callers skip such files).
    """
    root = ET.parse(path).getroot()
    skipped: Counter = Counter()
    width = height = None
    size = root.find("size")  # some files repeat <size>; find() returns the first, as the official converter uses
    if size is not None:
        try:
            width, height = _to_int(size.findtext("width")), _to_int(size.findtext("height"))
        except ValueError:
            width = height = None
        if width is not None and (width <= 0 or height <= 0):
            width = height = None  # LabelImg writes 0 when it did not know the size
    boxes = []
    for obj in root.findall("object"):
        stage = stage_of(obj.findtext("name"))
        if stage is None:
            skipped["other_class"] += 1
            continue
        bnd = obj.find("bndbox")
        try:
            if bnd is None:
                raise ValueError("no <bndbox>")
            box = Box(*(_to_int(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")), stage)
        except ValueError:
            skipped["unreadable_box"] += 1
            continue
        if box.xmax <= box.xmin or box.ymax <= box.ymin:
            skipped["degenerate_box"] += 1
            continue
        if width is not None:
            box = clip_box(box, width, height)
            if box is None:
                skipped["box_outside_image"] += 1
                continue
        boxes.append(box)
    return VocAnnotation(root.findtext("filename"), width, height, boxes, skipped)


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def _find_image(folder: Path, key: str, mag: str, voc_filename: str | None) -> Path | None:
    for prefix in ("", "HCM_"):
        for ext in _IMAGE_EXTENSIONS:
            candidate = folder / f"{prefix}{key}_{mag}{ext}"
            if candidate.is_file():
                return candidate
    if voc_filename:  # the official converter strips spaces from <filename>
        for name in (voc_filename.strip(), voc_filename.replace(" ", "")):
            if name and (folder / name).is_file():
                return folder / name
    return None


def _available(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return ", ".join(names) if names else "nothing"


def load_m5(
    root: str | os.PathLike,
    split: str = "train",
    magnification: str = "1000x",
    microscope: str = "HCM",
) -> FieldSet:
    """Fields of one split of the M5 dataset, for one microscope and magnification.

    Args:
        root: the dataset folder that holds ``Images/`` and ``Annotations/``.
        split: ``train``, ``val`` or ``test`` (the folder name).
        magnification: ``1000x``, ``400x`` or ``100x``.
        microscope: the microscope folder, ``HCM`` (training in the M5 protocol) or ``LCM``;
            other copies of the data use ``Olympus``/``China``.

    Returns:
        The kept fields (each with at least one stage box) and the skip counts. The stems come
        from ``Annotations/<MIC>/<split>/<split>.txt``; without that file every XML of the
        folder is used.

    Raises:
        MalariaDataError: a folder of the layout is missing.
    """
    root = Path(root)
    ann_split = root / "Annotations" / microscope / split
    ann_dir, img_dir = ann_split / magnification, root / "Images" / microscope / split / magnification
    for folder, parent in ((ann_dir, ann_split), (img_dir, root / "Images" / microscope / split)):
        if not folder.is_dir():
            raise MalariaDataError(
                f"M5 folder {folder} does not exist; {parent} holds: {_available(parent)}. "
                f"Check --data (the folder holding Images/ and Annotations/), the microscope "
                f"({microscope!r}), split ({split!r}) and magnification ({magnification!r}). {_FORMAT_HINT}"
            )
    skipped: Counter = Counter()
    split_list = ann_split / f"{split}.txt"
    if split_list.is_file():
        keys = [field_key(line) for line in split_list.read_text().splitlines() if line.strip()]
        source_note = f"stems from {split_list.name}"
    else:
        keys = sorted(field_key(p.name) for p in ann_dir.glob("*.xml"))
        source_note = f"no {split_list.name}: every XML in the folder"
    fields = []
    for key in dict.fromkeys(keys):  # keeps order, drops repeated stems
        xml = next((ann_dir / f"{p}{key}_{magnification}.xml" for p in ("", "HCM_")
                    if (ann_dir / f"{p}{key}_{magnification}.xml").is_file()), None)
        if xml is None:
            skipped["missing_xml"] += 1
            continue
        try:
            voc = parse_voc(xml)
        except ET.ParseError:
            skipped["unparsable_xml"] += 1
            continue
        skipped.update(voc.skipped)
        image_path = _find_image(img_dir, key, magnification, voc.filename)
        if image_path is None:
            skipped["missing_image"] += 1
            continue
        width, height = _image_size(image_path)
        if voc.width is not None and (voc.width, voc.height) != (width, height):
            skipped["size_mismatch (boxes clipped to the image)"] += 1
        boxes = [b for b in (clip_box(b, width, height) for b in voc.boxes) if b is not None]
        skipped["box_outside_image"] += len(voc.boxes) - len(boxes)
        if not boxes:
            skipped["image_without_objects"] += 1
            continue
        fields.append(Field(image_path, width, height, boxes, [], key))
    source = f"M5 {root} [{microscope}/{split}/{magnification}; {source_note}]"
    return FieldSet(fields, +skipped, source)  # unary + drops zero counts


def pair_microscopes(a: FieldSet, b: FieldSet) -> list[tuple[Field, Field]]:
    """Fields of two microscopes (e.g. HCM and LCM) that show the same slide region, by :func:`field_key`."""
    by_key = {f.key: f for f in b}
    return [(f, by_key[f.key]) for f in a if f.key in by_key]


# ----------------------------------------------------------------------------- IML-Malaria (JSON)
def load_iml(json_path: str | os.PathLike, image_dir: str | os.PathLike | None = None) -> FieldSet:
    """Fields of the IML-Malaria dataset (or a part of its ``annotations.json``).

    Args:
        json_path: the annotations file (a JSON array, one element per image).
        image_dir: folder of the ``.JPG`` images; default ``IML_Malaria/`` beside the JSON when
            that exists, else the JSON's own folder.

    Returns:
        Fields with at least one stage box. Red blood cells become ``negatives``; ``difficult``
        and other types are ignored. Boxes are clipped (some reach 5 px past the edge).
    """
    json_path = Path(json_path)
    if image_dir is None:
        image_dir = json_path.parent / "IML_Malaria"
        if not image_dir.is_dir():
            image_dir = json_path.parent
    image_dir = Path(image_dir)
    try:
        entries = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise MalariaDataError(f"Could not read IML annotations {json_path}: {err}. {_FORMAT_HINT}") from None
    if not isinstance(entries, list):
        raise MalariaDataError(f"{json_path} is not an IML-Malaria annotation array. {_FORMAT_HINT}")
    skipped: Counter = Counter()
    fields = []
    for entry in entries:
        image_path = image_dir / str(entry.get("image_name", ""))
        if not image_path.is_file():
            skipped["missing_image"] += 1
            continue
        width, height = _image_size(image_path)
        boxes, negatives = [], []
        for obj in entry.get("objects", []):
            kind = str(obj.get("type", "")).strip().lower()
            stage = stage_of(kind)
            if stage is None and kind not in IML_NEGATIVE_TYPES:
                skipped["other_class"] += 1  # "difficult" and anything unknown
                continue
            try:
                bb = obj["bbox"]
                x, y, w, h = (_to_int(str(bb[k])) for k in ("x", "y", "w", "h"))
            except (KeyError, TypeError, ValueError):
                skipped["unreadable_box"] += 1
                continue
            box = clip_box(Box(x, y, x + w, y + h, NO_STAGE if stage is None else stage), width, height)
            if box is None:
                skipped["degenerate_box"] += 1
                continue
            (negatives if stage is None else boxes).append(box)
        if not boxes:
            skipped["image_without_objects"] += 1
            continue
        fields.append(Field(image_path, width, height, boxes, negatives, image_path.stem))
    return FieldSet(fields, +skipped, f"IML-Malaria {json_path}")


# ----------------------------------------------------------------------------- either format
def load_fields(path: str | os.PathLike, **m5_options) -> FieldSet:
    """Load whichever format ``path`` holds.

    Args:
        path: an M5 root (with ``Images/`` and ``Annotations/``), an IML ``.json`` file, a folder
            holding one, or a folder with one such dataset one level down (e.g. ``malaria_sample/``).
        **m5_options: ``split``, ``magnification``, ``microscope`` for :func:`load_m5`.

    Raises:
        MalariaDataError: nothing recognisable at ``path``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise MalariaDataError(f"--data {path} does not exist. {_FORMAT_HINT}")
    if path.is_file() and path.suffix.lower() == ".json":
        return load_iml(path)
    for folder in [path] + (sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []):
        if (folder / "Images").is_dir() and (folder / "Annotations").is_dir():
            return load_m5(folder, **m5_options)
        jsons = sorted(folder.glob("*.json"))
        if jsons:
            return load_iml(jsons[0])
    raise MalariaDataError(
        f"No malaria annotations found at {path}: expected an M5 folder with Images/ and "
        f"Annotations/, or an IML-Malaria annotations .json (here or one folder down). {_FORMAT_HINT}"
    )


def split_by_field(fields: FieldSet, val_fraction: float = 0.25, seed: int = 0,
                   stratify: bool = True) -> tuple[FieldSet, FieldSet]:
    """Seeded train/validation split of whole fields (patches of one field overlap, so never split them).

    With ``stratify`` (the default) every field is put in the stratum of the **rarest** stage it
    holds (rarity from the stage box counts of ``fields``; a field without a stage box in a stratum
    of its own), and each stratum gives ``round(val_fraction * its size)`` fields to validation.
    Without it, one random draw over all fields. IML-Malaria has only 27 schizont boxes in 26
    fields: stratifying keeps about ``val_fraction`` of them (and of every other stage) in each
    part, where a plain random draw may leave the validation fields with two or with twelve.

    Args:
        fields: the fields to split.
        val_fraction: share of the fields (of each stratum) held out.
        seed: of the random choice inside each stratum.
        stratify: split each stratum separately (see above).

    Returns:
        ``(train, val)``, each in the order of ``fields``; ``val`` holds at least one field when
        there are two or more, and ``train`` keeps at least one.
    """
    n = len(fields)
    rng = np.random.default_rng(seed)
    if stratify:
        counts = fields.stage_counts()
        rarity = sorted(range(len(STAGES)), key=lambda k: (counts[STAGES[k]], k))  # rarest first
        strata: dict[int, list[int]] = {}
        for i, f in enumerate(fields):
            present = {b.stage for b in f.boxes}
            key = next((k for k in rarity if k in present), len(STAGES))  # len(STAGES): no stage box
            strata.setdefault(key, []).append(i)
        val_ids = set()
        for key in sorted(strata, key=lambda k: rarity.index(k) if k < len(STAGES) else len(STAGES)):
            ids = strata[key]
            val_ids |= {ids[j] for j in rng.permutation(len(ids))[:round(val_fraction * len(ids))].tolist()}
    else:
        n_val = round(val_fraction * n)
        val_ids = set(rng.permutation(n)[:n_val].tolist())
    if n >= 2 and not val_ids:  # at least one validation field ...
        val_ids = {int(rng.integers(n))}
    if n >= 2 and len(val_ids) == n:  # ... and at least one training field
        val_ids.discard(max(val_ids))
    train = [f for i, f in enumerate(fields) if i not in val_ids]
    val = [f for i, f in enumerate(fields) if i in val_ids]
    note = ", stratified by rarest stage" if stratify else ""
    return (FieldSet(train, Counter(), fields.source + f" (train part{note})"),
            FieldSet(val, Counter(), fields.source + f" (val part{note})"))


def split_counts(parts: Mapping[str, FieldSet]) -> str:
    """A Markdown table of fields and stage boxes per part, e.g. ``split_counts({"train": tr, "val": va})``."""
    rows = ["| part | fields | " + " | ".join(STAGES) + " | stage boxes | cells without a stage |",
            "|---|---|" + "---|" * (len(STAGES) + 2)]
    for name, part in parts.items():
        counts = part.stage_counts()
        rows.append(f"| {name} | {len(part)} | " + " | ".join(str(counts[s]) for s in STAGES)
                    + f" | {sum(counts.values())} | {sum(len(f.negatives) for f in part)} |")
    return "\n".join(rows)


def load_train_val(
    path: str | os.PathLike, val_fraction: float = 0.25, seed: int = 0, stratify: bool = True, **m5_options
) -> tuple[FieldSet, FieldSet]:
    """Training and validation fields of whichever format ``path`` holds.

    M5 has official split folders, so its ``train`` and ``val`` folders are used (``split`` in
    ``m5_options`` is not allowed). IML-Malaria has no split: whole fields are drawn at random
    with :func:`split_by_field`, by default stratified by each field's rarest stage.

    Args:
        path: as :func:`load_fields`.
        val_fraction: share of IML fields held out for validation.
        seed: of the IML split.
        stratify: IML only, see :func:`split_by_field`.
        **m5_options: ``magnification``, ``microscope`` for :func:`load_m5`.

    Returns:
        ``(train, val)`` field sets.
    """
    if "split" in m5_options:
        raise TypeError("load_train_val reads the M5 train and val folders itself; do not pass split=.")
    fields = load_fields(path, split="train", **m5_options)
    if fields.source.startswith("M5"):
        return fields, load_fields(path, split="val", **m5_options)
    return split_by_field(fields, val_fraction, seed, stratify)


def random_dihedral(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each patch turned by a random multiple of 90 degrees and mirrored with probability 1/2.

    A smear has no up, down, left or right, so these 8 symmetries give new, equally real
    patches with the same labels: an 8x larger training set for free, which matters on a
    sample of a few hundred cells.

    Args:
        x: patches (B, C, S, S), square.
        generator: for a reproducible choice (CPU generator).

    Returns:
        A new tensor (B, C, S, S) on ``x``'s device.
    """
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"random_dihedral needs square patches (B, C, S, S), got {tuple(x.shape)}.")
    choice = torch.randint(0, 8, (x.shape[0],), generator=generator).tolist()  # 4 turns x 2 mirrors
    out = torch.empty_like(x)
    for k in range(8):
        idx = [i for i, c in enumerate(choice) if c == k]
        if idx:
            part = x[idx].rot90(k % 4, dims=(-2, -1))
            out[idx] = part.flip(-1) if k >= 4 else part
    return out


# ----------------------------------------------------------------------------- patches
def crop_window(box: Box, context: float, width: int, height: int) -> tuple[int, int, int]:
    """Square window ``(x0, y0, side)`` centred on ``box``, ``context`` x its longer side.

    The window is shifted (never padded) to lie inside the image, so the box stays inside it;
    only when the image is smaller than the window is the side cut to the image's shorter side.
    """
    side = int(round(max(box.width, box.height) * context))
    side = max(1, min(side, width, height))
    cx, cy = box.center
    x0 = int(round(cx - side / 2))
    y0 = int(round(cy - side / 2))
    return min(max(x0, 0), width - side), min(max(y0, 0), height - side), side


def window_label(boxes: Sequence[Box], x0: int, y0: int, side: int, min_visible: float = 0.5) -> np.ndarray:
    """Multi-hot ``(4,)`` label of a window: stage k is on when some stage-k box has at least
    ``min_visible`` of its area inside the window."""
    label = np.zeros(len(STAGES), dtype=np.float32)
    for b in boxes:
        iw = min(b.xmax, x0 + side) - max(b.xmin, x0)
        ih = min(b.ymax, y0 + side) - max(b.ymin, y0)
        if iw > 0 and ih > 0 and iw * ih >= min_visible * b.width * b.height:
            label[b.stage] = 1.0
    return label


def _negative_boxes(f: Field, count: int, rng: np.random.Generator) -> list[Box]:
    """Up to ``count`` cells without a stage: annotated ones first, else random points."""
    if count <= 0:
        return []

    def inside_stage_box(b: Box) -> bool:
        cx, cy = b.center
        return any(s.xmin <= cx < s.xmax and s.ymin <= cy < s.ymax for s in f.boxes)

    cells = [b for b in f.negatives if not inside_stage_box(b)]
    if cells:
        picks = rng.choice(len(cells), size=min(count, len(cells)), replace=False)
        return [cells[i] for i in sorted(picks.tolist())]
    # No annotated healthy cells (M5): random windows of a typical stage-cell size.
    side = int(np.median([max(b.width, b.height) for b in f.boxes]))
    side = max(1, min(side, f.width, f.height))
    xs = rng.integers(0, f.width - side + 1, size=count)
    ys = rng.integers(0, f.height - side + 1, size=count)
    return [Box(int(x), int(y), int(x) + side, int(y) + side, NO_STAGE) for x, y in zip(xs, ys)]


def extract_patches(
    fields: Sequence[Field] | FieldSet,
    size: int = 32,
    context: float = 1.5,
    min_visible: float = 0.5,
    negatives_per_field: int = 0,
    seed: int = 0,
    with_field_index: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cell-centred square patches with multi-hot stage labels.

    Args:
        fields: loaded fields (:func:`load_m5`, :func:`load_iml`, :func:`load_fields`).
        size: patch side in pixels after resizing (32 or 64 for the lab's GAN).
        context: crop side / longer side of the cell's box; 1.5 keeps a ring of neighbours.
        min_visible: fraction of a stage box's area that must be inside a crop to label it.
        negatives_per_field: extra crops per field centred on cells without a stage (IML red
            blood cells, chosen at random) or, without such cells, on random points. Their
            labels follow the same rule, so most are all-zero.
        seed: for choosing the negatives.
        with_field_index: also return the field of every patch.

    Returns:
        ``(x, y)``: patches ``(N, 3, size, size)`` float32 in [-1, 1] and labels ``(N, 4)``
        float32 in {0, 1}, columns in :data:`STAGES` order. Per field, the cell-centred crops
        (one per stage box, box order) come first, then its negatives. With
        ``with_field_index``, ``(x, y, field)``: ``field`` (N,) int64, the position in ``fields``
        of the field each patch was cut from.
    """
    rng = np.random.default_rng(seed)
    patches, labels, field_index = [], [], []
    for index, f in enumerate(fields):
        centres = list(f.boxes) + _negative_boxes(f, negatives_per_field, rng)
        with Image.open(f.image_path) as im:
            im = im.convert("RGB")
            for box in centres:
                x0, y0, side = crop_window(box, context, f.width, f.height)
                label = window_label(f.boxes, x0, y0, side, min_visible)
                if box.stage != NO_STAGE:
                    label[box.stage] = 1.0  # the centred cell itself, whatever min_visible says
                # PIL's BILINEAR resize averages over the whole source footprint when shrinking
                # (antialiased), so a 300 px cell becomes a clean 32 px patch.
                crop = im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
                patches.append(np.asarray(crop, dtype=np.uint8))  # (size, size, 3)
                labels.append(label)
                field_index.append(index)
    if not patches:
        empty = (torch.zeros(0, 3, size, size), torch.zeros(0, len(STAGES)))
        return empty + (torch.zeros(0, dtype=torch.long),) if with_field_index else empty
    x = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float()  # (N, 3, S, S) in [0, 255]
    x = x.div_(127.5).sub_(1.0)  # -> [-1, 1]
    y = torch.from_numpy(np.stack(labels))  # (N, 4)
    if with_field_index:
        return x.contiguous(), y, torch.tensor(field_index, dtype=torch.long)
    return x.contiguous(), y


def load_patches(
    path: str | os.PathLike,
    size: int = 32,
    context: float = 1.5,
    min_visible: float = 0.5,
    negatives_per_field: int = 0,
    seed: int = 0,
    **m5_options,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`load_fields` then :func:`extract_patches`; returns ``(x (N,3,S,S) in [-1,1], y (N,4))``."""
    fields = load_fields(path, **m5_options)
    return extract_patches(fields, size, context, min_visible, negatives_per_field, seed)


# ----------------------------------------------------------------------------- summary / CLI
def summarize(fields: FieldSet, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> str:
    """A few lines on what was loaded (and, given patches, what they hold)."""
    counts = fields.stage_counts()
    lines = [
        f"Source: {fields.source}",
        f"Fields kept: {len(fields)}",
        "Stage boxes: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (total {sum(counts.values())})",
        f"Cells without a stage (negatives available): {sum(len(f.negatives) for f in fields)}",
        "Skipped: " + (", ".join(f"{k} {v}" for k, v in sorted(fields.skipped.items())) or "nothing"),
    ]
    if fields.fields:
        sizes = Counter(f"{f.width}x{f.height}" for f in fields)
        lines.append("Image sizes: " + ", ".join(f"{k} ({v})" for k, v in sizes.most_common()))
    if x is not None and y is not None:
        on = y.sum(0).int().tolist()
        lines.append(
            f"Patches: {tuple(x.shape)} in [{x.min().item() if len(x) else 0:.2f}, "
            f"{x.max().item() if len(x) else 0:.2f}]; labelled "
            + ", ".join(f"{k} {v}" for k, v in zip(STAGES, on))
            + f"; no stage {int((y.sum(1) == 0).sum())}; several stages {int((y.sum(1) > 1).sum())}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.malaria",
        description="Read an M5-Malaria or IML-Malaria folder and print what the lab would train on.",
    )
    parser.add_argument("--data", required=True, help="M5 root (Images/, Annotations/), IML .json, or a folder holding one")
    parser.add_argument("--split", default="train", help="M5 split folder (train, val, test)")
    parser.add_argument("--magnification", default="1000x", help="M5 magnification (1000x, 400x, 100x)")
    parser.add_argument("--microscope", default="HCM", help="M5 microscope folder (HCM, LCM, ...)")
    parser.add_argument("--size", type=int, default=32, help="patch side in pixels")
    parser.add_argument("--context", type=float, default=1.5, help="crop side / cell box side")
    parser.add_argument("--negatives", type=int, default=0, help="negative crops per field")
    args = parser.parse_args(argv)
    try:
        fields = load_fields(args.data, split=args.split, magnification=args.magnification, microscope=args.microscope)
    except MalariaDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    x, y = extract_patches(fields, args.size, args.context, negatives_per_field=args.negatives)
    print(summarize(fields, x, y))
    return 0


if __name__ == "__main__":
    sys.exit(main())
