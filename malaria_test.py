"""Stand-alone test of a saved Lab 3 model (LSGAN DCGAN on malaria cell patches).

Classifier (stage probabilities of one cell patch; a plain discriminator prints its score)::

    python malaria_test.py multitask checkpoints/malaria/models/D_multitask.pt cell.png
    python malaria_test.py discriminator checkpoints/malaria/models/D.pt cell.png

Generator (writes PNG files: one per image, and a grid)::

    python malaria_test.py generator checkpoints/malaria/models/G.pt 16 --out outputs/malaria_test
    python malaria_test.py generator checkpoints/malaria/models/G.pt noise.npy     # (N, 100) or (100,)

GradCAM maps of the predicted stages, with the ``grad_cam`` you wrote in the notebook (taken from
the notebook's code; nothing else of it runs)::

    python malaria_test.py multitask checkpoints/malaria/models/D_multitask.pt cell.png --gradcam dcgan_malaria.ipynb

From Python: ``from malaria_test import test; test("multitask", "D.pt", "cell.png", grad_cam=grad_cam)``.
The model files are written by ``helpers.malaria.models.save_model`` (the notebook's save cell): each
holds your own network as a TorchScript program with its sizes, so neither the notebook nor a copy
of the architecture is needed to run it, and reading it unpickles no Python objects.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.checkpoints import CheckpointError
from helpers.malaria.data import STAGES
from helpers.malaria.gradcam import plot_gradcam
from helpers.malaria.models import ARCHITECTURES, load_model
from helpers.plotting import save_figure
from helpers.sampling import check_count, seeded_noise

ImageInput = str | os.PathLike | np.ndarray | torch.Tensor | int


def _read_image(image: str | os.PathLike | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, str]:
    """Images as (N, 3, H, W) float32 in [-1, 1], plus a description.

    * a path to an image file (PNG, JPEG, ...) or to a ``.npy`` array;
    * a numpy array, channels last: (H, W, 3) or (N, H, W, 3), uint8 in [0, 255] or float in [0, 1]
      (what PIL and matplotlib give);
    * a torch tensor, channels first: (3, H, W) or (N, 3, H, W) in [-1, 1] (what the lab's patches are).
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"No image file at {path}.")
        if path.suffix.lower() == ".npy":
            return _read_image(np.load(path))[0], str(path)
        with Image.open(path) as im:
            return _read_image(np.asarray(im.convert("RGB")))[0], str(path)
    if isinstance(image, np.ndarray):
        arr = image[None] if image.ndim == 3 else image
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"A numpy image must be (H, W, 3) or (N, H, W, 3), channels last; got {image.shape}.")
        x = torch.from_numpy(np.array(arr)).permute(0, 3, 1, 2).float()  # np.array copies: PIL's arrays are read-only
        x = x / 255.0 if image.dtype == np.uint8 else x  # -> [0, 1]
        return x * 2 - 1, f"array {tuple(image.shape)}"
    if isinstance(image, torch.Tensor):
        x = image[None] if image.dim() == 3 else image
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"A tensor image must be (3, H, W) or (N, 3, H, W) in [-1, 1]; got {tuple(image.shape)}.")
        return x.detach().float().cpu(), f"tensor {tuple(image.shape)}"
    raise TypeError(f"image must be a path, a numpy array or a tensor for a classifier, got {type(image).__name__}.")


def _noise(image: Any, latent_dim: int, seed: int) -> torch.Tensor:
    """Noise (N, latent_dim) from a count, a vector/matrix, or a ``.npy`` path."""
    if isinstance(image, (str, os.PathLike)) and str(image).strip().isdigit():
        image = int(str(image).strip())
    if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
        return seeded_noise(check_count(int(image)), latent_dim, seed, "cpu")
    if isinstance(image, (str, os.PathLike)):
        image = np.load(Path(image))
    z = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image).float()
    z = z[None] if z.dim() == 1 else z
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"The generator expects noise of shape (N, {latent_dim}) or ({latent_dim},), got {tuple(z.shape)}.")
    return z


def _to_png(x: torch.Tensor) -> Image.Image:
    """(3, H, W) in [-1, 1] -> RGB image."""
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr)  # (H, W, 3) uint8 -> RGB


def test(
    model_architecture: str,
    weights_path: str | os.PathLike,
    image: ImageInput = 16,
    out_dir: str | os.PathLike = "outputs/malaria_test",
    seed: int = 0,
    device: str = "cpu",
    grad_cam: Callable[..., torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Load a saved Lab 3 model and run it once.

    Args:
        model_architecture: ``"generator"``, ``"discriminator"`` or ``"multitask"``; it must be
            what the file holds.
        weights_path: a file written by ``helpers.malaria.models.save_model``.
        image: for a discriminator, one cell patch or a batch (a path, a numpy array channels last,
            or a tensor channels first in [-1, 1]; resized to the model's patch size). For the
            generator, a number of images, or noise (N, latent_dim) / (latent_dim,) as an array,
            a tensor or a ``.npy`` path.
        out_dir: where the generator's PNG files and the GradCAM figure go.
        seed: noise seed when ``image`` is a count (same seed, same images).
        device: where to run.
        grad_cam: multi-task model only: the notebook's ``grad_cam(model, layer, x, target, forward)``;
            when given, the map of each image's most probable stage is drawn to ``out_dir/gradcam.png``.

    Returns:
        Generator: ``{"images": (N, 3, S, S) in [-1, 1], "paths": [Path, ...]}``.
        Discriminators: ``{"scores": (N,), "probabilities": (N, 4) or None}``; probabilities
        are per stage in ``STAGES`` order, independent (multi-label), each in [0, 1]. With
        ``grad_cam`` also ``"cams"`` (N, S, S) in [0, 1] and ``"gradcam_path"``.
    """
    if grad_cam is not None and model_architecture.strip().lower() != "multitask":
        raise ValueError("GradCAM explains the stage head: use grad_cam with a multitask model file.")
    model = load_model(weights_path, model_architecture, map_location=device)
    cfg = model.config
    print(f"{model_architecture} model from {weights_path} ({cfg.image_size}x{cfg.image_size} patches)")
    if model_architecture.strip().lower() == "generator":
        z = _noise(image, cfg.latent_dim, seed).to(device)
        with torch.no_grad():
            images = model(z).cpu()  # (N, 3, S, S) in [-1, 1]
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, x in enumerate(images):
            paths.append(out / f"generated_{i:03d}.png")
            _to_png(x).save(paths[-1])
        ncol = int(np.ceil(np.sqrt(len(images))))
        grid = torch.full((3, ncol * (cfg.image_size + 2), ncol * (cfg.image_size + 2)), 1.0)  # white gaps
        for i, x in enumerate(images):
            r, c = divmod(i, ncol)
            grid[:, r * (cfg.image_size + 2) + 1: r * (cfg.image_size + 2) + 1 + cfg.image_size,
                 c * (cfg.image_size + 2) + 1: c * (cfg.image_size + 2) + 1 + cfg.image_size] = x
        _to_png(grid).save(out / "grid.png")
        print(f"wrote {len(paths)} images ({cfg.image_size}x{cfg.image_size}, PNG) and grid.png to {out}")
        return {"images": images, "paths": paths}

    x, what = _read_image(image)
    if max(x.shape[-2:]) > 4 * cfg.image_size:
        print(f"note: the image is {x.shape[-1]}x{x.shape[-2]} px; the model expects one cell patch "
              f"({cfg.image_size} px; cut one with helpers.malaria.data.extract_patches). Resizing anyway.")
    if tuple(x.shape[-2:]) != (cfg.image_size, cfg.image_size):
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        if model_architecture.strip().lower() == "multitask":
            scores, probs = model(x.to(device))  # (N,), (N, 4)
            probs = probs.cpu()
        else:
            scores, probs = model(x.to(device)), None
    scores = scores.cpu()
    print(f"image: {what}")
    for n in range(x.shape[0]):
        if x.shape[0] > 1:
            print(f"[{n}]")
        if probs is not None:
            for stage, p in zip(STAGES, probs[n].tolist()):
                print(f"  {stage:<12} {p:.4f}")
        print(f"  {'score':<12} {scores[n].item():.4f}   (LSGAN realness: about 1 real, 0 fake)")
    result = {"scores": scores, "probabilities": probs}
    if grad_cam is not None:
        top = probs.argmax(dim=1)  # (N,) the most probable stage of each image
        cams = grad_cam(model, model.cam_layer, x.to(device), top.to(device), forward=model.classify_logits).cpu()
        fig = plot_gradcam(x, cams, map_titles=["GradCAM of the top stage"],
                           row_titles=[f"{STAGES[k]} p={probs[n, k]:.2f}" for n, k in enumerate(top.tolist())],
                           cell_size=2.2)
        result.update(cams=cams, gradcam_path=save_figure(fig, Path(out_dir) / "gradcam.png"))
        plt.close(fig)
        print(f"wrote the GradCAM maps of the top stages to {result['gradcam_path']}")
    return result


test.__test__ = False  # this file matches pytest's *_test.py pattern; test() is not a pytest test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a saved Lab 3 malaria model on an image or on noise.")
    parser.add_argument("model_architecture", choices=ARCHITECTURES, help="what the weights file holds")
    parser.add_argument("weights_path", help="file written by helpers.malaria.models.save_model")
    parser.add_argument("image", nargs="?", default=None,
                        help="discriminators: image file or .npy array (required); "
                             "generator: a count or a .npy noise file (default 16)")
    parser.add_argument("--out", default="outputs/malaria_test", help="folder for the generator's PNG files and the GradCAM figure")
    parser.add_argument("--seed", type=int, default=0, help="noise seed when image is a count")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    parser.add_argument("--gradcam", metavar="NOTEBOOK", default=None,
                        help="multitask: draw GradCAM maps with the grad_cam function of this notebook "
                             "(e.g. dcgan_malaria.ipynb) into the --out folder")
    args = parser.parse_args(argv)
    if args.image is None:
        if args.model_architecture != "generator":
            parser.error(f"{args.model_architecture} needs an image: give the path of a cell patch "
                         f"(PNG/JPG) or a .npy array after the weights file.")
        args.image = "16"
    try:
        grad_cam = None
        if args.gradcam is not None:
            if not Path(args.gradcam).is_file():
                raise FileNotFoundError(f"No notebook at {args.gradcam} (for --gradcam).")
            from helpers.course.notebook_code import load_definitions  # the notebook's defs only: no training

            grad_cam = getattr(load_definitions(args.gradcam), "grad_cam", None)
            if grad_cam is None:
                raise ValueError(f"{args.gradcam} defines no grad_cam function.")
        test(args.model_architecture, args.weights_path, args.image, args.out, args.seed, args.device, grad_cam)
    except (CheckpointError, FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
