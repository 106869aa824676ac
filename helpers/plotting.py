"""Figures for the labs. Every function returns the matplotlib figure and, given a path,
saves it as a PNG file (real pixels, not a screenshot) under the lab's output folder.

:func:`save_figure` is the one way a figure reaches disk, here, in ``helpers.malaria`` and in the
notebooks; :func:`save_image_grid` writes images themselves (no axes) at their own resolution.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision.utils as vutils


def save_figure(fig: plt.Figure, path: str | os.PathLike | None) -> Path | None:
    """Write ``fig`` as a PNG file (110 dpi, tight bounding box), creating its folder.

    Args:
        fig: the figure.
        path: the PNG file; ``None`` saves nothing (every plotting function takes an optional path).

    Returns:
        The path written, or ``None``.
    """
    if path is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def smooth(values: Sequence[float], window: int = 50) -> np.ndarray:
    """Moving average over ``window`` iterations (shorter at the start, same length as input)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    window = max(1, min(window, v.size))
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    idx = np.arange(v.size)
    lo = np.maximum(0, idx - window + 1)
    out[:] = (c[idx + 1] - c[lo]) / (idx + 1 - lo)
    return out


def plot_curves(
    history: Mapping[str, Sequence[float]],
    panels: Sequence[Sequence[str]],
    titles: Sequence[str] | None = None,
    window: int = 50,
    path: str | os.PathLike | None = None,
    xlabel: str = "iteration",
) -> plt.Figure:
    """One axis per panel; each metric drawn raw (faint) and smoothed; epoch ends as dotted lines.

    Args:
        history: ``{metric: [value per iteration]}`` as returned by :func:`helpers.training.fit`.
        panels: metric names per axis, e.g. ``[["loss_G"], ["loss_D"]]``.
        titles: axis titles (default: the metric names).
        window: smoothing window in iterations.
        path: PNG file to write.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    epoch_end = history.get("epoch_end", [])
    for i, (ax, keys) in enumerate(zip(axes[0], panels)):
        for k in keys:
            vals = history.get(k, [])
            if not len(vals):
                continue
            line, = ax.plot(vals, alpha=0.25, lw=0.8)
            ax.plot(smooth(vals, window), color=line.get_color(), lw=1.6, label=f"{k} (smoothed)")
        for e in epoch_end[:-1] if len(epoch_end) < 40 else []:
            ax.axvline(e, color="grey", ls=":", lw=0.6)
        ax.set_title(titles[i] if titles else ", ".join(keys))
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_losses(history: Mapping[str, Sequence[float]], path: str | os.PathLike | None = None,
                window: int = 50, g_key: str = "loss_G", d_key: str = "loss_D") -> plt.Figure:
    """G and D losses per iteration, raw and smoothed, on separate axes."""
    return plot_curves(history, [[g_key], [d_key]], ["Generator loss", "Discriminator loss"], window, path)


def _as_nchw(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Images to a float tensor (N, C, H, W) in [0, 1]; accepts [-1, 1] tensors or [0, 1] arrays."""
    if isinstance(images, np.ndarray):
        x = torch.from_numpy(np.asarray(images, dtype=np.float32))
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (N, H, W) in [0, 1]
        return x.clamp(0, 1)
    x = images.detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return ((x + 1) / 2).clamp(0, 1)  # tensors come from the generator: [-1, 1]


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """(H, W, C) float array in [0, 1] tiling the images ``nrow`` per row."""
    grid = vutils.make_grid(_as_nchw(images), nrow=nrow, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def save_image_grid(images: torch.Tensor | np.ndarray, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Write the images as one PNG grid at their own resolution (no axes, no resampling)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vutils.save_image(_as_nchw(images), path, nrow=nrow, padding=2, pad_value=1.0)
    return path


def plot_image_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    size: float = 5.0,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> plt.Figure:
    """Show a grid of images; tensors are read as [-1, 1], numpy arrays as [0, 1]."""
    grid = image_grid(images, nrow)
    h, w = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(size, size * h / w + (0.4 if title else 0)))
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    n = len(images)
    ncol = min(nrow, n)
    nrows = (n + nrow - 1) // nrow
    if col_labels:
        ax.set_xticks([(i + 0.5) * w / ncol for i in range(ncol)], col_labels, rotation=45, fontsize=8)
        ax.xaxis.tick_top()
    if row_labels:
        ax.set_yticks([(i + 0.5) * h / nrows for i in range(nrows)], row_labels, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_first_layer_weights(weight: torch.Tensor, path: str | os.PathLike | None = None,
                             title: str = "First-layer weights", nrow: int = 16) -> plt.Figure:
    """Each output channel's kernel as a small image (normalised per kernel).

    Args:
        weight: a conv weight ``(out, in, kh, kw)`` (the first input channel, or RGB when
            ``in == 3``, is shown) or a transposed-conv weight ``(in, out, kh, kw)``.
    """
    w = weight.detach().float().cpu()
    if w.dim() != 4:
        raise ValueError(f"Expected a 4-D convolution weight, got shape {tuple(w.shape)}.")
    w = w if w.shape[1] == 3 else w[:, :1]
    flat = w.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    w = (w - lo) / (hi - lo).clamp_min(1e-8)
    grid = vutils.make_grid(w, nrow=nrow, padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.4))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_class_histogram(counts: Sequence[float], class_names: Sequence[str],
                         title: str = "Predicted class of generated images",
                         path: str | os.PathLike | None = None) -> plt.Figure:
    """Bar chart of class shares against the uniform share (dashed line)."""
    counts = np.asarray(counts, dtype=np.float64)
    share = counts / max(counts.sum(), 1.0)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(range(len(share)), share, color="tab:blue")
    ax.axhline(1.0 / len(share), color="tab:red", ls="--", label="uniform")
    ax.set_xticks(range(len(share)), class_names, rotation=0 if len(class_names[0]) < 3 else 45)
    ax.set_ylabel("share of samples")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    return fig


# A figure whose PNG is larger than this is shown as a JPEG when that is smaller (image grids of photos:
# a smear patch grid is ~300 KB as PNG, ~60 KB as JPEG), so that notebooks with outputs stay small.
PNG_LIMIT_BYTES = 150_000
JPEG_QUALITY = 85


def figure_image(fig: plt.Figure, png_limit: int = PNG_LIMIT_BYTES) -> tuple[bytes, str]:
    """``fig`` encoded for a notebook: ``(bytes, "png")``, or ``(bytes, "jpeg")`` when the PNG is over
    ``png_limit`` bytes and the JPEG (quality 85) is smaller."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    png = buffer.getvalue()
    if len(png) <= png_limit:
        return png, "png"
    from PIL import Image

    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(jpeg, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return (jpeg.getvalue(), "jpeg") if len(jpeg.getvalue()) < len(png) else (png, "png")


def show(fig: plt.Figure) -> None:
    """Display ``fig`` in a notebook (or do nothing in a script) and free its memory.

    Large figures (photographic image grids) are shown as JPEG when that is smaller: see :func:`figure_image`.
    """
    try:
        from IPython import get_ipython
        from IPython.display import Image, display

        if get_ipython() is not None:
            data, kind = figure_image(fig)
            display(Image(data=data, format=kind))
    finally:
        plt.close(fig)
