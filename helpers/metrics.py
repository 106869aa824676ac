"""Offline sample-quality metrics for generated MNIST / Fashion-MNIST images.

Everything here runs without a download: it uses the small classifiers of
:mod:`helpers.classifiers` (weights committed in ``helpers/weights/``).

- :func:`frechet_distance`: Fréchet distance between Gaussians fitted to two feature sets. On the
  classifiers' penultimate features it is a *classifier-feature* Fréchet distance: same formula
  as FID, different network, so its values are not comparable with published Inception FIDs.
- :func:`class_histogram`, :func:`kl_from_uniform`: are all classes equally likely?
- :func:`conditional_accuracy`: share of images classified as the class they were asked for.
- :func:`confident_fraction`: share of images the classifier is sure about (max prob >= 0.9).
- :func:`precision_recall` (Kynkäänniemi et al. 2019) and :func:`density_coverage` (Naeem et al.
  2020): k-nearest-neighbour manifolds in feature space; low recall/coverage means mode collapse.
- :func:`evaluate_samples`: all of the above for a batch of samples, next to the *real-data
  floor*: the same metrics for real test images against the same real training images, at the
  same sample count (what a perfect generator would score; FD is biased upward at small N).
- :func:`inception_fid`: the real Inception FID through ``torchmetrics`` when the Inception
  weights are on disk (or may be downloaded, as in Colab); otherwise a ``"skipped: ..."`` string.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from helpers.classifiers import NUM_CLASSES, Classifier, check_images, classify, load_classifier
from helpers.data import load_images
from helpers.env import settings

ArrayLike = np.ndarray | torch.Tensor
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name
CONFIDENCE_THRESHOLD = 0.9
PR_NEAREST_K = 3   # k of Kynkäänniemi et al. (their default)
DC_NEAREST_K = 5   # k of Naeem et al. (their default)


def _as_numpy64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _as_features(x: ArrayLike, name: str) -> np.ndarray:
    x = _as_numpy64(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (num_samples, num_features) array, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values.")
    return x


# --------------------------------------------------------------------------- Fréchet distance

def gaussian_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``ddof=1``, as torchmetrics) of ``feats`` ``(N, D)``, N >= 2."""
    feats = _as_features(feats, "feats")
    if feats.shape[0] < 2:
        raise ValueError(f"Need at least 2 samples to estimate a covariance, got {feats.shape[0]}.")
    return feats.mean(axis=0), np.cov(feats, rowvar=False, ddof=1).reshape(feats.shape[1], feats.shape[1])


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition)."""
    eigvals, eigvecs = np.linalg.eigh((sigma + sigma.T) / 2)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance_from_stats(
    mu_a: ArrayLike, sigma_a: ArrayLike, mu_b: ArrayLike, sigma_b: ArrayLike
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu_a, sigma_a) and N(mu_b, sigma_b).

    ``d^2 = ||mu_a - mu_b||^2 + Tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^(1/2))``.
    The trace of the matrix square root is computed without ``sqrtm``:
    ``Tr (sigma_a sigma_b)^(1/2) = sum sqrt(eig(A^(1/2) sigma_b A^(1/2)))`` with ``A = sigma_a``,
    a symmetric PSD matrix with the same eigenvalues, so no complex parts appear.

    Args:
        mu_a, mu_b: means ``(D,)``.
        sigma_a, sigma_b: covariances ``(D, D)``, symmetric positive semi-definite.

    Returns:
        The distance as a Python float, >= 0 (rounding below 0 is clipped to 0).
    """
    mu_a, mu_b = _as_numpy64(mu_a, "mu_a"), _as_numpy64(mu_b, "mu_b")
    sigma_a, sigma_b = _as_numpy64(sigma_a, "sigma_a"), _as_numpy64(sigma_b, "sigma_b")
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise ValueError(
            f"Shapes do not match: mu_a {mu_a.shape}, sigma_a {sigma_a.shape}, "
            f"mu_b {mu_b.shape}, sigma_b {sigma_b.shape}."
        )
    sqrt_a = _sqrt_psd(sigma_a)
    middle = sqrt_a @ sigma_b @ sqrt_a                     # (D, D), symmetric PSD
    eigvals = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    dist = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * tr_sqrt
    return float(max(dist, 0.0))


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    With features from :meth:`helpers.classifiers.Classifier.features` this is a
    classifier-feature Fréchet distance, NOT Inception FID: the formula is FID's, the network
    is a small MNIST/Fashion-MNIST CNN, so the numbers only compare with each other (same
    classifier, same sample count). It is biased upward at small N; compare against the
    real-data floor of :func:`evaluate_samples`.

    Args:
        feats_a, feats_b: ``(N_a, D)`` and ``(N_b, D)`` arrays or tensors, N >= 2 each.

    Returns:
        The distance (a float >= 0; 0 for identical sets).
    """
    feats_a, feats_b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"Feature sizes differ: {feats_a.shape[1]} vs {feats_b.shape[1]}.")
    return frechet_distance_from_stats(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


# --------------------------------------------------------------------------- class balance

def _as_labels(labels: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer class indices, got {labels.dtype} {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}], got [{labels.min()}, {labels.max()}].")
    return labels


def class_histogram(labels: ArrayLike, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Share of samples in each class.

    Args:
        labels: ``(N,)`` integer class indices (e.g. the classifier's argmax), N >= 1.
        num_classes: number of classes.

    Returns:
        ``(num_classes,)`` float64 fractions summing to 1.
    """
    labels = _as_labels(labels, "labels", num_classes)
    if labels.size == 0:
        raise ValueError("class_histogram needs at least one label.")
    return np.bincount(labels, minlength=num_classes).astype(np.float64) / labels.size


def kl_from_uniform(hist: ArrayLike) -> float:
    """KL divergence KL(p || uniform) in nats, ``log K - H(p)``.

    0 when every class is equally frequent; ``log K`` (log 10 = 2.303) when one class takes all.

    Args:
        hist: ``(K,)`` class counts or fractions (normalised here), non-negative.

    Returns:
        The divergence as a float.
    """
    p = _as_numpy64(hist, "hist")
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"hist must be a non-empty 1-D array of non-negative counts, got {p}.")
    p = p / p.sum()
    nonzero = p > 0  # 0 log 0 = 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] * p.size)))


def conditional_accuracy(
    pred: ArrayLike, requested: ArrayLike, num_classes: int = NUM_CLASSES
) -> tuple[float, np.ndarray]:
    """Share of generated images classified as the class they were conditioned on.

    Args:
        pred: ``(N,)`` predicted classes of the generated images.
        requested: ``(N,)`` classes the generator was asked for.
        num_classes: number of classes.

    Returns:
        ``(overall, per_class)``: the overall share, and ``(num_classes,)`` shares per requested
        class (NaN for a class that was never requested).
    """
    pred = _as_labels(pred, "pred", num_classes)
    requested = _as_labels(requested, "requested", num_classes)
    if pred.shape != requested.shape or pred.size == 0:
        raise ValueError(f"pred and requested need the same non-zero length, got {pred.shape} and {requested.shape}.")
    hit = pred == requested
    per_class = np.full(num_classes, np.nan)
    for c in range(num_classes):
        asked = requested == c
        if asked.any():
            per_class[c] = hit[asked].mean()
    return float(hit.mean()), per_class


def confident_fraction(probs: ArrayLike, threshold: float = CONFIDENCE_THRESHOLD) -> float:
    """Share of images whose top class probability is at least ``threshold``.

    Args:
        probs: ``(N, K)`` class probabilities (softmax outputs, not logits).
        threshold: confidence needed, 0.9 by default.

    Returns:
        A fraction in [0, 1].
    """
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().numpy()
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] == 0 or not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be a float (N, K) array with N >= 1, got {probs.dtype} {probs.shape}.")
    if (probs < -1e-6).any() or not np.allclose(probs.sum(axis=1, dtype=np.float64), 1.0, atol=1e-4):
        raise ValueError("probs must be probabilities whose rows sum to 1 (apply softmax to logits first).")
    # Compare in the probabilities' own precision: float32 0.9 is below float64 0.9.
    return float((probs.max(axis=1) >= probs.dtype.type(threshold)).mean())


# --------------------------------------------------------------------------- k-NN manifolds

def _kth_neighbour_radii(feats: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row ``(N,)``."""
    if feats.shape[0] <= k:
        raise ValueError(f"Need more than k={k} samples for k-nearest-neighbour radii, got {feats.shape[0]}.")
    radii = []
    for start in range(0, feats.shape[0], chunk):
        d = torch.cdist(feats[start: start + chunk], feats)  # (chunk, N), includes self at 0
        radii.append(torch.kthvalue(d, k + 1, dim=1).values)
    return torch.cat(radii)


def _ball_membership(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int):
    """For each query, how many balls B(centre_i, radius_i) hold it ``(Q,)``; for each centre,
    whether any query lies in its ball ``(C,)``. Balls are closed (distance <= radius)."""
    counts = []
    covered = torch.zeros(centres.shape[0], dtype=torch.bool)
    for start in range(0, queries.shape[0], chunk):
        inside = torch.cdist(queries[start: start + chunk], centres) <= radii[None, :]  # (chunk, C)
        counts.append(inside.sum(dim=1))
        covered |= inside.any(dim=0)
    return torch.cat(counts), covered


def _features_pair(real_feats: ArrayLike, fake_feats: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    real = torch.from_numpy(_as_features(real_feats, "real_feats"))
    fake = torch.from_numpy(_as_features(fake_feats, "fake_feats"))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature sizes differ: {real.shape[1]} vs {fake.shape[1]}.")
    return real, fake


def precision_recall(
    real_feats: ArrayLike, fake_feats: ArrayLike, k: int = PR_NEAREST_K, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019).

    Each set's manifold is the union of balls around its points, each ball's radius the distance
    to that point's k-th nearest neighbour in the same set. Precision: share of fake samples
    inside the real manifold (quality). Recall: share of real samples inside the fake manifold
    (diversity; a collapsed generator has low recall).

    Args:
        real_feats: ``(N, D)`` features of real images, N > k.
        fake_feats: ``(M, D)`` features of generated images, M > k.
        k: neighbourhood size (3 as in the paper).
        chunk: rows per distance block (memory ``chunk * max(N, M) * 8`` bytes).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real, fake = _features_pair(real_feats, fake_feats)
    real_radii = _kth_neighbour_radii(real, k, chunk)
    fake_radii = _kth_neighbour_radii(fake, k, chunk)
    fake_in_real, _ = _ball_membership(fake, real, real_radii, chunk)
    real_in_fake, _ = _ball_membership(real, fake, fake_radii, chunk)
    return (fake_in_real > 0).double().mean().item(), (real_in_fake > 0).double().mean().item()


def density_coverage(
    real_feats: ArrayLike, fake_feats: ArrayLike, k: int = DC_NEAREST_K, chunk: int = 1024
) -> tuple[float, float]:
    """Density and coverage (Naeem et al., ICML 2020), built on the real manifold only.

    Density: average number of real k-NN balls holding a fake sample, divided by k (about 1 for
    a generator that matches the data; above 1 when samples crowd where the data is dense).
    Coverage: share of real samples whose ball holds at least one fake sample (in [0, 1]).

    Args:
        real_feats: ``(N, D)`` features of real images, N > k.
        fake_feats: ``(M, D)`` features of generated images.
        k: neighbourhood size (5 as in the paper).
        chunk: rows per distance block.

    Returns:
        ``(density, coverage)``.
    """
    real, fake = _features_pair(real_feats, fake_feats)
    if fake.shape[0] == 0:
        raise ValueError("fake_feats is empty.")
    real_radii = _kth_neighbour_radii(real, k, chunk)
    fake_in_real, covered = _ball_membership(fake, real, real_radii, chunk)
    density = fake_in_real.double().sum().item() / (k * fake.shape[0])
    return density, covered.double().mean().item()


# --------------------------------------------------------------------------- Inception FID

def inception_weights_path() -> Path:
    """Where the Inception weights are looked for: ``$GANLAB_INCEPTION_WEIGHTS``, else the file
    torch-fidelity downloads into ``torch.hub.get_dir()/checkpoints/``."""
    path = settings().inception_weights
    if path is not None:
        return path
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def _to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    """Images ``(N, 1, H, W)`` in [-1, 1] -> ``(N, 3, H, W)`` uint8, what torchmetrics' FID expects."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)


def inception_fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    allow_download: bool = False,
    weights_path: str | os.PathLike | None = None,
    batch_size: int = 100,
    feature: int = 2048,
) -> float | str:
    """Inception FID (torchmetrics) between real and generated images.

    Nothing is downloaded unless ``allow_download`` is True (e.g. in Colab); without the
    weights or the packages the result is a string ``"skipped: <reason>"`` to print in place of
    the number. Slow on a CPU: every image is resized to 299 x 299.

    Args:
        real: real images ``(N, 1, 28, 28)`` in [-1, 1].
        fake: generated images ``(M, 1, 28, 28)`` in [-1, 1], on the device to compute on.
        allow_download: let torch-fidelity fetch the weights (about 100 MB) when missing.
        weights_path: a local copy of the weights; default :func:`inception_weights_path`.
        batch_size: images per Inception forward pass.
        feature: Inception layer width, 2048 (the standard FID pool features), 768, 192 or 64.

    Returns:
        The FID as a float, or ``"skipped: ..."`` saying why it was not computed.
    """
    check_images(real)
    check_images(fake)
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as err:
        return f"skipped: torchmetrics is not installed ({err}); pip install torchmetrics torch-fidelity"
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics builds its Inception network from it)
    except ImportError:
        return "skipped: torch-fidelity is not installed (torchmetrics needs it for Inception); pip install torch-fidelity"
    path = Path(weights_path).expanduser() if weights_path is not None else inception_weights_path()
    if path.is_file():
        metric = FrechetInceptionDistance(feature=feature, feature_extractor_weights_path=str(path))
    elif not allow_download:
        return (
            f"skipped: Inception weights not found at {path} and allow_download=False "
            "(set GANLAB_INCEPTION_WEIGHTS to a local copy, or pass allow_download=True where "
            "there is a network, as in Colab)"
        )
    else:
        try:
            metric = FrechetInceptionDistance(feature=feature)  # torch-fidelity downloads the weights
        except Exception as err:  # network failures come as URLError, OSError, RuntimeError...
            return f"skipped: could not download the Inception weights ({type(err).__name__}: {err})"
    metric = metric.to(fake.device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, images.shape[0], batch_size):
            metric.update(_to_uint8_rgb(images[start: start + batch_size].to(fake.device)), real=is_real)
    return float(metric.compute())


def inception_line(report: dict) -> str:
    """One printable line for the Inception FID of an :func:`evaluate_samples` report: the value
    beside the real-data floor, or why it was skipped."""
    fid = report.get("inception_fid", "skipped: not in this report")
    if not isinstance(fid, float):
        return f"Inception FID {fid}"
    floor = report.get("real_floor", {}).get("inception_fid")
    return f"Inception FID: {fid:.2f}" + (f"   (real: {floor:.2f})" if isinstance(floor, float) else "")


# --------------------------------------------------------------------------- all together

@lru_cache(maxsize=4)
def _cached_classifier(dataset: str, device: str) -> Classifier:
    return load_classifier(dataset, device)


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def _sample_metrics(
    feats: torch.Tensor, probs: torch.Tensor, ref_feats: torch.Tensor, requested: torch.Tensor | None
) -> dict:
    pred = probs.argmax(dim=1)
    hist = class_histogram(pred, probs.shape[1])
    precision, recall = precision_recall(ref_feats, feats)
    density, coverage = density_coverage(ref_feats, feats)
    out = {
        "frechet_distance": frechet_distance(ref_feats, feats),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "class_histogram": hist.tolist(),
        "min_class_fraction": float(hist.min()),
        "max_class_fraction": float(hist.max()),
        "kl_from_uniform": kl_from_uniform(hist),
        "confident_fraction": confident_fraction(probs),
    }
    if requested is not None:
        overall, per_class = conditional_accuracy(pred, requested, probs.shape[1])
        out["conditional_accuracy"] = overall
        out["conditional_accuracy_per_class"] = _nan_to_none(per_class)
    return out


def evaluate_samples(
    images: torch.Tensor,
    dataset: str,
    requested: torch.Tensor | None = None,
    real: torch.Tensor | None = None,
    *,
    seed: int = 0,
    inception: bool = False,
    allow_download: bool = False,
) -> dict:
    """Score generated images with the dataset's classifier, next to the real-data floor.

    The reference is N real training images (N = number of samples; ``real`` when given, else a
    seeded random draw from the training set). The samples are compared with it, and so are N
    real test images: that second set of numbers, under ``"real_floor"``, is what a perfect
    generator would score at this N (the conditional accuracy there is the classifier's own
    accuracy on those test images).

    Args:
        images: generated images ``(N, 1, 28, 28)`` in [-1, 1], 10 <= N <= 10000 (the test-set size).
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        requested: ``(N,)`` classes asked of a conditional generator; adds conditional accuracy.
        real: real training images ``(>= N, 1, 28, 28)`` in [-1, 1] to use as the reference.
        seed: seeds the draw of real images.
        inception: also compute Inception FID (see :func:`inception_fid`; slow on a CPU).
        allow_download: let :func:`inception_fid` download its weights.

    Returns:
        A JSON-ready dict: ``frechet_distance`` (classifier features, not Inception FID),
        ``precision``, ``recall``, ``density``, ``coverage``, ``class_histogram``,
        ``min_class_fraction``, ``max_class_fraction``, ``kl_from_uniform`` (nats),
        ``confident_fraction``, with ``requested`` also ``conditional_accuracy`` and
        ``conditional_accuracy_per_class``; ``inception_fid`` (a float or ``"skipped: ..."``);
        ``real_floor`` (the same keys for real test images); and ``dataset``, ``num_samples``, ``note``.
    """
    check_images(images)
    n = images.shape[0]
    if not 10 <= n <= 10000:
        raise ValueError(
            f"evaluate_samples needs 10 to 10000 images, got {n}: the real-data floor uses as "
            "many test images as there are samples, and the test sets hold 10000."
        )
    if requested is not None:
        requested = torch.as_tensor(requested).cpu()
        if requested.shape != (n,):
            raise ValueError(f"requested must have shape ({n},), one class per image; got {tuple(requested.shape)}.")
    gen = torch.Generator().manual_seed(seed)
    if real is None:
        real, _ = load_images(dataset, train=True)
    check_images(real)
    if real.shape[0] < n:
        raise ValueError(f"real holds {real.shape[0]} images, fewer than the {n} samples.")
    x_ref = real[torch.randperm(real.shape[0], generator=gen)[:n].to(real.device)]
    x_test_all, y_test_all = load_images(dataset, train=False)
    idx = torch.randperm(x_test_all.shape[0], generator=gen)[:n]
    x_test, y_test = x_test_all[idx], y_test_all[idx]

    model = _cached_classifier(dataset, str(images.device))
    feats, probs = classify(model, images)
    ref_feats, _ = classify(model, x_ref)
    test_feats, test_probs = classify(model, x_test)

    result = {"dataset": dataset, "num_samples": n}
    result.update(_sample_metrics(feats, probs, ref_feats, requested))
    floor = _sample_metrics(test_feats, test_probs, ref_feats, y_test if requested is not None else None)
    if inception:
        result["inception_fid"] = inception_fid(x_ref, images, allow_download=allow_download)
        floor["inception_fid"] = (
            inception_fid(x_ref, x_test.to(images.device), allow_download=allow_download)
            if isinstance(result["inception_fid"], float) else result["inception_fid"]
        )
    else:
        result["inception_fid"] = ("skipped: not requested (evaluate_samples(..., inception=True); the labs "
                                   "ask for it in the full profile only, it is slow on a CPU)")
    result["real_floor"] = floor
    result["note"] = (
        f"frechet_distance uses the {dataset} classifier's penultimate features: a classifier-"
        "feature Fréchet distance, not Inception FID. real_floor: real test vs real train images "
        "at the same sample count."
    )
    return result
