"""Instant checks of the vanilla DCGAN lab (lab8_vanilla.ipynb)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from helpers.checks.contract import MALARIA, VANILLA, check_contract
from helpers.checks.graded import Defined, GradedCheck
from helpers.checks.common import (CheckFailed, _call_as_declared, _carries_grad, _compare, _fail, _fixed_logits, _ok,
                                   check_train_step, expected)

__all__ = ['CheckFailed', 'check_discriminator', 'check_generate', 'check_generator', 'check_train_step', 'check_vanilla_losses']


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
        with torch.no_grad():
            x = G(z)
    except Exception as err:
        _fail(f"G(z) with z of shape (8, {latent_dim}) failed: {type(err).__name__}: {err}",
              "follow the shapes in the TODO: linear -> reshape (B, 4w, 7, 7) -> transposed convs -> 3x3 conv.")
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
    order = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    convs = [i for i, m in enumerate(order) if isinstance(m, nn.Conv2d)]
    if any(isinstance(m, nn.BatchNorm2d) for m in order[:convs[1]]):
        _fail("the discriminator has BatchNorm on its input layer (before or right after the first convolution).",
              "DCGAN applies no BatchNorm to D's input layer: Conv2d -> LeakyReLU(0.2), BatchNorm from the second layer on.")
    # A sigmoid written as torch.sigmoid in forward is no module: shift the last linear layer's output
    # far below 0; logits follow it, probabilities stay in (0, 1).
    last_linear = [m for m in D.modules() if isinstance(m, nn.Linear)][-1]
    hook = last_linear.register_forward_hook(lambda module, inputs, output: output - 50.0)
    try:
        with torch.no_grad():
            shifted = D(x)
    finally:
        hook.remove()
    if bool((shifted > -10).all()):
        _fail("D(x) returns probabilities (or squashed values), but forward must return logits.",
              "remove the sigmoid from forward (torch.sigmoid, F.sigmoid or .sigmoid()); the loss uses "
              "binary_cross_entropy_with_logits, and probability() applies the sigmoid.")
    if hasattr(D, "probability"):
        p = D.probability(x)
        if not torch.allclose(p, torch.sigmoid(out), atol=1e-6):
            _fail("D.probability(x) is not sigmoid(D(x)).", "probability() applies the sigmoid once to the logits.")
    _ok("discriminator")


def check_vanilla_losses(d_loss: Callable, g_loss: Callable) -> None:
    """BCE losses on fixed logits against the committed values, also on large logits.

    Args:
        d_loss: the notebook's ``d_loss_bce(logits_real, logits_fake)``, called with its arguments by name.
        g_loss: the notebook's ``g_loss_bce(logits_fake)``.
    """
    _check_bce_losses(d_loss, g_loss, expected("vanilla")["losses"])
    _ok("BCE losses")


def _check_bce_losses(d_loss: Callable, g_loss: Callable, exp: dict) -> None:
    """The BCE loss checks against one lab's stored values ``exp`` (vanilla and fc share the formulas)."""
    real, fake = _fixed_logits(requires_grad=True)
    ld = _call_as_declared(d_loss, "d_loss_bce", logits_real=real, logits_fake=fake)
    _compare("d_loss_bce(logits_real, logits_fake)", ld, exp["d_loss"],
             "BCE with logits of the real logits against 1 plus the fake logits against 0; "
             "do not apply a sigmoid first (the *_with_logits functions do it), and check the labels.")
    lg = _call_as_declared(g_loss, "g_loss_bce", logits_fake=fake)
    _compare("g_loss_bce(logits_fake)", lg, exp["g_loss"],
             "the non-saturating loss is BCE of the fake logits against label 1 (not 0, and not -d_loss).")
    if not _carries_grad(ld, lg):
        _fail("a loss does not carry gradients back to the logits.", "compute it with torch operations, no .item()/.detach()/numpy.")
    # Large logits, where sigmoid + BCELoss saturates (sigmoid(40) == 1.0 in float32, log 0 clamped to -100).
    real = torch.tensor([40.0, -20.0, 3.0, -0.5])
    fake = torch.tensor([-120.0, 40.0, 0.5, -3.0])
    hint = ("applying a sigmoid and then binary_cross_entropy is exact on paper but saturates in float32; "
            "use binary_cross_entropy_with_logits on the logits themselves.")
    _compare("d_loss_bce on large logits", d_loss(logits_real=real, logits_fake=fake), exp["d_loss_large"], hint)
    _compare("g_loss_bce on large logits", g_loss(logits_fake=fake), exp["g_loss_large"], hint)


def check_generate(generate: Callable, shape: tuple[int, ...] = (28, 28), model: nn.Module | None = None,
                   **kwargs) -> None:
    """The ``generate`` contract (helpers.checks.contract): float32 (n, *shape) in [0, 1], seeds, bad arguments.

    Args:
        generate: the notebook's ``generate(n, seed=None, ...)``.
        shape: one image's shape: (28, 28) here, (3, S, S) in the malaria lab.
        model: the network generate samples from; when given, its train/eval mode must survive a call.
        **kwargs: passed to every call (the malaria lab's ``generator=``).
    """
    check_contract(generate, MALARIA if len(shape) == 3 else VANILLA, shape=shape, model=model, **kwargs)


# ----------------------------------------------------------------------------- what the grader calls
def _grade_train_step(names: Defined) -> None:
    batch = names["x_train"][:names["cfg"].batch_size]
    check_train_step(names["train_step"], names["G"], names["D"], names["opt_G"], names["opt_D"], batch)


GRADED = [
    GradedCheck("vanilla.generator", "TODO 1: the generator",
                lambda names: check_generator(names["Generator"], latent_dim=names["cfg"].latent_dim),
                check="check_generator"),
    GradedCheck("vanilla.discriminator", "TODO 2: the discriminator",
                lambda names: check_discriminator(names["Discriminator"]), check="check_discriminator"),
    GradedCheck("vanilla.losses", "TODO 3: the BCE losses",
                lambda names: check_vanilla_losses(d_loss=names["d_loss_bce"], g_loss=names["g_loss_bce"]),
                check="check_vanilla_losses"),
    GradedCheck("vanilla.train_step", "TODO 4-5: optimizers and the training step", _grade_train_step,
                check="check_train_step"),
]

# The notebook's call of the generate contract (the row "vanilla.generate" of POINTS).
GENERATE_CHECK = "check_generate"


def graded_generate(names: Defined) -> dict:
    """What the grader checks the generate contract with: the function and the network it samples from."""
    return {"generate": names["generate"], "model": names.get("G_ema")}
