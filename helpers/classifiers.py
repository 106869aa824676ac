"""Small CNN classifiers that score generated MNIST / Fashion-MNIST images offline.

One classifier per dataset, trained by ``python -m helpers.train_classifier --dataset NAME``
with a fixed seed; the weights (a ``state_dict``, about 0.4 MB) and a JSON record of their
test accuracy live in ``helpers/weights/``. :mod:`helpers.metrics` uses them for the class
histogram, conditional accuracy, confidence, and a Fréchet distance on the penultimate
features (a classifier-feature distance, not Inception FID).

Input everywhere: images ``(N, 1, 28, 28)`` in [-1, 1], the generators' ``tanh`` range and
what :func:`helpers.data.load_images` returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

DATASETS = ("mnist", "fashion_mnist")
NUM_CLASSES = 10
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class Classifier(nn.Module):
    """Three conv blocks and two linear layers; ``features`` is the penultimate layer.

    Args:
        num_classes: number of output logits.
        num_features: width of the penultimate layer (the Fréchet-distance features).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, num_features: int = 128) -> None:
        super().__init__()
        # torchmetrics' FrechetInceptionDistance reads this instead of probing a dummy input.
        self.num_features = num_features
        self.body = nn.Sequential(
            # (B, 1, 28, 28), images in [-1, 1]
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),                                        # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                        # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),                                        # (B, 64, 3, 3)
            nn.Flatten(),                                           # (B, 576)
            nn.Linear(64 * 3 * 3, num_features), nn.ReLU(),         # (B, num_features)
        )
        self.dropout = nn.Dropout(0.3)  # regularises the head only; features are pre-dropout
        self.head = nn.Linear(num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, the embedding used for the Fréchet distance.

        Args:
            x: images ``(N, 1, 28, 28)`` in [-1, 1].

        Returns:
            ``(N, num_features)`` float tensor (non-negative: taken after a ReLU).
        """
        check_images(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` for images ``(N, 1, 28, 28)`` in [-1, 1]."""
        return self.head(self.dropout(self.features(x)))


def check_images(x: torch.Tensor) -> None:
    """Raise a ValueError unless ``x`` is a float batch ``(N, 1, 28, 28)`` within [-1, 1].

    Images in [0, 1] pass this check but score badly: the classifiers expect [-1, 1].
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"Expected images of shape (N, 1, 28, 28), got {shape}.")
    if not x.is_floating_point():
        raise ValueError(f"Expected float images in [-1, 1], got dtype {x.dtype}.")
    if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(
            f"Expected images in [-1, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]. "
            "Scale them first (e.g. x * 2 - 1 for [0, 1] images; tanh for raw generator outputs)."
        )


def weights_path(dataset: str) -> Path:
    """Where the committed weights of ``dataset``'s classifier live."""
    _check_dataset(dataset)
    return WEIGHTS_DIR / f"{dataset}_classifier.pt"


def record_path(dataset: str) -> Path:
    """The JSON beside the weights: test accuracy, seed, command, versions, date."""
    _check_dataset(dataset)
    return WEIGHTS_DIR / f"{dataset}_classifier.json"


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")


def load_classifier(dataset: str, device: torch.device | str = "cpu") -> Classifier:
    """The trained classifier for ``dataset`` in eval mode, with gradients off.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        device: where the model goes.

    Returns:
        A :class:`Classifier` loaded from ``helpers/weights/<dataset>_classifier.pt``.

    Raises:
        FileNotFoundError: the weights are missing; the message names the command that makes them.
    """
    path = weights_path(dataset)
    if not path.is_file():
        raise FileNotFoundError(
            f"No classifier weights at {path}. Train them (a few minutes on a CPU) with:\n"
            f"    python -m helpers.train_classifier --dataset {dataset}\n"
            "run from the repository root."
        )
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    num_features = state_dict["head.weight"].shape[1]
    model = Classifier(num_classes=state_dict["head.weight"].shape[0], num_features=num_features)
    model.load_state_dict(state_dict)
    model.requires_grad_(False)
    return model.to(device).eval()


def load_record(dataset: str) -> dict:
    """The JSON record written next to the weights (test accuracy, seed, command...)."""
    path = record_path(dataset)
    if not path.is_file():
        raise FileNotFoundError(
            f"No classifier record at {path}; make it with "
            f"`python -m helpers.train_classifier --dataset {dataset}`."
        )
    return json.loads(path.read_text())


@torch.no_grad()
def classify(
    model: Classifier, x: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class probabilities for many images, in batches.

    Args:
        model: a classifier in eval mode (see :func:`load_classifier`).
        x: images ``(N, 1, 28, 28)`` in [-1, 1], on any device (moved to the model's).
        batch_size: images per forward pass.

    Returns:
        ``(features, probs)``: ``(N, num_features)`` and ``(N, num_classes)``, float32 on the CPU.
    """
    check_images(x)
    device = next(model.parameters()).device
    feats, probs = [], []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start: start + batch_size].to(device, torch.float32)
        f = model.features(xb)                       # (B, num_features)
        probs.append(F.softmax(model.head(f), dim=1).cpu())  # dropout is a no-op in eval mode
        feats.append(f.cpu())
    if not feats:
        return torch.zeros(0, model.num_features), torch.zeros(0, model.head.out_features)
    return torch.cat(feats), torch.cat(probs)
