"""Measurements of Lab 3: the stage classifier's scores and simple statistics of cell patches.

* :func:`multilabel_metrics`: loss, accuracy, precision, recall and F1 of a multi-label head,
  per stage and overall (micro and macro averages), as one flat dict of floats (easy to log per
  epoch and to tabulate);
* :func:`field_bootstrap`: resampled validation sets, whole fields at a time, to see how much a
  score moves with *which* fields happen to be in the validation part;
* :func:`patch_features`, :func:`feature_frechet_distance`: a handful of colour and texture
  statistics per patch and the Fréchet distance between two sets of them. There is no
  pretrained network for blood-smear patches here (Inception features of 32 px cells say
  little), so the comparison of generators uses these transparent statistics instead.
* :func:`checkerboard_energy`: how much of a patch's detail sits at the highest spatial
  frequency, where the checkerboard artifacts of strided transposed convolutions live.
* :func:`plot_epoch_curves`, :func:`plot_prediction_gallery`: the figures of Task 2.

Conventions: patches are (N, 3, S, S) in [-1, 1]; stage columns follow
:data:`helpers.malaria.data.STAGES`; a stage is predicted when its probability is at least
``threshold`` (0.5).

**Macro-F1** is the mean of the per-stage F1 over the stages whose F1 is defined (a stage that is
neither present nor predicted has none): each stage counts the same, however rare, which is what
the lab's target (>= 0.6 on the validation fields) is about. The micro average pools all decisions
and is dominated by the frequent gametocytes and rings.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from helpers.malaria.data import STAGES
from helpers.metrics import frechet_distance
from helpers.plotting import save_figure

FEATURE_NAMES = ("mean R", "mean G", "mean B", "std R", "std G", "std B", "edge strength")
_ABBREVIATIONS = {"ring": "R", "trophozoite": "T", "schizont": "S", "gametocyte": "G"}


# ----------------------------------------------------------------------------- classification
def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan  # undefined, not 0: "no such patches" is not "all wrong"


def macro_average(values: Sequence[float]) -> float:
    """Mean of the defined (not NaN) values; NaN when none is defined."""
    defined = [float(v) for v in values if not math.isnan(float(v))]
    return sum(defined) / len(defined) if defined else math.nan


def multilabel_metrics(
    logits_stage: torch.Tensor, targets: torch.Tensor, threshold: float | Sequence[float] | torch.Tensor = 0.5
) -> dict[str, float]:
    """Scores of a multi-label stage classifier on one set of patches.

    Args:
        logits_stage: head outputs before the sigmoid, (N, K).
        targets: multi-hot labels (N, K) in {0, 1}.
        threshold: a stage is predicted when sigmoid(logit) >= threshold; one number for all
            stages or one per stage (K,).

    Returns:
        A flat dict of floats:

        * ``loss``: mean binary cross-entropy over all N*K decisions (the J_C of the lab);
        * ``accuracy``: share of the N*K stage decisions that are right;
        * ``exact_match``: share of patches whose K decisions are all right;
        * ``precision``, ``recall``, ``f1``: micro-averaged over stages (all decisions pooled);
        * ``macro_f1``: the mean of the per-stage F1 over the stages whose F1 is defined;
        * ``<stage>/accuracy``, ``<stage>/precision``, ``<stage>/recall``, ``<stage>/f1``,
          ``<stage>/support`` (number of patches that have the stage) for every stage.

        Precision is NaN when nothing was predicted positive, recall when there is no positive,
        F1 = 2TP / (2TP + FP + FN) when there is neither (an undefined score, not a zero).
    """
    if logits_stage.shape != targets.shape or logits_stage.dim() != 2:
        raise ValueError(f"logits_stage and targets must both be (N, K); got {tuple(logits_stage.shape)} "
                         f"and {tuple(targets.shape)}.")
    logits = logits_stage.detach().float().cpu()
    y = targets.detach().float().cpu()
    if y.numel() and not torch.all((y == 0) | (y == 1)):
        raise ValueError("targets must be multi-hot (0 or 1).")
    names = STAGES if logits.shape[1] == len(STAGES) else tuple(f"class{k}" for k in range(logits.shape[1]))
    pred = (torch.sigmoid(logits) >= torch.as_tensor(threshold, dtype=logits.dtype)).float()  # (N, K)
    n = y.shape[0]
    out: dict[str, float] = {
        "loss": F.binary_cross_entropy_with_logits(logits, y).item() if n else math.nan,
        "accuracy": (pred == y).float().mean().item() if n else math.nan,
        "exact_match": (pred == y).all(dim=1).float().mean().item() if n else math.nan,
    }
    tp = (pred * y).sum(0)  # (K,)
    fp = (pred * (1 - y)).sum(0)
    fn = ((1 - pred) * y).sum(0)
    out["precision"] = _ratio(tp.sum().item(), (tp + fp).sum().item())
    out["recall"] = _ratio(tp.sum().item(), (tp + fn).sum().item())
    out["f1"] = _ratio(2 * tp.sum().item(), (2 * tp + fp + fn).sum().item())
    for k, name in enumerate(names):
        out[f"{name}/accuracy"] = (pred[:, k] == y[:, k]).float().mean().item() if n else math.nan
        out[f"{name}/precision"] = _ratio(tp[k].item(), (tp[k] + fp[k]).item())
        out[f"{name}/recall"] = _ratio(tp[k].item(), (tp[k] + fn[k]).item())
        out[f"{name}/f1"] = _ratio(2 * tp[k].item(), (2 * tp[k] + fp[k] + fn[k]).item())
        out[f"{name}/support"] = float(y[:, k].sum().item())
    out["macro_f1"] = macro_average([out[f"{name}/f1"] for name in names])
    return out


def field_bootstrap(field_index: torch.Tensor, num_samples: int = 1000, seed: int = 0) -> list[torch.Tensor]:
    """Bootstrap resamples of a validation set drawn **field by field**.

    Patches of one field share its staining, lighting and often its parasites, so they are not
    independent: resampling single patches would understate how much a score depends on which
    fields were held out. Each resample draws as many fields as there are, with replacement, and
    takes all patches of every drawn field (a field drawn twice counts twice).

    Args:
        field_index: (N,) integer field of every patch (``extract_patches(..., with_field_index=True)``).
        num_samples: number of resamples.
        seed: of the draws.

    Returns:
        ``num_samples`` index tensors into the N patches.
    """
    field_index = torch.as_tensor(field_index).long().cpu()
    fields = field_index.unique()
    members = [torch.nonzero(field_index == f).flatten() for f in fields.tolist()]
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, len(fields), (num_samples, len(fields)), generator=gen)
    return [torch.cat([members[j] for j in row.tolist()]) for row in draws]


def format_metrics_table(results: Mapping[str, Mapping[str, float]], stages: Sequence[str] = STAGES) -> str:
    """A Markdown table: one row per stage plus ``overall``, columns precision/recall/F1/accuracy per split.

    Args:
        results: ``{split name: multilabel_metrics(...)}``, e.g. ``{"train": ..., "val": ...}``.
    """
    def cell(v: float) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

    splits = list(results)
    head = "| stage | " + " | ".join(f"{s} P | {s} R | {s} F1 | {s} acc | {s} n" for s in splits) + " |"
    rule = "|---|" + "---|" * (5 * len(splits))
    rows = [head, rule]
    for stage in list(stages) + ["overall"]:
        prefix = "" if stage == "overall" else f"{stage}/"
        cells = []
        for s in splits:
            m = results[s]
            support = m.get(f"{prefix}support", sum(m.get(f"{st}/support", 0.0) for st in stages))
            cells += [cell(m[f"{prefix}precision"]), cell(m[f"{prefix}recall"]), cell(m[f"{prefix}f1"]),
                      cell(m[f"{prefix}accuracy"]), f"{int(support)}"]
        rows.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- patch statistics
def _check_patches(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"Expected RGB patches (N, 3, S, S) in [-1, 1], got shape {tuple(x.shape)}.")
    return x.detach().float().cpu()


def patch_features(x: torch.Tensor) -> torch.Tensor:
    """Seven statistics per patch (:data:`FEATURE_NAMES`): colour, contrast and sharpness.

    Mean and standard deviation of each colour channel (stain colour and contrast) and the mean
    absolute difference between neighbouring grey values (edge strength: blur lowers it,
    noise and checkerboards raise it).

    Args:
        x: patches (N, 3, S, S) in [-1, 1].

    Returns:
        (N, 7) float64 tensor.
    """
    x = _check_patches(x).double()
    mean = x.mean(dim=(2, 3))  # (N, 3)
    std = x.std(dim=(2, 3))  # (N, 3)
    grey = x.mean(dim=1)  # (N, S, S)
    edges = 0.5 * ((grey[:, 1:, :] - grey[:, :-1, :]).abs().mean(dim=(1, 2))
                   + (grey[:, :, 1:] - grey[:, :, :-1]).abs().mean(dim=(1, 2)))  # (N,)
    return torch.cat([mean, std, edges[:, None]], dim=1)


def feature_frechet_distance(x_a: torch.Tensor, x_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the :func:`patch_features` of two patch sets.

    The FID formula on seven hand-made statistics rather than Inception features: it sees colour,
    contrast and sharpness, not shape. With a few hundred patches it is noisy and biased upwards
    (compare it with the same number for two sets of *real* patches).

    Args:
        x_a, x_b: patches (N, 3, S, S) in [-1, 1], at least 2 each.
    """
    return frechet_distance(patch_features(x_a).numpy(), patch_features(x_b).numpy())


def checkerboard_energy(x: torch.Tensor) -> torch.Tensor:
    """Share of each patch's detail that sits at the Nyquist frequency (period 2 pixels).

    A stride-2 transposed convolution whose kernel size is not divisible by the stride adds
    more to some output pixels than to their neighbours (Odena et al., 2016, "Deconvolution and
    checkerboard artifacts"); the pattern repeats every 2 pixels, so it shows up in the 2-D
    Fourier spectrum on the row and column of the highest frequency. The score is the power on
    those lines over the total power of the mean-free grey patch; real photographs, resized with
    an antialiasing filter, have very little there.

    Args:
        x: patches (N, 3, S, S) in [-1, 1], S even.

    Returns:
        (N,) float64 in [0, 1].
    """
    x = _check_patches(x).double()
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"checkerboard_energy needs an even patch size, got {tuple(x.shape[-2:])}.")
    grey = x.mean(dim=1)
    grey = grey - grey.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(grey).abs() ** 2  # (N, S, S); index S/2 is the Nyquist frequency
    h, w = power.shape[-2] // 2, power.shape[-1] // 2
    nyquist = power[:, h, :].sum(dim=1) + power[:, :, w].sum(dim=1) - power[:, h, w]
    return nyquist / power.sum(dim=(1, 2)).clamp_min(1e-12)


# ----------------------------------------------------------------------------- figures
def plot_epoch_curves(
    curves: Mapping[str, Sequence[float]],
    panels: Sequence[Sequence[str]],
    titles: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
) -> plt.Figure:
    """Per-epoch values (epoch 1, 2, ...) with markers, one axis per panel; NaN leaves a gap.

    Args:
        curves: ``{name: [value per epoch]}``.
        panels: names per axis, e.g. ``[["train/loss", "val/loss"], ["train/accuracy", "val/accuracy"]]``.
        titles: axis titles (default: the names).
        path: PNG file to write.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.4), squeeze=False)
    for i, (ax, keys) in enumerate(zip(axes[0], panels)):
        for k in keys:
            vals = np.asarray(curves.get(k, []), dtype=np.float64)
            if vals.size:
                ax.plot(np.arange(1, vals.size + 1), vals, marker="o", ms=3, lw=1.4, label=k)
        ax.set_title(titles[i] if titles else ", ".join(keys))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def stage_names(label: Sequence[float] | torch.Tensor) -> str:
    """``"R+G"`` for a multi-hot label (initials of the stages), ``"-"`` for none."""
    on = [STAGES[k] for k, v in enumerate(list(label)) if float(v) >= 0.5]
    return "+".join(_ABBREVIATIONS[s] for s in on) or "-"


def plot_prediction_gallery(
    x: torch.Tensor,
    targets: torch.Tensor,
    probs: torch.Tensor,
    threshold: float = 0.5,
    per_group: int = 8,
    title: str = "true / predicted stages",
    path: str | os.PathLike | None = None,
) -> plt.Figure:
    """Correctly (all stages right) and wrongly predicted patches, each titled true / predicted.

    Patches with a stage come first in each group, so the rare parasites are not crowded out
    by the many stage-free cells. Stage initials: R ring, T trophozoite, S schizont,
    G gametocyte, "-" none.

    Args:
        x: patches (N, 3, S, S) in [-1, 1].
        targets: multi-hot labels (N, 4).
        probs: the head's probabilities (N, 4).
        threshold: decision threshold.
        per_group: patches shown per group.
        title: figure title; the key to the stage initials is added to it.
        path: PNG file to write.
    """
    pred = (probs.detach().cpu() >= threshold).float()
    y = targets.detach().cpu().float()
    right = (pred == y).all(dim=1)
    has_stage = y.sum(1) > 0
    groups = []
    for name, mask in (("correct", right), ("wrong", ~right)):
        idx = torch.nonzero(mask).flatten().tolist()
        idx.sort(key=lambda i: (not bool(has_stage[i]), i))  # parasites first
        groups.append((name, idx[:per_group]))
    fig, axes = plt.subplots(2, per_group, figsize=(1.3 * per_group, 3.3), squeeze=False)
    for row, (name, idx) in enumerate(groups):
        for col in range(per_group):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(idx):
                ax.set_axis_off()
                continue
            i = idx[col]
            ax.imshow(((x[i].detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy())
            colour = "tab:green" if name == "correct" else "tab:red"
            ax.set_title(f"{stage_names(y[i])} / {stage_names(pred[i])}", fontsize=8, color=colour)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2)
        axes[row, 0].set_ylabel(f"{name} ({int((right if name == 'correct' else ~right).sum())})", fontsize=9)
        if not idx:
            axes[row, 0].set_axis_on()
            axes[row, 0].text(0.5, 0.5, "none", ha="center", va="center", transform=axes[row, 0].transAxes)
    fig.suptitle(f"{title} (R ring, T trophozoite, S schizont, G gametocyte, - none)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
