"""Showing GradCAM maps (Selvaraju et al., 2017). The hook-based ``grad_cam`` itself is student
code in ``dcgan_malaria.ipynb``; ``tests/test_gradcam.py`` checks it against pytorch-grad-cam.

What the notebook's ``grad_cam`` computes, for one output of a multi-label head:

For a target output y_c (a logit, before the sigmoid, so that saturation does not flatten the
gradient) and the feature maps A^k (B, K, h, w) of a chosen conv layer:

    alpha_k = mean over (i, j) of d y_c / d A^k_ij            channel weights (B, K)
    L_c     = ReLU( sum_k alpha_k A^k )                        (B, h, w)

L_c is upsampled bilinearly to the input size and min-max scaled to [0, 1] per image (an
all-zero map stays zero). This is what ``pytorch-grad-cam``'s ``GradCAM`` computes with a
``ClassifierOutputTarget(c)``.

How A and dy/dA are caught: a forward hook on the layer stores its output A and registers a
gradient hook on that tensor, which autograd calls with dy/dA during the backward pass. A
tensor hook rather than ``register_full_backward_hook`` because the module hook breaks when an
in-place activation (``LeakyReLU(inplace=True)``) follows the layer, and student models do that.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def overlay(image: torch.Tensor, cam: torch.Tensor, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a map over one image.

    Args:
        image: (3, H, W) or (1, H, W) in [-1, 1].
        cam: (H, W) in [0, 1].
        alpha: weight of the heat map.

    Returns:
        (H, W, 3) float array in [0, 1].
    """
    img = ((image.detach().float().cpu() + 1) / 2).clamp(0, 1)
    img = img.expand(3, -1, -1).permute(1, 2, 0).numpy()  # (H, W, 3)
    heat = plt.get_cmap(cmap)(cam.detach().float().cpu().numpy())[..., :3]  # (H, W, 3)
    return (1 - alpha) * img + alpha * heat


def plot_gradcam(
    images: torch.Tensor,
    cams: torch.Tensor,
    map_titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    alpha: float = 0.5,
    cell_size: float = 1.6,
) -> plt.Figure:
    """A grid: each row one image, first the image, then one overlay per map.

    Args:
        images: (B, 3, H, W) in [-1, 1].
        cams: (B, H, W) or (B, M, H, W) maps in [0, 1], e.g. one per stage.
        map_titles: M column titles (e.g. stage names with probabilities); default "map j".
        row_titles: B labels written left of each row (e.g. the true stages).
        alpha: heat map weight in the overlay.
        cell_size: inches per panel.

    Returns:
        The matplotlib figure (not shown; save it or call ``helpers.plotting.show``).
    """
    if cams.dim() == 3:
        cams = cams[:, None]
    b, m = cams.shape[:2]
    if images.shape[0] != b:
        raise ValueError(f"{images.shape[0]} images but {b} rows of maps.")
    fig, axes = plt.subplots(b, m + 1, figsize=(cell_size * (m + 1), cell_size * b), squeeze=False)
    for i in range(b):
        axes[i, 0].imshow(((images[i].detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy())
        if i == 0:
            axes[i, 0].set_title("patch", fontsize=8)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=7)
        for j in range(m):
            axes[i, j + 1].imshow(overlay(images[i], cams[i, j], alpha))
            if i == 0 or map_titles is not None and b == 1:
                axes[i, j + 1].set_title(map_titles[j] if map_titles else f"map {j}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
