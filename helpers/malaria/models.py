"""Lab 3 model files: the sizes of the models (:class:`MalariaGANConfig`), and saving / loading the
networks a student wrote in ``dcgan_malaria.ipynb`` so that the stand-alone ``malaria_test.py`` runs
them without the notebook; and :func:`recalibrate_batchnorm`, which gives a discriminator trained
on real and fake batches the BatchNorm statistics of real patches before it classifies them.

There is no copy of the architectures here: they are the student's TODOs and live only in the
notebook. A model file therefore holds the student's own network, as a **TorchScript** program
traced from it (its code and weights), plus a small JSON description:

* ``generator``: ``forward(z (B, latent_dim)) -> images (B, 3, S, S)`` in [-1, 1];
* ``discriminator``: ``forward(x (B, 3, S, S)) -> raw scores (B,)``;
* ``multitask``: ``forward(x) -> (raw scores (B,), stage logits (B, num_stages), A)`` where ``A``
  (B, C, h, w) is the output of the model's ``cam_layer``, the activation GradCAM explains. It is
  the very tensor the head read, so gradients of the logits reach it.

File format (``save_model``): a TorchScript archive (a zip) with one extra member,
``extra/ganlab_malaria.json``::

    {"format": 2, "architecture": "generator" | "discriminator" | "multitask",
     "config": {MalariaGANConfig fields}}

Loading (``load_model``) never unpickles Python objects: the JSON is read with ``zipfile`` and
``json``, the zip's CRCs are verified, and the program is read by ``torch.jit.load``, whose own
C++ reader accepts tensors and TorchScript types only (a pickle payload such as an object with
``__reduce__`` is rejected, and nothing of it runs). Any failure is one
:class:`~helpers.checkpoints.CheckpointError` that names the file. TorchScript code can call torch
operators only; this is protection against pickle payloads, not a sandbox.

Why TorchScript: it keeps the student's own ``forward`` (whatever layers the checks accepted),
whereas a weights-only file needs a reference architecture to load into, and ``torch.export.load``
unpickles. ``torch.jit`` is deprecated upstream (a FutureWarning in the pinned torch 2.14): the
project pins torch, these warnings are silenced here only, and a newer torch that drops TorchScript
needs a new format (a declarative layer spec plus ``weights_only`` weights).
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import warnings
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from typing import Callable

import torch
from torch import nn

from helpers.checkpoints import CheckpointError, unwrap
from helpers.sampling import mark_trained

ARCHITECTURES = ("generator", "discriminator", "multitask")
MODEL_FORMAT = 2  # 1 was a torch.save state dict loaded into a reference copy of the architectures
METADATA_NAME = "ganlab_malaria.json"  # extra file inside the TorchScript archive


@dataclass
class MalariaGANConfig:
    """Sizes of the Lab 3 models; stored in every model file."""

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


# ----------------------------------------------------------------------------- parameter layouts
def state_dict_layout(model: nn.Module) -> dict[str, list[int]]:
    """``{state_dict key: shape}`` of a model: what the checks compare with the stored answers."""
    return {k: list(v.shape) for k, v in unwrap(model).state_dict().items()}


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


# ----------------------------------------------------------------------------- saving
def _normalise_architecture(architecture: str) -> str:
    name = str(architecture).strip().lower()
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown model architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}.")
    return name


class _WithCamActivation(nn.Module):
    """What a multi-task model file runs: the student's ``forward_logits`` plus the ``cam_layer`` output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        caught: list[torch.Tensor] = []
        handle = self.model.cam_layer.register_forward_hook(lambda module, inputs, output: caught.append(output))
        try:
            score, logits_stage = self.model.forward_logits(x)  # (B,), (B, num_stages)
        finally:
            handle.remove()
        if len(caught) != 1:
            raise ValueError(f"cam_layer ran {len(caught)} times in forward_logits; it must run exactly once.")
        return score, logits_stage, caught[0]  # caught[0]: (B, C, h, w), the tensor the head read


def _example_input(architecture: str, config: MalariaGANConfig, batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if architecture == "generator":
        return torch.randn(batch, config.latent_dim, generator=gen)
    return torch.rand(batch, config.channels, config.image_size, config.image_size, generator=gen) * 2 - 1


def _as_tuple(out: torch.Tensor | tuple) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def save_model(model: nn.Module, path: str | os.PathLike, architecture: str) -> Path:
    """Write the student's network as a TorchScript model file (see the module docstring), atomically.

    The network is traced on the CPU in eval mode (BatchNorm uses its running statistics), from a
    copy: ``model`` itself is not moved or changed. The traced program is checked against the
    model on a batch of another size before anything is written.

    Args:
        model: the notebook's ``Generator``, ``Discriminator`` or ``MultiTaskDiscriminator`` (a
            ``torch.compile`` wrapper is unwrapped); it must keep its ``MalariaGANConfig`` in
            ``model.config``, and a multi-task model needs ``forward_logits`` and ``cam_layer``.
        path: the file to write (``.pt``); its folder is created.
        architecture: ``"generator"``, ``"discriminator"`` or ``"multitask"``.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: no ``MalariaGANConfig`` in ``model.config``, or a multi-task model without
            ``forward_logits`` / ``cam_layer``.
        ValueError: unknown architecture, or a forward that cannot be traced faithfully (for example
            one that fixes the batch size).
    """
    name = _normalise_architecture(architecture)
    model = unwrap(model)
    config = getattr(model, "config", None)
    if not isinstance(config, MalariaGANConfig):
        raise TypeError(
            f"{type(model).__name__}.config must be the MalariaGANConfig the model was built from "
            f"(set self.config = config in __init__); got {type(config).__name__}."
        )
    if name == "multitask" and not (hasattr(model, "forward_logits") and isinstance(getattr(model, "cam_layer", None), nn.Module)):
        raise TypeError(f"A multi-task model needs forward_logits(x) and a cam_layer module; {type(model).__name__} lacks one.")
    cpu_model = copy.deepcopy(model).cpu().eval()
    program_source = _WithCamActivation(cpu_model) if name == "multitask" else cpu_model
    example, other = _example_input(name, config, 2, 0), _example_input(name, config, 3, 1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
        try:
            program = torch.jit.trace(program_source, (example,), check_trace=False)  # checked below, on another batch size
        except Exception as err:  # noqa: BLE001 - whatever tracing raises, say which model and why
            raise ValueError(f"{type(model).__name__} could not be traced to a model file: {type(err).__name__}: {err}") from None
        try:
            want, got = _as_tuple(program_source(other)), _as_tuple(program(other))
            same = len(want) == len(got) and all(a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
                                                 for a, b in zip(want, got))
        except RuntimeError:  # e.g. a view whose batch size was frozen at 2
            same = False
    if not same:
        raise ValueError(
            f"The traced {type(model).__name__} gives other outputs than the model on a batch of 3 (it was traced on 2): "
            f"its forward must not depend on Python values fixed at trace time. Use z.shape[0] or -1 for the batch size "
            f"in view/reshape, and no Python branches on tensor values."
        )
    metadata = json.dumps({"format": MODEL_FORMAT, "architecture": name, "config": asdict(config)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
            torch.jit.save(program, f, _extra_files={METADATA_NAME: metadata})
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)  # a crash mid-write leaves the previous file intact
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- loading
class SavedGenerator(nn.Module):
    """A generator read from a model file: ``z (B, latent_dim) -> images (B, 3, S, S)`` in [-1, 1]."""

    def __init__(self, program: torch.jit.ScriptModule, config: MalariaGANConfig) -> None:
        super().__init__()
        self.program = program  # traced in eval mode: BatchNorm always uses its running statistics
        self.config = config

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.program(z)


class SavedDiscriminator(nn.Module):
    """A plain discriminator read from a model file: ``x (B, 3, S, S) -> raw scores (B,)``."""

    def __init__(self, program: torch.jit.ScriptModule, config: MalariaGANConfig) -> None:
        super().__init__()
        self.program = program
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


class SavedMultiTaskDiscriminator(nn.Module):
    """A multi-task discriminator read from a model file, with the notebook model's interface.

    ``cam_layer`` is an identity through which the saved program's cam activation A passes: hooks
    on it (the notebook's ``grad_cam``, pytorch-grad-cam) see A, and since A is the tensor the head
    read, the gradients of the stage logits flow into it.
    """

    def __init__(self, program: torch.jit.ScriptModule, config: MalariaGANConfig) -> None:
        super().__init__()
        self.program = program
        self.config = config
        self.cam_layer = nn.Identity()

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score (B,), stage logits (B, num_stages))``, both before any sigmoid."""
        # Unoptimised execution, so that every operator records its own autograd node: an optimised
        # graph may group the ops behind A and the logits into one differentiable subgraph, and then
        # no gradient of a logit would reach A (GradCAM would fail).
        with torch.jit.optimized_execution(False):
            score, logits_stage, activation = self.program(x)
        self.cam_layer(activation)  # (B, C, h, w): only for the hooks; the logits were computed from it
        return score, logits_stage

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Stage logits (B, num_stages) only (what GradCAM explains)."""
        return self.forward_logits(x)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score (B,), stage probabilities (B, num_stages) in [0, 1])``."""
        score, logits_stage = self.forward_logits(x)
        return score, torch.sigmoid(logits_stage)


_SAVED_CLASSES = {"generator": SavedGenerator, "discriminator": SavedDiscriminator, "multitask": SavedMultiTaskDiscriminator}


def _read_metadata(path: Path) -> dict:
    """The JSON description inside a model file, after checking the zip's CRCs; no unpickling."""
    not_ours = (f"{path} is not a Lab 3 model file (a TorchScript archive written by "
                f"helpers.malaria.models.save_model)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{not_ours}: it is not a complete zip archive, so it is truncated, corrupt or of "
                              f"another kind. Save the model again with save_model (the notebook's save cell).")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC
            if bad is not None:
                raise CheckpointError(f"{path} is corrupt: the member {bad} fails its checksum. Save the model again.")
            names = [n for n in archive.namelist() if n.endswith("/extra/" + METADATA_NAME)]
            if not names:
                old = any(n.endswith("data.pkl") for n in archive.namelist())
                raise CheckpointError(
                    f"{not_ours}: it has no {METADATA_NAME}." + (
                        " It looks like a torch.save file (a training checkpoint, or a model file of the old format): "
                        "load the networks in the notebook and save them with save_model." if old else ""))
            metadata = json.loads(archive.read(names[0]).decode("utf-8"))
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(err).__name__}: {err}). Save the model again.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path} has model file format {metadata.get('format') if isinstance(metadata, dict) else None!r}; "
                              f"this code reads format {MODEL_FORMAT}. Save the model again with this version.")
    if metadata.get("architecture") not in ARCHITECTURES or not isinstance(metadata.get("config"), dict):
        raise CheckpointError(f"{not_ours}: its {METADATA_NAME} lacks a known 'architecture' or a 'config'.")
    unknown = sorted(set(metadata["config"]) - {f.name for f in fields(MalariaGANConfig)})
    if unknown:
        raise CheckpointError(f"{path} has config fields this code does not know: {unknown}. Was it saved by a newer version?")
    return metadata


def _check_outputs(model: nn.Module, architecture: str, path: Path) -> None:
    """One forward pass on a batch of 2: the outputs must have the shapes the architecture promises."""
    cfg = model.config
    with torch.no_grad():
        out = _as_tuple(model(_example_input(architecture, cfg, 2, 0).to(next(model.parameters()).device)))
    want = {"generator": [(2, cfg.channels, cfg.image_size, cfg.image_size)], "discriminator": [(2,)],
            "multitask": [(2,), (2, cfg.num_stages)]}[architecture]
    if [tuple(t.shape) for t in out] != want:
        raise CheckpointError(f"{path}: its program gives outputs of shapes {[tuple(t.shape) for t in out]}, "
                              f"not {want} as a {architecture!r} model with the stored config must.")


def load_model(
    path: str | os.PathLike, architecture: str | None = None, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Read a model file written by :func:`save_model`; the model comes back in eval mode, marked trained.

    No Python unpickling happens (see the module docstring).

    Args:
        path: the model file.
        architecture: the architecture the caller expects; a file holding another one is refused.
            None accepts whatever the file holds.
        map_location: device of the returned model.

    Returns:
        A :class:`SavedGenerator`, :class:`SavedDiscriminator` or
        :class:`SavedMultiTaskDiscriminator` with ``config`` (:class:`MalariaGANConfig`).

    Raises:
        CheckpointError: missing, truncated, corrupt or foreign file (a pickle, a training
            checkpoint, ...), wrong architecture; the message names the file.
        ValueError: ``architecture`` is not one of :data:`ARCHITECTURES`.
    """
    wanted = None if architecture is None else _normalise_architecture(architecture)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No model file at {path}. Save one with save_model(model, path, architecture) first, "
                              f"or check the path.")
    metadata = _read_metadata(path)
    stored = metadata["architecture"]
    if wanted is not None and stored != wanted:
        raise CheckpointError(
            f"{path} holds a {stored!r} model, not a {wanted!r} one. Pass model_architecture={stored!r}, "
            f"or point to the file of the {wanted} model."
        )
    try:
        config = MalariaGANConfig(**metadata["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has an invalid config: {err}") from None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
            program = torch.jit.load(str(path), map_location=map_location)
    except Exception as err:  # noqa: BLE001 - torch.jit.load raises RuntimeError and others; all mean "unreadable"
        detail = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{path} could not be read as a TorchScript model ({type(err).__name__}: {detail}). "
                              f"Save the model again with save_model.") from None
    model = _SAVED_CLASSES[stored](program, config).eval()
    _check_outputs(model, stored, path)
    mark_trained(model)
    return model


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, forward: Callable[[torch.Tensor], object] | None = None,
                          batch_size: int = 256) -> None:
    """Recompute the running mean and variance of every BatchNorm layer of ``model`` from the patches ``x``.

    In eval mode BatchNorm normalises with running averages collected during training. A GAN's D
    step runs ``D`` on a batch of real patches and then on a batch of fakes, so its averages are
    a mix of real and fake statistics, and a classifier head evaluated on real patches in eval
    mode sees features normalised with the wrong numbers. This pass replaces them by the exact
    average over ``x`` (``momentum=None``: a cumulative mean), in train mode and without gradients;
    the weights do not change, and training (which normalises each batch with its own
    statistics) is not affected.

    Args:
        model: the network; its train/eval mode and each layer's momentum are restored.
        x: real patches (N, 3, S, S) in [-1, 1] on the model's device.
        forward: what to run on each chunk (e.g. ``model.classify_logits``); default ``model``.
        batch_size: chunk size; each chunk counts once in the average, so keep chunks equal.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(x) == 0:
        return
    forward = forward or model
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for chunk in x.split(batch_size):
            if len(chunk) > 1:  # BatchNorm needs two or more values per channel
                forward(chunk)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
