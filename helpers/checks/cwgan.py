"""Instant checks of the conditional WGAN-GP lab (lab8_cwgan.ipynb)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from helpers.checks.contract import CWGAN, check_contract
from helpers.checks.graded import Defined, GradedCheck
from helpers.checks.common import (CheckFailed, _call_as_declared, _carries_grad, _compare, _fail, _fixed_logits, _ok,
                                   check_train_step, expected)

__all__ = ['CheckFailed', 'check_conditioning', 'check_critic', 'check_cwgan_generator', 'check_generate_conditional',
           'check_gradient_penalty', 'check_train_step', 'check_wgan_losses']


# ----------------------------------------------------------------------------- cwgan lab
# Checks for lab8_cwgan.ipynb (conditional WGAN-GP on Fashion-MNIST). Expected numbers come
# from helpers/checks/answers/cwgan.json; the fixed inputs below are plain formulas, nothing secret.
CWGAN_NUM_CLASSES = 10


def _fixed_cwgan_batch(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deterministic real/fake images (B, 1, 28, 28) in [-1, 1], labels (B,) and epsilon (B, 1, 1, 1)."""
    grid = torch.arange(batch * 28 * 28, dtype=torch.float32).view(batch, 1, 28, 28)
    x_real = torch.sin(0.05 * grid)
    x_fake = 0.8 * torch.cos(0.031 * grid + 1.0)
    y = torch.tensor([7, 0, 3, 9, 5, 1, 8, 2][:batch], dtype=torch.int64)
    epsilon = torch.linspace(0.15, 0.85, batch).view(batch, 1, 1, 1)
    return x_real, x_fake, y, epsilon


class _FixedCritic(nn.Module):
    """A small critic with a closed-form input gradient: D(x, y) = w_y . x + a/2 * ||x||^2.

    Its gradient w_y + a * x depends on where it is taken and on the label, so a penalty taken at
    the wrong place (real images, fakes) or with the wrong labels gives a different number.
    """

    def __init__(self) -> None:
        super().__init__()
        k = torch.arange(CWGAN_NUM_CLASSES * 28 * 28, dtype=torch.float32).view(CWGAN_NUM_CLASSES, 1, 28, 28)
        self.w = nn.Parameter(0.02 * torch.sin(0.37 * k))     # (10, 1, 28, 28), one weight image per class
        self.a = nn.Parameter(torch.tensor(0.03))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.w[y] * x).flatten(1).sum(1) + 0.5 * self.a * (x ** 2).flatten(1).sum(1)  # (B,)


def _build_cwgan_model(cls: Callable[..., nn.Module], what: str, *args) -> nn.Module:
    torch.manual_seed(0)
    try:
        return cls(*args)
    except NotImplementedError:
        raise
    except Exception as err:
        _fail(f"{what} could not be built: {type(err).__name__}: {err}",
              "the constructor takes its arguments as in the TODO (default widths must work).")


def check_conditioning(generator_input: Callable, critic_input: Callable) -> None:
    """How the class enters each network: a one-hot vector for G, ten label planes for D."""
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = torch.tensor([0, 3, 7, 9])
    one_hot = torch.zeros(4, CWGAN_NUM_CLASSES)
    one_hot[torch.arange(4), y] = 1.0
    g_in = generator_input(z, y)
    if not torch.is_tensor(g_in) or tuple(g_in.shape) != (4, 110):
        _fail(f"generator_input(z, y) for z (4, 100) has shape {tuple(getattr(g_in, 'shape', ()))}, expected (4, 110).",
              "concatenate the noise and the one-hot label along dim 1: 100 + 10 = 110 numbers per image.")
    if not g_in.is_floating_point() or not torch.equal(g_in[:, :100], z):
        _fail("generator_input(z, y)[:, :100] is not the noise z.", "put z first, then the one-hot label.")
    if not torch.equal(g_in[:, 100:], one_hot):
        _fail(f"generator_input(z, y)[:, 100:] is not the one-hot label: for y = {y.tolist()} the rows are "
              f"{g_in[:, 100:].tolist()}.", "use F.one_hot(y, 10).float(): a 1 at position y, 0 elsewhere.")
    d_in = critic_input(x, y)
    if not torch.is_tensor(d_in) or tuple(d_in.shape) != (4, 11, 28, 28):
        _fail(f"critic_input(x, y) for x (4, 1, 28, 28) has shape {tuple(getattr(d_in, 'shape', ()))}, expected (4, 11, 28, 28).",
              "concatenate the image and ten label planes of 28x28 along the channel dimension.")
    if not torch.equal(d_in[:, :1], x):
        _fail("critic_input(x, y)[:, 0] is not the image.", "put the image first (channel 0), then the ten label planes.")
    planes = d_in[:, 1:]
    want = one_hot.view(4, CWGAN_NUM_CLASSES, 1, 1).expand(4, CWGAN_NUM_CLASSES, 28, 28)
    if not torch.equal(planes, want):
        means = planes.mean(dim=(2, 3))
        _fail(f"the label planes are wrong: their mean values per image are {means.tolist()}, expected the one-hot "
              f"rows {one_hot.tolist()}.", "plane c (channel 1 + c) is all ones for class c, the other nine all zeros.")
    _ok("conditioning")


def check_cwgan_generator(generator_cls: Callable[..., nn.Module], latent_dim: int = 100) -> None:
    """G(z, y): shapes, output range, a 110-D input and an output that depends on the class."""
    G = _build_cwgan_model(generator_cls, f"Generator({latent_dim})", latent_dim)
    z = torch.randn(8, latent_dim)
    y = torch.arange(8) % CWGAN_NUM_CLASSES
    try:
        x = G(z, y)
    except NotImplementedError:
        raise
    except Exception as err:
        _fail(f"G(z, y) with z (8, {latent_dim}) and y (8,) failed: {type(err).__name__}: {err}",
              "forward(z, y) starts with generator_input(z, y), a (B, 110) tensor, then follows the shapes in the TODO.")
    if tuple(x.shape) != (8, 1, 28, 28):
        _fail(f"G(z, y) has shape {tuple(x.shape)}, expected (8, 1, 28, 28).",
              "two stride-2 transposed convolutions take 7x7 to 14x14 to 28x28 (kernel 4, padding 1).")
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        _fail(f"G(z, y) has values in [{x.min():.3f}, {x.max():.3f}], outside [-1, 1].", "end the generator with nn.Tanh().")
    first = next((m for m in G.modules() if isinstance(m, nn.Linear)), None)
    if first is None or first.in_features != latent_dim + CWGAN_NUM_CLASSES:
        got = None if first is None else first.in_features
        _fail(f"the generator's first linear layer takes {got} inputs, expected {latent_dim + CWGAN_NUM_CLASSES}.",
              "the input is the noise extended with the one-hot label: latent_dim + 10.")
    G.eval()
    with torch.no_grad():
        a, b = G(z, torch.full((8,), 2)), G(z, torch.full((8,), 7))
    if torch.allclose(a, b):
        _fail("G(z, y) gives the same images for class 2 and class 7.", "feed generator_input(z, y), not z alone, to the network.")
    _ok("conditional generator")


def check_critic(critic_cls: Callable[..., nn.Module]) -> None:
    """D(x, y): one score per image, 11 input planes, no BatchNorm or sigmoid, per-sample scores."""
    D = _build_cwgan_model(critic_cls, "Critic()")
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    y = torch.arange(8) % CWGAN_NUM_CLASSES
    try:
        out = D(x, y)
    except NotImplementedError:
        raise
    except Exception as err:
        _fail(f"D(x, y) with x (8, 1, 28, 28) and y (8,) failed: {type(err).__name__}: {err}",
              "forward(x, y) starts with critic_input(x, y), a (B, 11, 28, 28) tensor.")
    if tuple(out.shape) != (8,):
        _fail(f"D(x, y) has shape {tuple(out.shape)} for 8 images, expected (8,): one score per image.",
              "end with a single nn.Linear(..., 1) and flatten its output with .view(-1).")
    bn = [type(m).__name__ for m in D.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm))]
    if bn:
        _fail(f"the critic contains {', '.join(bn)}.",
              "the gradient penalty is per sample, and BatchNorm mixes the samples of a batch: use nn.LayerNorm or no normalisation.")
    if any(isinstance(m, nn.Sigmoid) for m in D.modules()):
        _fail("the critic contains a Sigmoid.", "a Wasserstein critic outputs an unbounded real score: no sigmoid.")
    first = next((m for m in D.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or first.in_channels != 1 + CWGAN_NUM_CLASSES:
        got = None if first is None else first.in_channels
        _fail(f"the critic's first convolution takes {got} input channels, expected 11.",
              "the input is the image plus ten label planes: 1 + 10 channels.")
    with torch.no_grad():
        other = x.clone()
        other[1:] = -other[1:]
        if not torch.allclose(D(other, y)[0], out[0].detach(), atol=1e-5):
            _fail("the score of image 0 changes when the other images of the batch change.",
                  "each image must be scored on its own (no BatchNorm, no batch statistics).")
        if torch.allclose(D(x, (y + 3) % CWGAN_NUM_CLASSES), out.detach()):
            _fail("D(x, y) does not depend on the label y.", "feed critic_input(x, y), not x alone, to the network.")
    _ok("critic")


def check_wgan_losses(d_loss: Callable, g_loss: Callable) -> None:
    """The two Wasserstein losses on fixed scores against the committed values.

    Args:
        d_loss: the notebook's ``get_WLoss_discriminator(score_fake, score_real)`` (the handout's name and order,
            fake first), called with its arguments by name.
        g_loss: the notebook's ``get_WLoss_generator(score_fake)``.
    """
    exp = expected("cwgan")["losses"]
    real, fake = _fixed_logits(requires_grad=True)
    lg = _call_as_declared(g_loss, "get_WLoss_generator", score_fake=fake)
    _compare("get_WLoss_generator(score_fake)", lg, exp["g_loss"],
             "G maximises the critic's score of its fakes, so it minimises -mean(score_fake).")
    ld = _call_as_declared(d_loss, "get_WLoss_discriminator", score_fake=fake, score_real=real)
    _compare("get_WLoss_discriminator(score_fake, score_real)", ld, exp["d_loss"],
             "the critic minimises mean(score_fake) - mean(score_real); mind the argument order (fake first) "
             "and use raw scores (no sigmoid, no log).")
    try:
        ld_short = d_loss(score_fake=fake[:4], score_real=real)
    except Exception as err:  # noqa: BLE001 - say what went wrong
        _fail(f"get_WLoss_discriminator failed for 4 fake and 6 real scores: {type(err).__name__}: {err}",
              "average each batch on its own, mean(score_fake) - mean(score_real), rather than mean(score_fake - score_real).")
    _compare("get_WLoss_discriminator(score_fake[:4], score_real)", ld_short, exp["d_loss_short"],
             "average each batch on its own: mean(score_fake) - mean(score_real).")
    if not _carries_grad(ld, lg):
        _fail("a loss does not carry gradients back to the scores.", "compute it with torch operations, no .item()/.detach()/numpy.")
    _ok("Wasserstein losses")


def check_gradient_penalty(gradient_penalty: Callable) -> None:
    """get_gradient_regularisation on a critic with a known input gradient, fixed interpolation weights."""
    exp = expected("cwgan")["gradient_penalty"]
    critic = _FixedCritic()
    x_real, x_fake, y, epsilon = _fixed_cwgan_batch()
    try:
        gp = _call_as_declared(gradient_penalty, "get_gradient_regularisation", critic=critic, x_real=x_real,
                               x_fake=x_fake, y=y, epsilon=epsilon)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:  # noqa: BLE001 - say what went wrong
        _fail(f"get_gradient_regularisation(critic, x_real, x_fake, y, epsilon=...) failed: {type(err).__name__}: {err}",
              "keep the signature of the TODO; epsilon has shape (B, 1, 1, 1).")
    _compare("get_gradient_regularisation(...) with lambda_gp = 10 (the default)", gp, exp["value"],
             "interpolate x_hat = epsilon * x_real + (1 - epsilon) * x_fake with the epsilon given, take "
             "get_grad_function(critic, x_hat, y), its L2 norm per image (flatten(1).norm(2, dim=1)), then "
             "lambda_gp * mean((norm - 1) ** 2).", rtol=1e-4, atol=1e-5)
    gp1 = gradient_penalty(critic=critic, x_real=x_real, x_fake=x_fake, y=y, lambda_gp=1.0, epsilon=epsilon)
    _compare("get_gradient_regularisation(..., lambda_gp=1.0)", gp1, exp["value"] / 10.0,
             "multiply by the lambda_gp argument (default 10), not by a constant.", rtol=1e-4, atol=1e-6)
    if not _carries_grad(gp):
        _fail("the penalty carries no gradient back to the critic's weights.",
              "compute the input gradient with get_grad_function (it uses create_graph=True), and no .detach() after it.")
    critic.zero_grad()
    gp.backward()
    _compare("d(penalty)/d(critic parameter a)", critic.a.grad, exp["grad_a"],
             "the critic's weights must receive the penalty's gradient (double backward through create_graph=True).",
             rtol=1e-3, atol=1e-5)
    _ok("gradient penalty")


def check_generate_conditional(generate: Callable, class_names: tuple[str, ...], model: nn.Module | None = None) -> None:
    """The ``generate(n, c)`` contract (helpers.checks.contract): float32 (n, 28, 28) in [0, 1] for every class,
    by index and by name in any case, seeds, bad counts and classes; ``model``'s mode restored when given."""
    check_contract(generate, replace(CWGAN, classes=tuple(class_names)), name="generate(n, c)", model=model)


# ----------------------------------------------------------------------------- what the grader calls
def _grade_train_step(names: Defined) -> None:
    cfg = names["cfg"]
    n = cfg.n_critic * cfg.batch_size
    check_train_step(names["train_step"], names["G"], names["D"], names["opt_G"], names["opt_D"],
                     names["x_train"][:n], names["y_train"][:n])


GRADED = [
    GradedCheck("cwgan.conditioning", "TODO 1: how the class enters the networks",
                lambda names: check_conditioning(names["generator_input"], names["critic_input"]),
                check="check_conditioning"),
    GradedCheck("cwgan.generator", "TODO 2: the conditional generator",
                lambda names: check_cwgan_generator(names["Generator"], latent_dim=names["cfg"].latent_dim),
                check="check_cwgan_generator"),
    GradedCheck("cwgan.critic", "TODO 3: the critic", lambda names: check_critic(names["Critic"]), check="check_critic"),
    GradedCheck("cwgan.losses", "TODO 4: the Wasserstein losses",
                lambda names: check_wgan_losses(d_loss=names["get_WLoss_discriminator"],
                                                g_loss=names["get_WLoss_generator"]),
                check="check_wgan_losses"),
    GradedCheck("cwgan.gradient_penalty", "TODO 5: the gradient penalty",
                lambda names: check_gradient_penalty(names["get_gradient_regularisation"]),
                check="check_gradient_penalty"),
    GradedCheck("cwgan.train_step", "TODO 6-7: optimizers and the training step", _grade_train_step,
                check="check_train_step"),
]

# The notebook's call of the generate contract (the row "cwgan.generate" of POINTS).
GENERATE_CHECK = "check_generate_conditional"


def graded_generate(names: Defined) -> dict:
    """What the grader checks the generate contract with: the function and the network it samples from."""
    return {"generate": names["generate"], "model": names.get("G_ema")}
