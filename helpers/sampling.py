"""Argument checks and mode handling behind every lab's ``generate``.

The student's ``generate`` stays in the notebook; these helpers keep its contract the same
in all three labs: a positive integer count, the generator in eval mode without gradients
(its previous mode restored), ``float32`` images in [0, 1], and a clear error when the
generator was never trained or loaded.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Iterator

import numpy as np
import torch

from helpers.checkpoints import unwrap

_TRAINED_FLAG = "_ganlab_trained"


def check_count(n: object, name: str = "n") -> int:
    """Return ``n`` as an int, or raise ``TypeError``/``ValueError`` saying what was passed."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer (number of images), got {n!r} of type {type(n).__name__}.")
    if n < 1:
        raise ValueError(f"{name} must be a positive integer (number of images), got {n}.")
    return int(n)


def mark_trained(model: torch.nn.Module) -> None:
    """Record that ``model`` holds trained (or loaded) weights."""
    setattr(unwrap(model), _TRAINED_FLAG, True)


def is_trained(model: torch.nn.Module) -> bool:
    """True once :func:`mark_trained` was called on ``model`` (or on the module behind its ``torch.compile`` wrapper)."""
    return bool(getattr(unwrap(model), _TRAINED_FLAG, False))


def require_trained(model: torch.nn.Module, name: str = "G") -> None:
    """Raise if ``model`` was never trained or loaded (its samples would be noise)."""
    if not is_trained(model):
        raise RuntimeError(
            f"{name} has not been trained or loaded yet, so its samples would be random noise. "
            f"Run the training cell first (it also loads the latest checkpoint if there is one)."
        )


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode with gradients off, then restore its previous mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def seeded_noise(n: int, latent_dim: int, seed: int | None, device: torch.device | str) -> torch.Tensor:
    """Standard normal noise ``(n, latent_dim)``; the same ``seed`` gives the same noise on any device."""
    gen = torch.Generator(device="cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return torch.randn(n, latent_dim, generator=gen).to(device)


def to_unit_images(x: torch.Tensor) -> np.ndarray:
    """Generator output ``(N, 1, H, W)`` in [-1, 1] to a float32 numpy array ``(N, H, W)`` in [0, 1]."""
    x = x.detach().float().cpu()
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    return ((x + 1.0) / 2.0).clamp_(0.0, 1.0).numpy().astype(np.float32)
