"""Instant checks, called in the cell right after each TODO.

A check that fails raises :class:`CheckFailed` saying which quantity differed, by how much,
and a hint; it never just prints. Expected values come from ``helpers/check_data/*.json``
(generated once from the solution notebooks and committed), not from reference code that a
student could read and copy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

CHECK_DATA = Path(__file__).resolve().parent / "check_data"


class CheckFailed(AssertionError):
    """Your code does not do what the TODO asks; the message says what differed."""


def _ok(name: str) -> None:
    print(f"✓ {name}: passed")


def _fail(what: str, hint: str) -> None:
    raise CheckFailed(f"{what}\nHint: {hint}")


@lru_cache(maxsize=None)
def expected(lab: str) -> dict:
    """The committed expected values of one lab's checks."""
    path = CHECK_DATA / f"{lab}.json"
    if not path.is_file():
        raise FileNotFoundError(f"Missing {path}: the course files are incomplete; fetch the repository again.")
    return json.loads(path.read_text())


def _compare(name: str, got: torch.Tensor | float, want: float, hint: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    if torch.is_tensor(got):
        if got.numel() != 1:
            _fail(f"{name} should be a single number (a scalar tensor), got shape {tuple(got.shape)}.",
                  "average over the batch (e.g. .mean()) instead of returning one value per image.")
        got = float(got.detach())
    if not np.isfinite(got) or abs(got - want) > atol + rtol * abs(want):
        _fail(f"{name} is {got:.6f} but should be {want:.6f} (off by {got - want:+.6f}).", hint)


def _fixed_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed logits every loss check uses (plain numbers, nothing secret)."""
    real = torch.tensor([2.0, -0.5, 1.25, 0.0, 3.0, -1.5], dtype=torch.float32)
    fake = torch.tensor([-1.0, 0.75, -2.5, 0.5, -0.25, 1.5], dtype=torch.float32)
    return real, fake


# ----------------------------------------------------------------------------- vanilla lab
def check_generator(generator_cls: Callable[..., nn.Module], latent_dim: int = 100, image_shape=(1, 28, 28)) -> None:
    """Shapes, output range and the DCGAN rules for the vanilla generator class."""
    torch.manual_seed(0)
    try:
        G = generator_cls(latent_dim)
    except NotImplementedError:
        raise
    except Exception as err:
        _fail(f"Generator({latent_dim}) could not be built: {type(err).__name__}: {err}",
              "the constructor takes the latent dimension as its first argument.")
    z = torch.randn(8, latent_dim)
    try:
        x = G(z)
    except Exception as err:
        _fail(f"G(z) with z of shape (8, {latent_dim}) failed: {type(err).__name__}: {err}",
              "follow the shapes in the TODO: linear -> reshape (B, 2w, 7, 7) -> transposed convs.")
    if tuple(x.shape) != (8, *image_shape):
        _fail(f"G(z) has shape {tuple(x.shape)}, expected {(8, *image_shape)}.",
              "two stride-2 transposed convolutions take 7x7 to 14x14 to 28x28 (kernel 4, padding 1).")
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        _fail(f"G(z) has values in [{x.min():.3f}, {x.max():.3f}], outside [-1, 1].", "end the generator with nn.Tanh().")
    if float(x.std()) < 1e-4:
        _fail("G(z) gives the same value everywhere.", "check that the noise actually flows through the layers.")
    n_convt = sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    if not 2 <= n_convt <= 3:
        _fail(f"the generator has {n_convt} transposed convolutions; the lab asks for 2-3.", "use strided transposed convolutions to upsample.")
    if not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in G.modules()):
        _fail("the generator has no BatchNorm.", "DCGAN uses BatchNorm in G everywhere except the output layer.")
    if any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Upsample)) for m in G.modules()):
        _fail("the generator uses pooling/upsampling layers.", "DCGAN upsamples with strided transposed convolutions only.")
    _ok("generator")


def check_discriminator(discriminator_cls: Callable[..., nn.Module], image_shape=(1, 28, 28)) -> None:
    """Shapes (one logit per image) and the DCGAN rules for the vanilla discriminator class."""
    torch.manual_seed(0)
    D = discriminator_cls()
    x = torch.rand(8, *image_shape) * 2 - 1
    out = D(x)
    if tuple(out.shape) != (8,):
        _fail(f"D(x) has shape {tuple(out.shape)} for 8 images, expected (8,): one logit per image.",
              "end with a single nn.Linear(..., 1) and flatten its output with .view(-1).")
    if any(isinstance(m, nn.Sigmoid) for m in D.modules()):
        _fail("the discriminator contains a Sigmoid, but forward must return logits.",
              "remove the sigmoid; the loss uses binary_cross_entropy_with_logits, and probability() applies it.")
    n_conv = sum(isinstance(m, nn.Conv2d) for m in D.modules())
    n_lin = sum(isinstance(m, nn.Linear) for m in D.modules())
    if not 3 <= n_conv <= 4 or n_lin != 1:
        _fail(f"the discriminator has {n_conv} convolutions and {n_lin} linear layers; the lab asks for 3-4 and 1.",
              "three strided convolutions then one linear layer.")
    if not any(isinstance(m, nn.LeakyReLU) and abs(m.negative_slope - 0.2) < 1e-9 for m in D.modules()):
        _fail("the discriminator has no LeakyReLU(0.2).", "DCGAN uses LeakyReLU with slope 0.2 in D.")
    first = next(m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))
    if isinstance(first, nn.BatchNorm2d):
        _fail("the discriminator starts with BatchNorm.", "DCGAN applies no BatchNorm to D's input layer.")
    if hasattr(D, "probability"):
        p = D.probability(x)
        if not torch.allclose(p, torch.sigmoid(out), atol=1e-6):
            _fail("D.probability(x) is not sigmoid(D(x)).", "probability() applies the sigmoid once to the logits.")
    _ok("discriminator")


def check_vanilla_losses(d_loss: Callable, g_loss: Callable) -> None:
    """BCE losses on fixed logits against the committed values."""
    exp = expected("vanilla")["losses"]
    real, fake = _fixed_logits()
    real.requires_grad_(True)
    fake.requires_grad_(True)
    ld = d_loss(real, fake)
    _compare("d_loss_bce(logits_real, logits_fake)", ld, exp["d_loss"],
             "BCE with logits of the real logits against 1 plus the fake logits against 0; "
             "do not apply a sigmoid first (the *_with_logits functions do it), and check the labels.")
    lg = g_loss(fake)
    _compare("g_loss_bce(logits_fake)", lg, exp["g_loss"],
             "the non-saturating loss is BCE of the fake logits against label 1 (not 0, and not -d_loss).")
    if not ld.requires_grad or not lg.requires_grad:
        _fail("a loss does not carry gradients back to the logits.", "compute it with torch operations, no .item()/.detach()/numpy.")
    _ok("BCE losses")


def check_generate(generate: Callable, shape: tuple[int, int] = (28, 28), **kwargs) -> None:
    """The ``generate`` contract: float32 (n, H, W) in [0, 1], seeds, bad arguments."""
    a = generate(5, seed=0, **kwargs)
    if not isinstance(a, np.ndarray):
        _fail(f"generate returned {type(a).__name__}, expected a numpy array.", "finish with to_unit_images(x) (or .cpu().numpy()).")
    if a.shape != (5, *shape) or a.dtype != np.float32:
        _fail(f"generate(5) returned shape {a.shape} and dtype {a.dtype}, expected {(5, *shape)} float32.",
              "drop the channel axis and convert to float32.")
    if a.min() < 0 or a.max() > 1:
        _fail(f"generate returned values in [{a.min():.3f}, {a.max():.3f}], expected [0, 1].",
              "map the tanh output from [-1, 1] to [0, 1] with (x + 1) / 2.")
    b = generate(5, seed=0, **kwargs)
    if not np.array_equal(a, b):
        _fail("generate(5, seed=0) gave different images on two calls.",
              "draw the noise from the seed (seeded_noise) and use eval mode so BatchNorm does not use batch statistics.")
    for bad, err in ((0, ValueError), (-3, ValueError), (2.5, TypeError), ("4", TypeError)):
        try:
            generate(bad, **kwargs)
        except err:
            continue
        except Exception as other:  # noqa: BLE001 - report what was raised instead
            _fail(f"generate({bad!r}) raised {type(other).__name__}, expected {err.__name__}.", "validate n with check_count(n) first.")
        _fail(f"generate({bad!r}) did not raise {err.__name__}.", "validate n with check_count(n) first.")
    _ok("generate")
