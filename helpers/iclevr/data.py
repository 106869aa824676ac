"""i-CLEVR for the multi-label conditional GAN lab: the label files, conditions as 24-hot vectors, images.

**The label files** (``objects.json``, ``train.json``, ``test.json``, ``new_test.json``: the NYCU/NCTU Deep
Learning course's ``lab6/``, about 1.6 MB) are found by :func:`iclevr_meta_folder`, in this order:

1. ``$GANLAB_DATA/iclevr_meta`` when it holds the four files as the manifest records them, used in place
   (it may be read-only: ``../shared/data`` on the course machines);
2. ``data/iclevr_meta`` in the working directory (checked the same way);
3. the cache, ``iclevr_meta/`` under ``$GANLAB_CACHE``; else, in Colab, under ``MyDrive/gan-lab/data`` on
   Google Drive (the runtime's disk, with a warning, when Drive cannot be mounted); else under
   ``~/.cache/gan-lab/data``. Missing files are fetched there from the public repository at the pinned
   commit (``https://raw.githubusercontent.com/<repository>/<commit>/lab6/<file>``), each checked against
   its size and SHA-256 in ``iclevr_meta_manifest.json`` and written atomically (the machinery of
   :mod:`helpers.malaria.fetch`). With ``$GANLAB_OFFLINE`` set nothing is fetched: :class:`IclevrDataError`
   names every place looked at.

**The images.** The course hands its i-CLEVR images out separately; they are not public. By default
:func:`load_iclevr` draws a procedural stand-in for every ``train.json`` entry (:mod:`helpers.iclevr.render`:
the same 24 objects on a grey floor; NOT the original images, so numbers are not comparable with the
course's). Renders are cached as one ``.npy`` per renderer version and size under
``iclevr_render/`` in ``$GANLAB_CACHE`` (else ``~/.cache/gan-lab/data``; in Colab the runtime's own disk:
rendering all 18,009 takes under a minute, less than reading 220 MB back from Drive). Users who have the
course's ``iclevr/`` folder pass it as ``images=`` (or set ``$GANLAB_ICLEVR_IMAGES``).

**Conditions.** One condition is a list of 1 to 3 distinct object names of ``objects.json``; as a vector,
a 24-hot float32 array in ``objects.json``'s order (:data:`OBJECTS`: indices 0-7 cubes, 8-15 spheres,
16-23 cylinders, colours gray, red, blue, green, brown, purple, cyan, yellow). :func:`encode_conditions`
turns what a student passes into an ``(n, 24)`` array, refusing anything else with a message that says
what was wrong.

Command line::

    python -m helpers.iclevr.data path                       # where the label files are (fetched when needed)
    python -m helpers.iclevr.data fetch DEST [--source URL_OR_FOLDER]
    python -m helpers.iclevr.data manifest FOLDER [--check]   # regenerate the manifest from a complete copy
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from helpers.env import drive_root, in_colab, mount_drive, settings
from helpers.iclevr.render import OBJECTS, render_entries, render_scene, scene_seed
from helpers.malaria.fetch import (
    Manifest,
    _base_url,
    _local_cache,
    _write_atomic,
    fetch_verified,
    load_manifest,
    manifest_text,
    sha256_file,
    verify,
)

META_FOLDER = "iclevr_meta"            # the label files' folder under a data root or a cache
META_FILES = ("objects.json", "train.json", "test.json", "new_test.json")
MANIFEST_PATH = Path(__file__).with_name("iclevr_meta_manifest.json")
RENDER_FOLDER = "iclevr_render"        # cached renders, under the local cache
# Bump whenever render.py draws anything differently: cached renders are keyed by it (and a few rows of
# every cache are re-rendered and compared on load, so a forgotten bump is caught too).
RENDERER_VERSION = 1
RENDER_SIZE = 64                       # sizes below this are area-downsampled from 64 x 64 renders
NUM_OBJECTS = len(OBJECTS)             # 24
MAX_OBJECTS = 3                        # per condition, as in train.json, test.json and new_test.json
TEST_SETS = ("test", "new_test")
_HINT = 'See data_README.md (section "i-CLEVR").'


class IclevrDataError(FileNotFoundError):
    """The i-CLEVR label files or images are not where they were looked for; the message says what to do."""


# ----------------------------------------------------------------------------- the label files
def load_meta_manifest(path: str | os.PathLike = MANIFEST_PATH) -> tuple[Manifest, str]:
    """The committed manifest of the label files and the upstream folder that holds them (``lab6``)."""
    manifest = load_manifest(path)
    folder = str(json.loads(Path(path).read_text()).get("folder", "")).strip("/")
    return manifest, folder


def make_meta_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a complete copy of the four label files (JSON-ready, as :func:`manifest_text` stores it).

    Args:
        folder: a folder holding ``objects.json``, ``train.json``, ``test.json`` and ``new_test.json``.

    Raises:
        FileNotFoundError: one of them is missing.
    """
    folder = Path(folder)
    missing = [name for name in META_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a complete copy of the i-CLEVR label files: missing {missing}")
    old = json.loads(MANIFEST_PATH.read_text())
    return {
        "dataset": old["dataset"],
        "repository": old["repository"],
        "commit": old["commit"],
        "folder": old["folder"],
        "regenerate": "python -m helpers.iclevr.data manifest /path/to/iclevr_meta",
        "files": [{"path": n, "size": (folder / n).stat().st_size, "sha256": sha256_file(folder / n)}
                  for n in META_FILES],
    }


def fetch_iclevr_meta(
    dest: str | os.PathLike,
    source: str | os.PathLike | None = None,
    manifest_path: str | os.PathLike = MANIFEST_PATH,
    retries: int = 3,
    verbose: bool = True,
) -> Path:
    """Make ``dest`` hold the four verified label files, fetching only those missing or damaged.

    Args:
        dest: the folder to fill (created).
        source: a URL prefix (``https://``, ``file://``) or a local folder holding the four files;
            default the upstream ``lab6/`` folder at the pinned commit on GitHub.
        manifest_path: default the committed manifest.
        retries: attempts per file.
        verbose: print what is fetched.

    Returns:
        ``dest``, complete.

    Raises:
        IclevrDataError: files are missing, ``$GANLAB_OFFLINE`` is set and ``source`` is not local; or a file
            could not be fetched and verified (each named, with why; nothing unverified is written).
    """
    manifest, upstream = load_meta_manifest(manifest_path)
    return fetch_verified(manifest, dest, _base_url(source if source is not None else manifest.base_url + upstream),
                          what="i-CLEVR label files", hint=_HINT, offline_error=IclevrDataError,
                          fetch_error=IclevrDataError, workers=1, retries=retries, verbose=verbose)


def meta_cache_folder() -> Path:
    """Where fetched label files go: ``iclevr_meta/`` under ``$GANLAB_CACHE``; else in Colab under
    ``MyDrive/gan-lab/data`` (the runtime's disk, with a warning, when Drive cannot be mounted); else under
    ``~/.cache/gan-lab/data``."""
    if settings().cache is None and in_colab():
        failed = mount_drive()
        if failed is None:
            return drive_root() / "data" / META_FOLDER
        local = _local_cache() / META_FOLDER
        print(f"WARNING: Google Drive could not be mounted ({failed}); the i-CLEVR label files (1.6 MB) go to "
              f"{local} on this runtime's disk and are fetched again next session.")
        return local
    return _local_cache() / META_FOLDER


def iclevr_meta_folder(source: str | os.PathLike | None = None) -> Path:
    """The folder holding the four label files, fetching them into the cache when needed.

    The order is the module docstring's: ``$GANLAB_DATA/iclevr_meta``, ``data/iclevr_meta``, the cache.

    Args:
        source: where to fetch from (see :func:`fetch_iclevr_meta`); default GitHub at the pinned commit.

    Returns:
        A folder whose four files match the manifest.

    Raises:
        IclevrDataError: offline (or the fetch failed) and no verified copy exists; names every place looked at.
    """
    env = settings()
    manifest, _ = load_meta_manifest()
    looked = []
    candidates = [] if env.data is None else [env.data / META_FOLDER]
    if env.data is None:
        looked.append("$GANLAB_DATA/iclevr_meta: GANLAB_DATA not set")
    candidates.append(Path("data") / META_FOLDER)
    for folder in candidates:
        problems = verify(folder, manifest) if folder.is_dir() else None
        if problems == {}:
            return folder
        if problems and len(problems) < len(manifest.files):
            print(f"Note: not using {folder}: {_problems_line(problems)}.")
        looked.append(f"{folder.resolve()}: " + (_problems_line(problems) if problems else "does not exist"))
    cache = meta_cache_folder()
    if not env.offline or source is not None:
        return fetch_iclevr_meta(cache, source=source)
    problems = verify(cache, manifest) if cache.is_dir() else None
    if problems == {}:
        return cache
    looked.append(f"{cache} (the download cache): " + (_problems_line(problems) if problems else "does not exist"))
    places = "\n".join(f"  - {line}" for line in looked)
    raise IclevrDataError(
        f"The i-CLEVR lab needs its label files ({', '.join(META_FILES)}), and no verified copy is on this "
        f"machine; GANLAB_OFFLINE is set, so they were not downloaded. Looked at:\n{places}\n"
        f"Unset GANLAB_OFFLINE to fetch them (1.6 MB) into {cache}, or copy them to one of those places. {_HINT}"
    )


def _problems_line(problems: dict[str, str]) -> str:
    return "; ".join(f"{path}: {why}" for path, why in problems.items())


@lru_cache(maxsize=4)
def _read_json(path: str, mtime_ns: int) -> object:
    return json.loads(Path(path).read_text())


def _meta(name: str) -> object:
    path = iclevr_meta_folder() / name
    return _read_json(str(path), path.stat().st_mtime_ns)


def load_objects() -> list[str]:
    """The 24 object names in ``objects.json``'s index order (checked to equal :data:`OBJECTS`)."""
    mapping = _meta("objects.json")
    names = sorted(mapping, key=mapping.get)
    if names != list(OBJECTS) or sorted(mapping.values()) != list(range(NUM_OBJECTS)):
        raise IclevrDataError(f"objects.json does not map the 24 names to 0..23 in the expected order: {mapping}")
    return names


def load_train_entries() -> list[tuple[str, list[str]]]:
    """``train.json`` as ``(file name, object names)`` pairs, in the file's order (18,009 entries)."""
    load_objects()
    return [(name, list(objects)) for name, objects in _meta("train.json").items()]


def load_test_conditions(name: str = "test") -> list[list[str]]:
    """The 32 conditions of ``test.json`` (``name="test"``) or ``new_test.json`` (``"new_test"``).

    Args:
        name: ``"test"`` or ``"new_test"``.

    Returns:
        One list of 1 to 3 object names per image to generate.
    """
    if name not in TEST_SETS:
        raise ValueError(f"Unknown test set {name!r}: use 'test' (test.json) or 'new_test' (new_test.json).")
    return [list(c) for c in _meta(f"{name}.json")]


# ----------------------------------------------------------------------------- conditions
def _check_names(names: Sequence, where: str) -> list[int]:
    """Indices of one condition given as names; ValueError naming what is wrong."""
    if isinstance(names, (str, bytes)):
        raise ValueError(f"{where} is the bare string {names!r}: give a list of object names, e.g. [{names!r}].")
    names = list(names)
    if not names:
        raise ValueError(f"{where} has no object: give 1 to {MAX_OBJECTS} object names, e.g. ['red cube'].")
    idx = []
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"{where} holds {name!r} ({type(name).__name__}): object names are strings such as "
                             f"'red cube'.")
        if name not in OBJECTS:
            close = difflib.get_close_matches(name.strip().lower(), OBJECTS, n=3, cutoff=0.5)
            tip = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"{where}: unknown object {name!r}.{tip} Names are '<colour> <shape>' with colour in "
                             f"gray, red, blue, green, brown, purple, cyan, yellow and shape in cube, sphere, cylinder.")
        idx.append(OBJECTS.index(name))
    dups = sorted({OBJECTS[i] for i in idx if idx.count(i) > 1})
    if dups:
        raise ValueError(f"{where} names {', '.join(repr(d) for d in dups)} more than once: each object appears "
                         f"at most once per image.")
    if len(idx) > MAX_OBJECTS:
        raise ValueError(f"{where} has {len(idx)} objects: at most {MAX_OBJECTS} per image (as in i-CLEVR's "
                         f"train.json and test files).")
    return idx


def _check_vectors(vec: np.ndarray, where: str) -> np.ndarray:
    """``vec`` (n, 24) of 0/1 with 1..3 ones per row, as float32; ValueError naming what is wrong."""
    if vec.shape[-1] != NUM_OBJECTS:
        raise ValueError(f"{where} has length {vec.shape[-1]}: a condition vector has {NUM_OBJECTS} entries "
                         f"(one per object of objects.json).")
    bad = ~np.isin(vec, (0, 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{where} holds {float(vec[row, col]):g} (row {row}, entry {col}): a condition vector holds "
                         f"only 0 and 1 (multi-hot); threshold probabilities first if you meant them.")
    counts = vec.sum(axis=1)
    for row, count in enumerate(counts):
        if count == 0:
            raise ValueError(f"{where}, row {row}, has no object (all zeros): every image needs 1 to "
                             f"{MAX_OBJECTS} objects.")
        if count > MAX_OBJECTS:
            raise ValueError(f"{where}, row {row}, has {int(count)} objects: at most {MAX_OBJECTS} per image.")
    return vec.astype(np.float32)


def _is_number_list(values) -> bool:
    """A non-empty list of plain numbers (not bools): a 24-hot vector written as a list."""
    return bool(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)


def _is_one_condition(objects) -> bool:
    """A list of names or a 1-D vector (one condition), as opposed to a list of conditions or a 2-D array."""
    if isinstance(objects, (np.ndarray, torch.Tensor)):
        return objects.ndim == 1
    # any nested list or vector makes it a list of conditions (a stray string in it is then reported as one)
    return not any(isinstance(o, (list, tuple, np.ndarray, torch.Tensor)) for o in objects)


def encode_conditions(objects, n: int | None = None) -> np.ndarray:
    """Conditions as 24-hot vectors, checked.

    Args:
        objects: ONE condition for all ``n`` images: a list of 1 to 3 distinct object names
            (``["red cube", "blue sphere"]``) or a 24-hot 1-D array/tensor; or one condition per image:
            a list of such lists, or an ``(n, 24)`` array/tensor of 0/1.
        n: the number of images; default 1 for one condition, else the number of conditions given.

    Returns:
        ``(n, 24)`` float32 array, one row per image, in ``objects.json``'s order.

    Raises:
        ValueError: a bare string, an unknown name (close matches suggested), a name twice, no object,
            more than 3 objects, a value other than 0/1, a vector whose length is not 24, a 3-D array,
            or a number of conditions different from ``n``.
    """
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n must be a positive int, got {n!r}.")
    if isinstance(objects, (str, bytes)):
        raise ValueError(f"objects is the bare string {objects!r}: give a list of object names, e.g. [{objects!r}], "
                         f"or a list of such lists (one per image).")
    if isinstance(objects, torch.Tensor):
        objects = objects.detach().cpu().numpy()
    if isinstance(objects, np.ndarray) and objects.dtype.kind in "biuf":
        if objects.ndim not in (1, 2):
            raise ValueError(f"objects has shape {objects.shape}: give a (24,) vector or an (n, 24) array.")
        if objects.ndim == 1:
            vec = _check_vectors(objects[None, :], "the condition vector")
            return np.repeat(vec, n or 1, axis=0)
        vec = _check_vectors(objects, "the condition array")
        if n is not None and vec.shape[0] != n:
            raise ValueError(f"{vec.shape[0]} conditions for n={n} images: give one condition (used for every image) "
                             f"or exactly n.")
        return vec
    if not isinstance(objects, (list, tuple)):
        raise ValueError(f"objects is a {type(objects).__name__}: give a list of object names, a list of such lists, "
                         f"or a 24-hot array.")
    if _is_number_list(objects):
        return encode_conditions(np.asarray(objects, dtype=np.float64), n)   # a 24-hot vector as a plain list
    if _is_one_condition(objects):
        row = np.zeros((1, NUM_OBJECTS), dtype=np.float32)
        row[0, _check_names(objects, "the condition")] = 1.0
        return np.repeat(row, n or 1, axis=0)
    if n is not None and len(objects) != n:
        raise ValueError(f"{len(objects)} conditions for n={n} images: give one condition (used for every image) "
                         f"or exactly n.")
    out = np.zeros((len(objects), NUM_OBJECTS), dtype=np.float32)
    for i, cond in enumerate(objects):
        if isinstance(cond, torch.Tensor):
            cond = cond.detach().cpu().numpy()
        if isinstance(cond, (list, tuple)) and _is_number_list(cond):
            cond = np.asarray(cond, dtype=np.float64)                  # a 24-hot vector as a plain list
        if isinstance(cond, np.ndarray) and cond.dtype.kind in "biuf":
            if cond.ndim != 1:
                raise ValueError(f"condition {i} has shape {cond.shape}: a condition vector is 1-D ({NUM_OBJECTS},).")
            out[i] = _check_vectors(cond[None, :], f"condition {i}")[0]
        else:
            out[i, _check_names(cond, f"condition {i}")] = 1.0
    return out


def decode_condition(vec) -> list[str]:
    """The object names of one 24-hot vector, in ``objects.json``'s order.

    Args:
        vec: a ``(24,)`` array, tensor or list of 0/1 with 1 to 3 ones.

    Returns:
        e.g. ``["red cube", "blue sphere"]``.
    """
    if isinstance(vec, torch.Tensor):
        vec = vec.detach().cpu().numpy()
    vec = np.asarray(vec)
    if vec.ndim != 1:
        raise ValueError(f"decode_condition takes one (24,) vector, got shape {vec.shape}; decode rows one by one.")
    row = _check_vectors(vec[None, :], "the condition vector")[0]
    return [OBJECTS[i] for i in np.flatnonzero(row)]


# ----------------------------------------------------------------------------- images
def render_cache_path(size: int, version: int | None = None) -> Path:
    """The ``.npy`` of cached renders for one renderer version and size (under the local cache)."""
    version = RENDERER_VERSION if version is None else version
    return _local_cache() / RENDER_FOLDER / f"iclevr_train_r{version}_{size}px.npy"


def _read_render_cache(path: Path, entries: Sequence[tuple[str, Sequence[str]]], size: int) -> np.ndarray | None:
    """The cached renders when ``path`` holds a sound prefix of ``entries``' renders, else ``None`` (with a note)."""
    if not path.is_file():
        return None
    try:
        cached = np.load(path, mmap_mode="r", allow_pickle=False)
        if cached.dtype != np.uint8 or cached.ndim != 4 or cached.shape[1:] != (size, size, 3):
            raise ValueError(f"shape {cached.shape}, dtype {cached.dtype}")
        n = min(cached.shape[0], len(entries))
        # a few rows rendered again must match: catches damage and a renderer changed without a version bump
        for i in sorted({0, n // 2, n - 1}) if n else []:
            if not np.array_equal(cached[i], render_scene(entries[i][1], scene_seed(entries[i][0]), size)):
                raise ValueError(f"row {i} differs from a fresh render")
        return cached
    except (ValueError, OSError, EOFError) as err:
        print(f"Note: re-rendering: the cached renders {path} are unusable ({err}).")
        return None


def _rendered(entries: Sequence[tuple[str, Sequence[str]]], size: int, verbose: bool) -> np.ndarray:
    """Renders of ``entries`` at ``size``, (n, size, size, 3) uint8, through the cache (extended when short)."""
    path = render_cache_path(size)
    cached = _read_render_cache(path, entries, size)
    have = 0 if cached is None else cached.shape[0]
    if have >= len(entries):
        return np.array(cached[: len(entries)])                         # a writable copy, not the memory map
    if verbose and len(entries) - have > 1000:
        print(f"Rendering {len(entries) - have:,} i-CLEVR stand-in images at {size}x{size} "
              f"(about {3 * (len(entries) - have) / 1000 * (size / 64) ** 2:.0f} s, once; cached in {path})")
    start = time.perf_counter()
    fresh = render_entries(entries[have:], size)
    out = fresh if cached is None else np.concatenate([np.asarray(cached), fresh])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, out, allow_pickle=False)
        _write_atomic(path, buffer.getvalue())
    except OSError as err:
        print(f"Note: the renders could not be cached in {path} ({err}); set GANLAB_CACHE to a writable folder.")
    if verbose and len(fresh) > 1000:
        print(f"  rendered {len(fresh):,} images in {time.perf_counter() - start:.0f} s")
    return out


def _downsample(x: np.ndarray, size: int) -> np.ndarray:
    """(n, S, S, 3) uint8 -> (n, size, size, 3) uint8 by area averaging."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=(size, size), mode="area")
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _load_original(folder: Path, entries: Sequence[tuple[str, Sequence[str]]], size: int) -> np.ndarray:
    """The course's PNGs (RGBA 320x240) as RGB, resized to size x size (bilinear, as its loader's Resize)."""
    from PIL import Image

    if not folder.is_dir():
        raise IclevrDataError(f"The i-CLEVR image folder {folder} does not exist: pass images= (or set "
                              f"GANLAB_ICLEVR_IMAGES) to the course's iclevr/ folder of PNGs. {_HINT}")
    missing = [name for name, _ in entries if not (folder / name).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise IclevrDataError(f"{len(missing):,} of {len(entries):,} train.json images are not in {folder}: {shown}. "
                              f"Point images= (or GANLAB_ICLEVR_IMAGES) at the course's complete iclevr/ folder, "
                              f"or pass a smaller limit. {_HINT}")
    out = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, (name, _) in enumerate(entries):
        with Image.open(folder / name) as img:
            out[i] = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    return out


def load_iclevr(
    limit: int | None = None,
    image_size: int = 64,
    images: str | os.PathLike | None = None,
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set: images and their 24-hot conditions, in ``train.json``'s order.

    Args:
        limit: the first ``limit`` entries only (default all 18,009); the first k images are the same
            whatever the limit.
        image_size: the images' height and width; below 64 they are area-downsampled from 64 x 64 renders.
        images: the course's original ``iclevr/`` folder of PNGs (default ``$GANLAB_ICLEVR_IMAGES``; when
            neither is set, the rendered stand-in).
        verbose: say when rendering takes a while.

    Returns:
        ``(x, y)``: ``x`` uint8 ``(N, 3, image_size, image_size)`` in [0, 255]; ``y`` float32 ``(N, 24)``.
    """
    if not isinstance(image_size, int) or not 8 <= image_size <= 256:
        raise ValueError(f"image_size must be an int from 8 to 256 (64 for the course's evaluator), got {image_size!r}.")
    entries = load_train_entries()
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
        entries = entries[:limit]
    folder = images if images is not None else settings().iclevr_images
    if folder is not None:
        x = _load_original(Path(folder).expanduser(), entries, image_size)
    elif image_size >= RENDER_SIZE:
        x = _rendered(entries, image_size, verbose)
    else:
        x = _downsample(_rendered(entries, RENDER_SIZE, verbose), image_size)
    y = encode_conditions([objects for _, objects in entries])
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def reference_seed(seed: int, index: int) -> int:
    """The scene seed of :func:`render_reference`'s image ``index`` (never a train.json scene's crc32 by design)."""
    return int(np.random.SeedSequence([int(seed), int(index), 0x1C1E7]).generate_state(1)[0])


def render_reference(conditions, seed: int = 0, size: int = 64) -> torch.Tensor:
    """Rendered "real" images for given conditions: the real-data floor of the evaluator's metric and of FD.

    Args:
        conditions: what :func:`encode_conditions` takes (a list of conditions, an ``(n, 24)`` array...).
        seed: seeds each image's scene (image i's layout depends only on ``seed``, i and its objects).
        size: height and width; below 64, area-downsampled from 64 x 64 renders (as :func:`load_iclevr`).

    Returns:
        uint8 ``(n, 3, size, size)``.
    """
    vec = encode_conditions(conditions)
    draw = max(size, RENDER_SIZE)
    x = np.stack([render_scene([OBJECTS[j] for j in np.flatnonzero(row)], reference_seed(seed, i), draw)
                  for i, row in enumerate(vec)])
    if size < RENDER_SIZE:
        x = _downsample(x, size)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.iclevr.data",
                                     description="Locate, fetch and verify the i-CLEVR label files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("path", help="print the label files' folder (fetching them when needed)")
    p_fetch = sub.add_parser("fetch", help="fetch a verified copy into DEST")
    p_fetch.add_argument("dest")
    p_fetch.add_argument("--source", default=None, help="URL prefix or local folder holding the four files")
    p_manifest = sub.add_parser("manifest", help="regenerate the manifest from a complete copy")
    p_manifest.add_argument("folder")
    p_manifest.add_argument("--check", action="store_true", help="exit 1 when the committed manifest differs")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(iclevr_meta_folder())
        elif args.command == "fetch":
            print(fetch_iclevr_meta(args.dest, source=args.source))
        else:
            text = manifest_text(make_meta_manifest(args.folder))
            if args.check:
                same = MANIFEST_PATH.read_text() == text
                print(f"{MANIFEST_PATH}: " + ("up to date" if same else f"differs from {args.folder}"))
                return 0 if same else 1
            _write_atomic(MANIFEST_PATH, text.encode())
            print(f"wrote {MANIFEST_PATH}")
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
