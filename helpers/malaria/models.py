"""Reference architectures of Lab 3 (LSGAN DCGAN on malaria cell patches) and their save/load.

The notebook ``dcgan_malaria.ipynb`` has students write these models themselves; this copy is
what the stand-alone script ``malaria_test.py`` rebuilds from a checkpoint. Both must have the
same ``state_dict`` keys and shapes: :func:`save_model` refuses a notebook model that differs,
and ``tests/test_malaria_models.py`` compares the notebook's classes with these.

* :class:`Generator`: z (B, 100) -> Linear -> (B, 128, 4, 4) -> transposed convs, each doubling
  the side, up to (B, 3, S, S) with tanh, images in [-1, 1]. S = 32 or 64.
* :class:`Discriminator`: convs that each halve the side, S -> ... -> 4, then one 4x4 conv to a
  raw score (B,) for the least-squares losses (no sigmoid). LeakyReLU(0.2); no BatchNorm on
  the input layer (DCGAN).
* :class:`MultiTaskDiscriminator`: the same trunk and score, plus a classification head that
  reads the output of the second-to-last conv (the last halving conv, (B, C, 4, 4)): two fully
  connected layers, one output per stage, sigmoid. ``forward`` returns ``(score, probs)``;
  ``forward_logits``/``classify_logits`` give the logits for ``BCEWithLogits`` and GradCAM.

Checkpoint file of one model (:func:`save_model`, :func:`load_model`), a plain dict loaded with
``torch.load(weights_only=True)``::

    {"format": 1, "architecture": "generator" | "discriminator" | "multitask",
     "config": {MalariaGANConfig fields}, "models": {architecture: state_dict}}
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from helpers.checkpoints import CheckpointError, atomic_save, safe_load
from helpers.models import dcgan_init
from helpers.sampling import mark_trained

ARCHITECTURES = ("generator", "discriminator", "multitask")
CHECKPOINT_FORMAT = 1


@dataclass
class MalariaGANConfig:
    """Sizes of the Lab 3 models; stored in every checkpoint so a model can be rebuilt."""

    latent_dim: int = 100  # length of the noise vector z
    image_size: int = 32  # patch side S in pixels: 4 * 2^k (32 or 64 in the lab)
    channels: int = 3  # RGB patches
    g_channels: int = 128  # channels of G's first feature map (128 x 4 x 4), halved by each upsampling
    d_channels: int = 64  # channels of D's first conv, doubled by each later halving conv
    num_stages: int = 4  # outputs of the classification head (ring, trophozoite, schizont, gametocyte)
    head_hidden: int = 128  # width of the head's hidden fully connected layer

    def __post_init__(self) -> None:
        steps = math.log2(self.image_size / 4) if self.image_size >= 8 else 0
        if self.image_size < 8 or steps != int(steps):
            raise ValueError(f"image_size must be 4 * 2^k with k >= 1 (8, 16, 32, 64, ...), got {self.image_size}.")

    @property
    def num_resamplings(self) -> int:
        """Number of x2 up-convs in G (and /2 convs in D): log2(S / 4)."""
        return int(math.log2(self.image_size // 4))


# ----------------------------------------------------------------------------- generator
class Generator(nn.Module):
    """DCGAN generator: z (B, latent_dim) -> images (B, channels, S, S) in [-1, 1]."""

    def __init__(self, config: MalariaGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MalariaGANConfig()
        c = config.g_channels
        self.project = nn.Linear(config.latent_dim, c * 4 * 4)  # (B, 100) -> (B, 128*4*4)
        self.project_norm = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        layers: list[nn.Module] = []
        for _ in range(config.num_resamplings - 1):  # (B, c, s, s) -> (B, c/2, 2s, 2s)
            c_out = max(c // 2, 16)
            layers += [nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c = c_out
        layers += [nn.ConvTranspose2d(c, config.channels, 4, stride=2, padding=1), nn.Tanh()]  # (B, 3, S, S)
        self.upsample = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.config.g_channels, 4, 4)  # (B, 128, 4, 4)
        return self.upsample(self.project_norm(x))  # (B, 3, S, S) in [-1, 1]


# ----------------------------------------------------------------------------- discriminators
def _halving_trunk(config: MalariaGANConfig) -> tuple[nn.Sequential, int]:
    """Conv blocks (B, 3, S, S) -> (B, C, 4, 4), each halving the side; returns (trunk, C)."""
    blocks = []
    c_in, c = config.channels, config.d_channels
    for i in range(config.num_resamplings):
        block = [nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=i == 0)]
        if i > 0:  # no BatchNorm on the input layer (DCGAN): it would normalise away the data's statistics
            block.append(nn.BatchNorm2d(c))
        block.append(nn.LeakyReLU(0.2))  # not inplace: GradCAM hooks read this block's output
        blocks.append(nn.Sequential(*block))
        c_in, c = c, c * 2
    return nn.Sequential(*blocks), c_in


class Discriminator(nn.Module):
    """DCGAN discriminator for the least-squares loss: images (B, 3, S, S) -> raw scores (B,)."""

    def __init__(self, config: MalariaGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MalariaGANConfig()
        self.features, c = _halving_trunk(config)  # (B, 3, S, S) -> (B, C, 4, 4)
        self.score = nn.Conv2d(c, 1, 4)  # (B, C, 4, 4) -> (B, 1, 1, 1), the last conv
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x)).flatten()  # (B,), unbounded


class MultiTaskDiscriminator(nn.Module):
    """LSGAN discriminator with a multi-label stage classifier on its second-to-last conv.

    ``features`` and ``score`` have the same names and shapes as in :class:`Discriminator`, so
    a plain discriminator's weights can be copied into this one.
    """

    def __init__(self, config: MalariaGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MalariaGANConfig()
        self.features, c = _halving_trunk(config)  # (B, 3, S, S) -> (B, C, 4, 4)
        self.score = nn.Conv2d(c, 1, 4)  # realness branch: (B, C, 4, 4) -> (B, 1, 1, 1)
        self.head = nn.Sequential(  # stage branch: (B, C, 4, 4) -> (B, num_stages) logits
            nn.Flatten(),
            nn.Linear(c * 4 * 4, config.head_hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(config.head_hidden, config.num_stages),
        )
        self.apply(dcgan_init)

    @property
    def cam_layer(self) -> nn.Module:
        """The block of the last conv the head reads (GradCAM target), output (B, C, 4, 4)."""
        return self.features[-1]

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(score (B,), stage logits (B, num_stages))``, both unbounded."""
        h = self.features(x)  # (B, C, 4, 4)
        return self.score(h).flatten(), self.head(h)

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Stage logits (B, num_stages); the sigmoid of these is the head's output."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(score (B,), stage probabilities (B, num_stages) in [0, 1])``."""
        score, logits = self.forward_logits(x)
        return score, torch.sigmoid(logits)


# ----------------------------------------------------------------------------- save / load
def _normalise_architecture(architecture: str) -> str:
    name = str(architecture).strip().lower()
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown model architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}.")
    return name


def architecture_of(model: nn.Module) -> str:
    """``"generator"``, ``"discriminator"`` or ``"multitask"`` for a model of this module."""
    model = getattr(model, "_orig_mod", model)  # save the module behind torch.compile, not the wrapper
    if isinstance(model, MultiTaskDiscriminator):
        return "multitask"
    if isinstance(model, Discriminator):
        return "discriminator"
    if isinstance(model, Generator):
        return "generator"
    raise TypeError(
        f"{type(model).__name__} is not one of helpers.malaria.models' classes, so its architecture cannot be "
        f"inferred: pass it, e.g. save_model(model, path, architecture='generator') (one of {', '.join(ARCHITECTURES)})."
    )


def build_model(architecture: str, config: MalariaGANConfig | None = None) -> nn.Module:
    """A freshly initialised model of the named architecture."""
    name = _normalise_architecture(architecture)
    if name == "generator":
        return Generator(config)
    if name == "discriminator":
        return Discriminator(config)
    return MultiTaskDiscriminator(config)


def state_dict_layout(model: nn.Module) -> dict[str, list[int]]:
    """``{state_dict key: shape}`` of a model: what must agree for its weights to load into another."""
    model = getattr(model, "_orig_mod", model)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def layout_differences(got: dict[str, list[int]], want: dict[str, list[int]], limit: int = 6) -> list[str]:
    """Human-readable differences between two :func:`state_dict_layout` results (empty when they agree).

    Args:
        got: the layout of the model being checked.
        want: the layout it must have.
        limit: at most this many keys are named per kind of difference.
    """
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    wrong = [f"{k}: {tuple(got[k])} instead of {tuple(want[k])}" for k in want if k in got and list(got[k]) != list(want[k])]
    out = []
    for what, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
            out.append(f"{what}: {', '.join(items[:limit])}{more}")
    return out


def save_model(model: nn.Module, path: str | os.PathLike, architecture: str | None = None) -> Path:
    """Write one model, its architecture name and its config to ``path`` atomically.

    The notebook's own classes are accepted when their weights fit this module's architecture
    (the same ``state_dict`` keys and shapes; ``malaria_test.py`` rebuilds the model from this
    module), so a file saved from the notebook loads in the stand-alone script.

    Args:
        model: a :class:`Generator`, :class:`Discriminator` or :class:`MultiTaskDiscriminator`, or
            a notebook class with the same parameter layout and a ``config``
            (:class:`MalariaGANConfig`) attribute; a ``torch.compile`` wrapper of either is unwrapped.
        path: the file to write (``.pt``); its folder is created.
        architecture: ``"generator"``, ``"discriminator"`` or ``"multitask"``; required for a
            notebook class, optional (and checked) for this module's classes.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: no ``architecture`` for a notebook class, or no ``MalariaGANConfig`` in ``model.config``.
        ValueError: the weights do not fit the named architecture with the model's config.
    """
    model = getattr(model, "_orig_mod", model)
    if architecture is None:
        name = architecture_of(model)
    else:
        name = _normalise_architecture(architecture)
    config = getattr(model, "config", None)
    if not isinstance(config, MalariaGANConfig):
        raise TypeError(
            f"{type(model).__name__}.config must be the MalariaGANConfig the model was built from "
            f"(set self.config = config in __init__); got {type(config).__name__}."
        )
    diffs = layout_differences(state_dict_layout(model), state_dict_layout(build_model(name, config)))
    if diffs:
        raise ValueError(
            f"{type(model).__name__} does not have the parameter layout of a {name!r} model with its config, so "
            f"malaria_test.py could not load it: " + "; ".join(diffs) + ". Use the layer names and sizes the "
            f"notebook's TODO gives (the instant check after the class says which one differs)."
        )
    state = {
        "format": CHECKPOINT_FORMAT,
        "architecture": name,
        "config": asdict(config),
        "models": {name: {k: v.detach().cpu() for k, v in model.state_dict().items()}},
    }
    return atomic_save(state, path)


def load_model(
    path: str | os.PathLike, architecture: str | None = None, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`, in eval mode.

    Args:
        path: the checkpoint file.
        architecture: the architecture the caller expects; a file holding another one is refused.
            None accepts whatever the file holds.
        map_location: device of the returned model.

    Raises:
        CheckpointError: missing, unreadable or unsafe file, wrong architecture, weights that do
            not fit the stored config.
        ValueError: ``architecture`` is not one of :data:`ARCHITECTURES`.
    """
    wanted = None if architecture is None else _normalise_architecture(architecture)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No model file at {path}. Save one with save_model(model, path) first, or check the path.")
    ckpt = safe_load(path, map_location)
    stored = ckpt.get("architecture")
    if stored not in ARCHITECTURES or not isinstance(ckpt.get("config"), dict) or stored not in ckpt["models"]:
        raise CheckpointError(
            f"{path} is not a Lab 3 model file (it needs 'architecture', 'config' and the weights under "
            f"'models'). Write it with helpers.malaria.models.save_model."
        )
    if wanted is not None and stored != wanted:
        raise CheckpointError(
            f"{path} holds a {stored!r} model, not a {wanted!r} one. Pass model_architecture={stored!r}, "
            f"or point to the file of the {wanted} model."
        )
    known = {f.name for f in fields(MalariaGANConfig)}
    unknown = sorted(set(ckpt["config"]) - known)
    if unknown:
        raise CheckpointError(f"{path} has config fields this code does not know: {unknown}. Was it saved by a newer version?")
    try:
        model = build_model(stored, MalariaGANConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["models"][stored], strict=True)
    except (RuntimeError, ValueError, TypeError) as err:
        detail = " ".join(str(err).split())[:800]
        raise CheckpointError(f"{path}: the weights do not fit a {stored!r} model with the stored config ({detail}).") from None
    mark_trained(model)
    return model.to(map_location).eval()
