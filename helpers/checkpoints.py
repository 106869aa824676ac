"""Checkpoints that survive a Colab disconnect and never lose a student's work.

* Written atomically: the state goes to a temporary file in the same folder, is flushed to
  disk, then ``os.replace`` swaps it in and the folder is fsynced (the rename is durable too).
  A crash mid-write leaves the previous file intact.
* Two files per lab: ``last.pt`` (resume from here) and ``best.pt`` (lowest tracked score).
* Loaded with ``torch.load(..., weights_only=True)``: tensors, numbers, strings, lists and
  dicts only. A pickle that would run code is refused.
* Every failure is one :class:`CheckpointError` naming the file and the cause; a failed load
  never deletes or overwrites anything.

A checkpoint is a plain dict::

    {"format": 1, "epoch": int, "models": {name: state_dict}, "optimizers": {name: state_dict},
     "history": {metric: [float, ...]}, "rng": {...}, "config": {...}, "extra": {...}}
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class CheckpointError(RuntimeError):
    """A checkpoint could not be loaded; the message names the file and what to do."""


# ----------------------------------------------------------------------------- RNG state
def get_rng_state() -> dict[str, Any]:
    """RNG states of Python, NumPy and PyTorch in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": [int(v) for v in py_state[1]],
        "python_version": int(py_state[0]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` saved (CUDA states only when CUDA is present)."""
    torch.set_rng_state(state["torch"].cpu())
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], 0, 0.0))
    random.setstate((state["python_version"], tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ----------------------------------------------------------------------------- files
def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The original module behind ``torch.compile`` (save that, not the wrapper)."""
    return getattr(module, "_orig_mod", module)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, ``os.replace``, then fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def fsync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder, so a rename inside it survives a crash (or a Colab disconnect) as well as the file does.

    Best effort: Windows cannot open a folder, and some file systems (FUSE mounts such as Google Drive's)
    refuse to fsync one; the file's own data is fsynced before the rename either way.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; every failure is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy did not finish. Fetch the file again.")
    if not head.startswith(_ZIP_MAGIC):
        looks = ("an HTML page (a share link that returned a web page instead of the file?)"
                 if head.lstrip().startswith(b"<") else f"something else (it starts with {head[:8]!r})")
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: torch.save writes a zip archive, this file is {looks}. "
            f"Use the checkpoint file itself ({LAST} or {BEST} from the lab's checkpoint folder).")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"Refused to load {path}: it contains Python objects other than tensors and plain "
            f"data, which could run code when unpickled ({str(err).splitlines()[0]}). Only load "
            f"checkpoints written by this lab; delete this file if you do not trust it."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as err:
        raise CheckpointError(
            f"Could not read {path}: the file is corrupt or truncated ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). This happens when a copy or "
            f"an upload was interrupted. Move it away, then copy {BEST} to {LAST} to resume from the best epoch, or start again."
        ) from None
    if not isinstance(obj, dict) or "models" not in obj:
        raise CheckpointError(f"{path} is not a GAN Lab checkpoint (no 'models' entry).")
    return obj


def _load_state(target: Any, state: Mapping[str, Any], what: str, path: Path) -> None:
    try:
        if isinstance(target, torch.nn.Module):
            unwrap(target).load_state_dict(state, strict=True)
        else:
            target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as err:
        detail = " ".join(str(err).split())
        raise CheckpointError(
            f"{path} does not match {what}: {detail[:1500]}. It was probably saved for a different "
            f"architecture or configuration. Point path_to_checkpoint at a new folder, or move this "
            f"file away to start training from scratch."
        ) from None


def restore(
    checkpoint: Mapping[str, Any],
    models: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    path: str | os.PathLike = "<checkpoint>",
    rng: bool = True,
) -> None:
    """Copy a loaded checkpoint into ``models`` (and ``optimizers``), checking every name and shape.

    Every model's keys and shapes, and the presence of every optimizer's state, are checked
    before the first ``load_state_dict``, so a checkpoint of another architecture changes nothing.
    An optimizer state that does not fit its parameter groups is only found by the optimizer's
    own ``load_state_dict``, after the models are loaded; the error then says so.
    """
    path = Path(path)
    saved_models = checkpoint["models"]
    names_needed = set(models)
    if set(saved_models) != names_needed:
        raise CheckpointError(
            f"{path} holds models {sorted(saved_models)} but this notebook has {sorted(names_needed)}. "
            f"Point path_to_checkpoint at the right folder, or move this file away to start again."
        )
    for name, model in models.items():
        own = unwrap(model).state_dict()
        saved = saved_models[name]
        missing = sorted(set(own) - set(saved))
        unexpected = sorted(set(saved) - set(own))
        wrong = [
            f"{k}: saved {tuple(saved[k].shape)}, model {tuple(own[k].shape)}"
            for k in sorted(set(own) & set(saved))
            if hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(own[k].shape)
        ]
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
            if wrong:
                parts.append(f"wrong shapes {wrong[:5]}{' ...' if len(wrong) > 5 else ''}")
            raise CheckpointError(
                f"{path} does not match model {name!r} ({'; '.join(parts)}). It was saved for a "
                f"different architecture. Point path_to_checkpoint at a new folder, or move this "
                f"file away to start training from scratch."
            )
    for name in optimizers or {}:
        if name not in checkpoint.get("optimizers", {}):
            raise CheckpointError(f"{path} has no state for optimizer {name!r}.")
    for name, model in models.items():
        _load_state(model, saved_models[name], f"model {name!r}", path)
    for name, opt in (optimizers or {}).items():
        _load_state(opt, checkpoint["optimizers"][name], f"optimizer {name!r}", path)
    if rng and "rng" in checkpoint:
        set_rng_state(checkpoint["rng"])


# ----------------------------------------------------------------------------- manager
class CheckpointManager:
    """``last.pt`` and ``best.pt`` in one folder.

    Args:
        folder: the lab's ``path_to_checkpoint``.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._best_cache: tuple[float | None] | None = None  # read best.pt's score once

    @property
    def last_path(self) -> Path:
        return self.folder / LAST

    @property
    def best_path(self) -> Path:
        return self.folder / BEST

    def exists(self) -> bool:
        return self.last_path.is_file()

    def state(
        self,
        epoch: int,
        models: Mapping[str, torch.nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        history: Mapping[str, list[float]],
        config: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build the checkpoint dict (weights of the unwrapped modules, RNG state included)."""
        return {
            "format": FORMAT_VERSION,
            "epoch": int(epoch),
            "models": {k: unwrap(m).state_dict() for k, m in models.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "history": {k: [float(v) for v in vals] for k, vals in history.items()},
            "rng": get_rng_state(),
            "config": dict(config or {}),
            "extra": dict(extra or {}),
        }

    def save(self, state: Mapping[str, Any], score: float | None = None) -> bool:
        """Write ``last.pt``; also ``best.pt`` when ``score`` (lower is better) beats the best so far.

        Without a score only ``last.pt`` is kept (there is nothing to rank epochs by).

        Returns:
            True when ``best.pt`` was updated.
        """
        state = dict(state)
        best_score = self._best_score()
        is_best = score is not None and (best_score is None or score < best_score)
        if score is not None:
            state.setdefault("extra", {})
            state["extra"] = {**state["extra"], "score": float(score)}
        atomic_save(state, self.last_path)
        if is_best:
            atomic_save(state, self.best_path)
            self._best_cache = (score,)
        return bool(is_best)

    def _best_score(self) -> float | None:
        if self._best_cache is None:
            score = None
            if self.best_path.is_file():
                try:
                    score = safe_load(self.best_path).get("extra", {}).get("score")
                except CheckpointError:
                    score = None  # a damaged best.pt is replaced by the next good one
            self._best_cache = (score,)
        return self._best_cache[0]

    def load(self, which: str = "last", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Load ``last.pt`` or ``best.pt`` (see :func:`safe_load`)."""
        path = {"last": self.last_path, "best": self.best_path}.get(which)
        if path is None:
            raise ValueError(f"which must be 'last' or 'best', got {which!r}.")
        return safe_load(path, map_location)
