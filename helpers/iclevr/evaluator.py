"""The i-CLEVR lab's evaluator: a small multi-label CNN that says which of the 24 objects an image shows.

It plays the part of the course's evaluator (a ResNet-18 the course hands out, not public) on the
rendered stand-in: trained by ``python -m helpers.iclevr.train_evaluator`` on the rendered training set,
its weights (a ``state_dict``, under 1 MB) and a JSON record of its accuracy live in ``helpers/weights/``.

The metric is the course's, :func:`per_object_accuracy`: for each image take k = the number of objects
asked for; count how many of the evaluator's k highest outputs are among them; accuracy = all hits / all
objects asked for. :func:`evaluate` runs it on generated images; :func:`features` gives the penultimate
activations for a Fréchet distance (:func:`feature_distance`, with :func:`helpers.metrics.frechet_distance`).
The numbers only compare with each other (this evaluator, this stand-in), never with the course's.

Input everywhere: float images ``(N, 3, 64, 64)`` or ``(N, 3, 32, 32)`` in [0, 1] (RGB; 32 x 32 images
are upsampled bilinearly to 64 x 64, as the course's evaluator was trained). Generators that end in
``tanh`` give [-1, 1]: pass ``(x + 1) / 2``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.iclevr.data import NUM_OBJECTS, encode_conditions
from helpers.metrics import frechet_distance

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_PATH = WEIGHTS_DIR / "iclevr_evaluator.pt"
RECORD_PATH = WEIGHTS_DIR / "iclevr_evaluator.json"
INPUT_SIZE = 64                  # the network's own resolution
ACCEPTED_SIZES = (32, 64)        # 32 x 32 images are upsampled to 64 x 64
TRAIN_COMMAND = "python -m helpers.iclevr.train_evaluator"


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class IclevrEvaluator(nn.Module):
    """Space-to-depth, four conv blocks, global max and mean pooling, two linear layers; ``features`` is the
    penultimate layer.

    Max pooling over the whole image suits the task: an object is present if it shows anywhere.

    Args:
        num_objects: number of outputs (one logit per object of objects.json).
        num_features: width of the penultimate layer (the Fréchet-distance features).
    """

    def __init__(self, num_objects: int = NUM_OBJECTS, num_features: int = 128) -> None:
        super().__init__()
        self.num_features = num_features
        self.body = nn.Sequential(
            # (B, 3, 64, 64), images in [-1, 1]
            nn.PixelUnshuffle(2),                       # (B, 12, 32, 32): every pixel kept, 4x cheaper convs
            *_block(12, 24), nn.MaxPool2d(2),           # (B, 24, 16, 16)
            *_block(24, 48), nn.MaxPool2d(2),           # (B, 48, 8, 8)
            *_block(48, 96), nn.MaxPool2d(2),           # (B, 96, 4, 4)
            *_block(96, 128),                           # (B, 128, 4, 4)
        )
        self.neck = nn.Sequential(nn.Linear(2 * 128, num_features), nn.ReLU())   # (B, num_features)
        self.head = nn.Linear(num_features, num_objects)                           # (B, 24) logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, num_features)`` (after a ReLU) for images in [0, 1], 32 or 64 px."""
        if x.shape[-1] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        h = self.body(x * 2 - 1)                                             # (B, 128, 4, 4)
        pooled = torch.cat([h.amax(dim=(2, 3)), h.mean(dim=(2, 3))], dim=1)  # (B, 256)
        return self.neck(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Object logits ``(B, 24)`` for images ``(B, 3, 64, 64)`` or ``(B, 3, 32, 32)`` in [0, 1]."""
        return self.head(self.features(x))


def check_images(images: torch.Tensor) -> None:
    """Raise a ValueError unless ``images`` is a float batch ``(N, 3, S, S)``, S in {32, 64}, within [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"Expected a torch.Tensor of images, got {type(images).__name__} "
                         "(use torch.from_numpy for a NumPy array).")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3] \
            or images.shape[2] not in ACCEPTED_SIZES:
        raise ValueError(f"Expected images of shape (N, 3, 64, 64) or (N, 3, 32, 32), got {tuple(images.shape)}. "
                         "Channels come first (N, C, H, W); resize other sizes to 64 x 64 first.")
    if not images.is_floating_point():
        raise ValueError(f"Expected float images in [0, 1], got dtype {images.dtype}. "
                         "For uint8 images use x.float() / 255.")
    if images.numel():
        low, high = images.min().item(), images.max().item()
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("The images hold NaN or infinite values.")
        if low < -1e-3 or high > 1 + 1e-3:
            hint = " They look like [-1, 1] (tanh) images: pass (x + 1) / 2." if low >= -1.001 and high <= 1.001 \
                else " Scale them to [0, 1] first."
            raise ValueError(f"Expected images in [0, 1], got values in [{low:.3g}, {high:.3g}].{hint}")


def load_evaluator(device: torch.device | str = "cpu") -> IclevrEvaluator:
    """The trained evaluator in eval mode, with gradients off.

    Args:
        device: where the model goes.

    Returns:
        An :class:`IclevrEvaluator` loaded from ``helpers/weights/iclevr_evaluator.pt``.

    Raises:
        FileNotFoundError: the weights file is missing.
        RuntimeError: the weights file is truncated or not this network's (the message says how to restore it).
    """
    if not WEIGHTS_PATH.is_file():
        raise FileNotFoundError(f"No i-CLEVR evaluator weights at {WEIGHTS_PATH}. Restore them with "
                                f"`git checkout -- helpers/weights/{WEIGHTS_PATH.name}`, or train "
                                f"them (a few minutes on a CPU) with `{TRAIN_COMMAND}` from the repository root.")
    try:
        state_dict = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
        model = IclevrEvaluator(num_objects=state_dict["head.weight"].shape[0],
                                num_features=state_dict["head.weight"].shape[1])
        model.load_state_dict(state_dict)
    except Exception as err:  # a truncated zip, a pickle error, missing keys: all mean "not a usable file"
        raise RuntimeError(f"The i-CLEVR evaluator weights {WEIGHTS_PATH} are damaged or not this network's "
                           f"({type(err).__name__}: {str(err)[:200]}). Restore them with `git checkout -- "
                           f"helpers/weights/{WEIGHTS_PATH.name}` or retrain with `{TRAIN_COMMAND}`.") from None
    model.requires_grad_(False)
    return model.to(device).eval()


def load_record() -> dict:
    """The JSON record beside the weights (held-out accuracy, the test sets' real-data floor, command...)."""
    if not RECORD_PATH.is_file():
        raise FileNotFoundError(f"No evaluator record at {RECORD_PATH}; make it with `{TRAIN_COMMAND}`.")
    return json.loads(RECORD_PATH.read_text())


@lru_cache(maxsize=2)
def _default_evaluator(device: str) -> IclevrEvaluator:
    return load_evaluator(device)


def _model(evaluator: nn.Module | None) -> nn.Module:
    return _default_evaluator("cpu") if evaluator is None else evaluator


def per_object_accuracy(logits_or_probs, conditions) -> float:
    """The course's metric: share of the asked-for objects found among the evaluator's top-k outputs.

    For image i, k_i = number of objects in its condition; hits_i = how many of the k_i largest outputs are
    objects of the condition; accuracy = sum(hits_i) / sum(k_i). Logits and sigmoid probabilities rank the
    same, so either may be passed.

    Args:
        logits_or_probs: ``(n, 24)`` evaluator outputs (tensor or array).
        conditions: the conditions asked for, anything :func:`helpers.iclevr.data.encode_conditions` takes
            with n rows (an ``(n, 24)`` 0/1 array, or n lists of names).

    Returns:
        The accuracy, a float in [0, 1].
    """
    scores = torch.as_tensor(np.asarray(logits_or_probs.detach().cpu() if isinstance(logits_or_probs, torch.Tensor)
                                        else logits_or_probs), dtype=torch.float64)
    if scores.dim() != 2 or scores.shape[1] != NUM_OBJECTS:
        raise ValueError(f"Expected outputs of shape (n, {NUM_OBJECTS}), got {tuple(scores.shape)}.")
    truth = torch.from_numpy(encode_conditions(conditions, n=scores.shape[0]))     # (n, 24)
    hits, total = 0, 0
    for k in range(1, int(truth.sum(dim=1).max().item()) + 1):
        rows = truth.sum(dim=1) == k
        if rows.any():
            top = scores[rows].topk(k, dim=1).indices                                # (m, k)
            hits += int(truth[rows].gather(1, top).sum().item())
            total += k * int(rows.sum().item())
    return hits / total


@torch.no_grad()
def predict(images: torch.Tensor, evaluator: nn.Module | None = None, batch_size: int = 256) -> torch.Tensor:
    """The evaluator's logits ``(n, 24)`` (float32, CPU) for images in [0, 1], in batches."""
    check_images(images)
    model = _model(evaluator)
    device = next(model.parameters()).device
    out = [model(images[i: i + batch_size].to(device, torch.float32)).cpu()
           for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, NUM_OBJECTS)


def evaluate(images: torch.Tensor, conditions, evaluator: nn.Module | None = None) -> float:
    """Per-object accuracy (the course's metric) of generated images against the conditions they were made for.

    Args:
        images: float ``(n, 3, 64, 64)`` or ``(n, 3, 32, 32)`` in [0, 1].
        conditions: one condition per image (n lists of names or an ``(n, 24)`` array), or one for all.
        evaluator: default the committed one (:func:`load_evaluator`).

    Returns:
        The accuracy in [0, 1]; compare it with the real-data floor in ``load_record()["floor"]``.
    """
    check_images(images)
    if images.shape[0] == 0:
        raise ValueError("No images to evaluate.")
    return per_object_accuracy(predict(images, evaluator), conditions)


@torch.no_grad()
def features(images: torch.Tensor, evaluator: nn.Module | None = None, batch_size: int = 256) -> torch.Tensor:
    """Penultimate features ``(n, 128)`` (float32, CPU) of images in [0, 1], for a Fréchet distance."""
    check_images(images)
    model = _model(evaluator)
    device = next(model.parameters()).device
    out = [model.features(images[i: i + batch_size].to(device, torch.float32)).cpu()
           for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.num_features)


def feature_distance(images_a: torch.Tensor, images_b: torch.Tensor, evaluator: nn.Module | None = None) -> float:
    """Fréchet distance between the evaluator's features of two image sets (not Inception FID; biased at small n).

    Compare it with the same distance between two sets of rendered images of the same size
    (:func:`helpers.iclevr.data.render_reference` with two seeds): the real-data floor.
    """
    return frechet_distance(features(images_a, evaluator).double(), features(images_b, evaluator).double())
