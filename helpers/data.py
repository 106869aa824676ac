"""MNIST and Fashion-MNIST as whole tensors on the training device.

The original IDX gzip files are parsed directly (no torchvision extraction step), so a
read-only data folder (a shared course drive, ``../shared/data``) is read without writing
into it. When the files are missing they are downloaded into a writable folder, and when
that is impossible the loader stops with one message that names the folder it looked in
and points to ``data_README.md``.

Root resolution: explicit ``root`` argument, else ``$GANLAB_DATA``, else ``./data``
(the variables are read by :func:`helpers.env.settings`).
Expected layout (torchvision's): ``<root>/MNIST/raw/train-images-idx3-ubyte.gz`` etc.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from helpers.env import settings

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_README_HINT = (
    "See data_README.md (where each dataset comes from, the expected layout, and how to "
    "point the labs at a local copy with GANLAB_DATA=/path/to/data)."
)


class DataNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor downloadable; the message says where we looked."""


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """Folder that holds ``MNIST/`` and ``FashionMNIST/``.

    Args:
        root: explicit folder; wins over everything else.

    Returns:
        ``root``, else ``$GANLAB_DATA``, else ``./data`` (as an absolute path).
    """
    if root is None:
        root = settings().data or "data"
    return Path(root).expanduser().resolve()


def _find_file(raw_dir: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (raw_dir / name).is_file():
            return raw_dir / name
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataNotFoundError(
            f"Could not read {path}: {err}. The file is damaged or truncated; delete it so it "
            f"is downloaded again, or replace it with the original. {_README_HINT}"
        ) from err
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DataNotFoundError(f"{path} is not an IDX file of unsigned bytes. {_README_HINT}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataNotFoundError(
            f"{path} holds {len(data) - offset} values but its header announces {expected}: "
            f"the file is truncated. Delete it and load again. {_README_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _download(name: str, root: Path) -> None:
    """Download ``name`` into ``root`` with torchvision (which checks the md5 sums)."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST}[name]
    for train in (True, False):
        cls(root=str(root), train=train, download=True)


def _writable_cache() -> Path:
    """``$GANLAB_CACHE``, else ``~/.cache/gan-lab/data``: where downloads go when the data folder is read-only."""
    return settings().cache or Path.home() / ".cache" / "gan-lab" / "data"


def _locate_raw(name: str, root: Path, download: bool) -> Path:
    """Folder holding the four raw files, downloading them when allowed and needed."""
    folder = _FOLDERS[name]
    candidates = [root / folder / "raw", _writable_cache() / folder / "raw"]
    stems = _FILES[True] + _FILES[False]
    for raw in candidates:
        if all(_find_file(raw, s) for s in stems):
            return raw
    if download:
        # Download into root when we may write there, else into the user's cache.
        target = root if os.access(root if root.exists() else root.parent, os.W_OK) else _writable_cache()
        try:
            target.mkdir(parents=True, exist_ok=True)
            _download(name, target)
        except Exception as err:  # network errors come in many types (URLError, OSError, RuntimeError)
            raise DataNotFoundError(
                f"{folder} was not found in {root / folder / 'raw'} and could not be downloaded "
                f"({type(err).__name__}: {err}). Put the four original .gz files there, or set "
                f"GANLAB_DATA to a folder that holds {folder}/raw/. {_README_HINT}"
            ) from err
        raw = target / folder / "raw"
        if all(_find_file(raw, s) for s in stems):
            return raw
    raise DataNotFoundError(
        f"{folder} was not found: looked in {root / folder / 'raw'} for {', '.join(s + '.gz' for s in stems)} "
        f"(downloads {'failed' if download else 'are turned off'}). Set GANLAB_DATA to the folder that "
        f"holds {folder}/raw/, or pass root=... . {_README_HINT}"
    )


def load_images(
    name: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    limit: int | None = None,
    download: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST or Fashion-MNIST whole, scaled to [-1, 1].

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        train: the 60k training split (True) or the 10k test split (False).
        root: data folder; see :func:`resolve_data_root`.
        device: where the tensors live (the training device: batching then costs nothing).
        limit: keep only the first ``limit`` images (smoke runs).
        download: try to download missing files; default True unless ``$GANLAB_OFFLINE=1``.

    Returns:
        ``(x, y)``: images ``(N, 1, 28, 28)`` float32 in [-1, 1] and labels ``(N,)`` int64.
    """
    if name not in _FOLDERS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(_FOLDERS)}.")
    if download is None:
        download = not settings().offline
    raw = _locate_raw(name, resolve_data_root(root), download)
    img_stem, lbl_stem = _FILES[train]
    images = _read_idx(_find_file(raw, img_stem))
    labels = _read_idx(_find_file(raw, lbl_stem))
    if images.shape[0] != labels.shape[0]:
        raise DataNotFoundError(f"{raw}: {images.shape[0]} images but {labels.shape[0]} labels. {_README_HINT}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.copy()).to(device=device, dtype=torch.float32)
    x = x.div_(127.5).sub_(1.0).unsqueeze(1)  # (N, 1, 28, 28), [0, 255] -> [-1, 1]
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return x, y


def load_mnist(**kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits; keyword arguments as :func:`load_images`."""
    return load_images("mnist", **kwargs)


def load_fashion_mnist(**kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST; keyword arguments as :func:`load_images`."""
    return load_images("fashion_mnist", **kwargs)


@dataclass
class TensorBatcher:
    """Shuffled mini-batches from tensors that already live on the training device.

    No DataLoader and no worker processes: one random permutation per epoch, then index
    slices. The last, shorter batch is kept (``drop_last=False``) unless asked otherwise,
    so no image is silently skipped.

    Args:
        tensors: tensors with the same first dimension (e.g. images and labels).
        batch_size: images per batch.
        drop_last: drop a final batch smaller than ``batch_size`` (BatchNorm dislikes size 1).
        generator: optional ``torch.Generator`` for a reproducible order.
    """

    tensors: tuple[torch.Tensor, ...]
    batch_size: int
    drop_last: bool = False
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tensors, tuple):
            self.tensors = tuple(self.tensors)
        n = {t.shape[0] for t in self.tensors}
        if len(n) != 1:
            raise ValueError(f"All tensors need the same length; got lengths {sorted(n)}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}.")

    @property
    def num_samples(self) -> int:
        return self.tensors[0].shape[0]

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self.tensors[0].device
        perm = torch.randperm(self.num_samples, generator=self.generator).to(device)
        for i in range(len(self)):
            idx = perm[i * self.batch_size: (i + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)
