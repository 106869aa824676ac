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


def _carries_grad(*values: object) -> bool:
    """True when every value is a tensor still attached to the autograd graph."""
    return all(torch.is_tensor(v) and v.requires_grad for v in values)


def _fixed_logits(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed logits every loss check uses (plain numbers, nothing secret).

    With ``requires_grad`` the checks can tell whether a loss still carries gradients.
    """
    real = torch.tensor([2.0, -0.5, 1.25, 0.0, 3.0, -1.5], dtype=torch.float32, requires_grad=requires_grad)
    fake = torch.tensor([-1.0, 0.75, -2.5, 0.5, -0.25, 1.5], dtype=torch.float32, requires_grad=requires_grad)
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
    """BCE losses on fixed logits against the committed values, also on large logits."""
    exp = expected("vanilla")["losses"]
    real, fake = _fixed_logits(requires_grad=True)
    ld = d_loss(real, fake)
    _compare("d_loss_bce(logits_real, logits_fake)", ld, exp["d_loss"],
             "BCE with logits of the real logits against 1 plus the fake logits against 0; "
             "do not apply a sigmoid first (the *_with_logits functions do it), and check the labels.")
    lg = g_loss(fake)
    _compare("g_loss_bce(logits_fake)", lg, exp["g_loss"],
             "the non-saturating loss is BCE of the fake logits against label 1 (not 0, and not -d_loss).")
    if not _carries_grad(ld, lg):
        _fail("a loss does not carry gradients back to the logits.", "compute it with torch operations, no .item()/.detach()/numpy.")
    # Large logits, where sigmoid + BCELoss saturates (sigmoid(40) == 1.0 in float32, log 0 clamped to -100).
    real = torch.tensor([40.0, -20.0, 3.0, -0.5])
    fake = torch.tensor([-120.0, 40.0, 0.5, -3.0])
    hint = ("applying a sigmoid and then binary_cross_entropy is exact on paper but saturates in float32; "
            "use binary_cross_entropy_with_logits on the logits themselves.")
    _compare("d_loss_bce on large logits", d_loss(real, fake), exp["d_loss_large"], hint)
    _compare("g_loss_bce on large logits", g_loss(fake), exp["g_loss_large"], hint)
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
    if np.array_equal(a, generate(5, seed=1, **kwargs)):
        _fail("generate(5, seed=0) and generate(5, seed=1) gave the same images: the seed is ignored.",
              "draw the noise from the seed argument: seeded_noise(n, latent_dim, seed, device).")
    for bad, err in ((0, ValueError), (-3, ValueError), (2.5, TypeError), ("4", TypeError)):
        try:
            generate(bad, **kwargs)
        except err:
            continue
        except Exception as other:  # noqa: BLE001 - report what was raised instead
            _fail(f"generate({bad!r}) raised {type(other).__name__}, expected {err.__name__}.", "validate n with check_count(n) first.")
        _fail(f"generate({bad!r}) did not raise {err.__name__}.", "validate n with check_count(n) first.")
    _ok("generate")


def check_train_step(train_step: Callable, G: nn.Module, D: nn.Module, opt_G: torch.optim.Optimizer,
                     opt_D: torch.optim.Optimizer, *batch: torch.Tensor) -> None:
    """One call of ``train_step(*batch)``: each optimizer owns its network, the D step leaves G alone.

    Works for every lab's unrolled step (one or several D steps, then a G step). The networks, the
    optimizers and the random state are restored afterwards, so calling the check changes nothing.
    """
    for opt, net, name, net_name in ((opt_G, G, "opt_G", "G"), (opt_D, D, "opt_D", "D")):
        owned = {id(p) for group in opt.param_groups for p in group["params"]}
        if owned != {id(p) for p in net.parameters()}:
            _fail(f"{name} does not optimise exactly the parameters of {net_name}.",
                  f"build it from {net_name}.parameters() only: each step must change only the network it trains.")
    import copy

    saved = [copy.deepcopy(x.state_dict()) for x in (G, D, opt_G, opt_D)]
    modes = (G.training, D.training)
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    events: list[str] = []
    leaked: list[bool] = []

    def before_d_step(*_):
        if "G" not in events:  # the D step comes first: G's weights must have no gradient yet
            leaked.append(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters()))
        events.append("D")

    hooks = [opt_D.register_step_pre_hook(before_d_step),
             opt_G.register_step_pre_hook(lambda *_: events.append("G"))]
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    detach_hint = ("score the fakes with D(x_fake.detach()) in the D step, so that loss_D.backward() stops at the "
                   "fakes and never reaches G's weights.")
    try:
        try:
            train_step(*batch)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - explain the likely cause
            if any(leaked):
                _fail(f"the D step computed gradients for G's weights, then train_step failed: {type(err).__name__}: {err}",
                      detach_hint)
            _fail(f"train_step failed: {type(err).__name__}: {err}", "follow the two steps of the TODO in order.")
    finally:
        for hook in hooks:
            hook.remove()
        for obj, state in zip((G, D, opt_G, opt_D), saved):
            obj.load_state_dict(state)
        G.train(modes[0])
        D.train(modes[1])
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    if "D" not in events or "G" not in events:
        missing = " and ".join(n for n, k in (("opt_D.step()", "D"), ("opt_G.step()", "G")) if k not in events)
        _fail(f"train_step never called {missing}.", "each step ends with zero_grad, backward, then the optimizer's step().")
    if any(leaked):
        _fail("the D step computed gradients for G's weights (loss_D reached G).", detach_hint)
    _ok("train step")


# ----------------------------------------------------------------------------- cwgan lab
# Checks for lab8_cwgan.ipynb (conditional WGAN-GP on Fashion-MNIST). Expected numbers come
# from helpers/check_data/cwgan.json; the fixed inputs below are plain formulas, nothing secret.
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


def check_wgan_losses(g_loss: Callable, d_loss: Callable) -> None:
    """The two Wasserstein losses on fixed scores against the committed values."""
    exp = expected("cwgan")["losses"]
    real, fake = _fixed_logits(requires_grad=True)
    lg = g_loss(fake)
    _compare("get_WLoss_generator(score_fake)", lg, exp["g_loss"],
             "G maximises the critic's score of its fakes, so it minimises -mean(score_fake).")
    ld = d_loss(fake, real)
    _compare("get_WLoss_discriminator(score_fake, score_real)", ld, exp["d_loss"],
             "the critic minimises mean(score_fake) - mean(score_real); mind the argument order (fake first) "
             "and use raw scores (no sigmoid, no log).")
    try:
        ld_short = d_loss(fake[:4], real)
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
        gp = gradient_penalty(critic, x_real, x_fake, y, epsilon=epsilon)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - say what went wrong
        _fail(f"get_gradient_regularisation(critic, x_real, x_fake, y, epsilon=...) failed: {type(err).__name__}: {err}",
              "keep the signature of the TODO; epsilon has shape (B, 1, 1, 1).")
    _compare("get_gradient_regularisation(...) with lambda_gp = 10 (the default)", gp, exp["value"],
             "interpolate x_hat = epsilon * x_real + (1 - epsilon) * x_fake with the epsilon given, take "
             "get_grad_function(critic, x_hat, y), its L2 norm per image (flatten(1).norm(2, dim=1)), then "
             "lambda_gp * mean((norm - 1) ** 2).", rtol=1e-4, atol=1e-5)
    gp1 = gradient_penalty(critic, x_real, x_fake, y, lambda_gp=1.0, epsilon=epsilon)
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


def check_generate_conditional(generate: Callable, class_names: tuple[str, ...]) -> None:
    """The ``generate(n, c)`` contract: float32 (n, 28, 28) in [0, 1] for every class, by index and name."""
    for c, name in enumerate(class_names):
        a = generate(3, c, seed=0)
        if not isinstance(a, np.ndarray) or a.shape != (3, 28, 28) or a.dtype != np.float32:
            _fail(f"generate(3, {c}) returned {type(a).__name__} of shape {getattr(a, 'shape', None)} and dtype "
                  f"{getattr(a, 'dtype', None)}, expected a (3, 28, 28) float32 numpy array.",
                  "finish with to_unit_images(x).")
        if a.min() < 0 or a.max() > 1:
            _fail(f"generate(3, {c}) returned values in [{a.min():.3f}, {a.max():.3f}], expected [0, 1].",
                  "map the tanh output from [-1, 1] to [0, 1] with to_unit_images.")
        for alias in (name, name.upper()):
            try:
                by_name = generate(3, alias, seed=0)
            except NotImplementedError:
                raise
            except Exception as err:  # noqa: BLE001 - say what went wrong
                _fail(f"generate(3, {alias!r}, seed=0) raised {type(err).__name__}: {err}",
                      "accept class names in any case: turn c into an index with class_index(c) first.")
            if not np.array_equal(by_name, a):
                _fail(f"generate(3, {alias!r}, seed=0) differs from generate(3, {c}, seed=0).",
                      "turn a class name into its index first (class_index(c)), case-insensitively.")
    if not np.array_equal(generate(4, 1, seed=5), generate(4, 1, seed=5)):
        _fail("generate(4, 1, seed=5) gave different images on two calls.",
              "draw the noise from the seed (seeded_noise) and use eval mode so BatchNorm uses its running statistics.")
    if np.array_equal(generate(4, 1, seed=5), generate(4, 8, seed=5)):
        _fail("generate gives the same images for class 1 and class 8.", "pass the class labels to G(z, y).")
    bad_calls = (((0, 1), ValueError), ((2.5, 1), TypeError), ((2, 10), ValueError), ((2, -1), ValueError),
                 ((2, "Sandals"), ValueError), ((2, 1.0), TypeError), ((2, None), TypeError), ((2, True), TypeError))
    for args, err in bad_calls:
        call = f"generate({', '.join(map(repr, args))})"
        try:
            generate(*args)
        except err as e:
            if err is ValueError and args[0] == 2 and "Sneaker" not in str(e):
                _fail(f"{call} raised ValueError, but its message does not list the valid classes: {e}",
                      "say which classes exist, e.g. '0 T-shirt/top, 1 Trouser, ...'.")
            continue
        except Exception as other:  # noqa: BLE001 - report what was raised instead
            _fail(f"{call} raised {type(other).__name__}, expected {err.__name__}.",
                  "validate n with check_count(n) and c with class_index(c) first.")
        _fail(f"{call} did not raise {err.__name__}.", "validate n with check_count(n) and c with class_index(c) first.")
    _ok("generate(n, c)")


# ---- malaria lab (dcgan_malaria.ipynb) -------------------------------------------------------
# The expected values in check_data/malaria.json come from the solution notebook: the state_dict
# layout the stand-alone malaria_test.py needs, outputs under fixed weights, and loss values.
# Nothing here builds a reference model, so no solution can be read off these checks.

_MALARIA_HINT_LAYOUT = ("use the attribute names and sizes of the TODO (they must match what malaria_test.py "
                        "rebuilds): compare your print(model) with the table in the TODO.")


def _malaria_config(image_size: int):
    from helpers.malaria_models import MalariaGANConfig  # sizes only, no architecture

    return MalariaGANConfig(image_size=image_size)


def _build(cls: Callable[..., nn.Module], image_size: int, what: str) -> nn.Module:
    config = _malaria_config(image_size)
    try:
        model = cls(config)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - report any construction error with a hint
        _fail(f"{what}(MalariaGANConfig(image_size={image_size})) could not be built: {type(err).__name__}: {err}",
              "the constructor takes the MalariaGANConfig as its only argument and reads every size from it.")
    if getattr(model, "config", None) is not config:
        _fail(f"{what}.config is not the MalariaGANConfig passed to the constructor.",
              "keep self.config = config in __init__: save_model stores it so malaria_test.py can rebuild the model.")
    return model


def _check_layout(model: nn.Module, key: str, what: str) -> None:
    from helpers.malaria_models import layout_differences, state_dict_layout

    diffs = layout_differences(state_dict_layout(model), expected("malaria")["layouts"][key])
    if diffs:
        _fail(f"{what} does not have the expected parameters: " + "; ".join(diffs) + ".", _MALARIA_HINT_LAYOUT)


@torch.no_grad()
def _fixed_weights(model: nn.Module) -> nn.Module:
    """Overwrite every parameter and buffer with pseudo-random values derived from its name, eval mode.

    The same names and shapes always get the same values, so two correct models give the same outputs.
    """
    import zlib

    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            continue  # BatchNorm's num_batches_tracked
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        v = torch.randn(t.shape, generator=gen, dtype=torch.float64)
        if name.endswith("running_var"):
            v = 1.0 + 0.5 * v.abs()
        elif t.dim() == 1 and name.endswith("weight"):  # BatchNorm scale
            v = 1.0 + 0.1 * v
        elif t.dim() == 1:  # biases, BatchNorm shift and running mean
            v = 0.1 * v
        else:  # conv / linear weights: unit-variance outputs
            v = v / np.sqrt(max(1, t[0].numel()))
        t.copy_(v.to(t.dtype))
    return model.eval()


def _fixed_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) * 2 - 1


def _compare_values(name: str, got: torch.Tensor, want: list, hint: str, atol: float = 1e-4) -> None:
    got_t = got.detach().double().flatten().cpu()
    want_t = torch.tensor(want, dtype=torch.float64).flatten()
    if got_t.shape != want_t.shape:
        _fail(f"{name} has {got_t.numel()} values, expected {want_t.numel()}.", hint)
    diff = (got_t - want_t).abs().max().item()
    if not np.isfinite(diff) or diff > atol + 1e-4 * want_t.abs().max().item():
        _fail(f"{name} differs from the expected values by up to {diff:.4g} "
              f"(got {[round(v, 4) for v in got_t[:4].tolist()]}..., expected {[round(v, 4) for v in want_t[:4].tolist()]}...).",
              hint)


def _block_sides(model: nn.Module, x: torch.Tensor, blocks: nn.Module) -> list[int]:
    sides: list[int] = []
    hooks = [b.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for b in blocks]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return sides


def check_malaria_generator(generator_cls: Callable[..., nn.Module]) -> None:
    """Lab 3 generator: shapes at 32 and 64 px, tanh range, parameter layout, outputs under fixed weights."""
    for size in (32, 64):
        torch.manual_seed(0)
        G = _build(generator_cls, size, "Generator")
        try:
            with torch.no_grad():
                x = G(torch.randn(4, 100))
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            _fail(f"G(z) with z of shape (4, 100) failed at {size} px: {type(err).__name__}: {err}",
                  "Linear to 128*4*4, view as (B, 128, 4, 4), then the transposed convolutions.")
        if tuple(x.shape) != (4, 3, size, size):
            _fail(f"G(z) has shape {tuple(x.shape)} at {size} px, expected {(4, 3, size, size)}.",
                  "log2(S/4) transposed convolutions with kernel 4, stride 2, padding 1 double 4 up to S.")
        if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6 or float(x.std()) < 1e-5:
            _fail(f"G(z) has values in [{x.min():.3f}, {x.max():.3f}] (std {x.std():.2g}).",
                  "end with nn.Tanh() and let the noise flow through every layer.")
        _check_layout(G, f"generator_{size}", "Generator")
    G = _fixed_weights(_build(generator_cls, 32, "Generator"))
    with torch.no_grad():
        x_big = G(_fixed_input((2, 100), 1) * 100)  # large activations: only a final tanh keeps them in [-1, 1]
        x = G(_fixed_input((2, 100), 1) * 2)
    if x_big.min() < -1 - 1e-6 or x_big.max() > 1 + 1e-6:
        _fail(f"G(z) gives values in [{x_big.min():.3f}, {x_big.max():.3f}] for large z, outside [-1, 1].",
              "end the generator with nn.Tanh(): the patches are scaled to [-1, 1].")
    want = expected("malaria")["outputs"]["generator_32"]
    _compare_values("G(z) under fixed weights (sampled pixels)", x.flatten()[:: max(1, x.numel() // 64)][:64],
                    want["sample"], "check the order of the layers: Linear -> view (B, 128, 4, 4) -> BatchNorm2d -> "
                    "ReLU -> [ConvTranspose2d, BatchNorm2d, ReLU] ... -> ConvTranspose2d -> Tanh.")
    _ok("generator")


def check_malaria_discriminator(discriminator_cls: Callable[..., nn.Module]) -> None:
    """Lab 3 discriminator: one raw score per patch, halving convs, DCGAN rules, layout, fixed-weight outputs."""
    for size in (32, 64):
        torch.manual_seed(0)
        D = _build(discriminator_cls, size, "Discriminator")
        x = _fixed_input((4, 3, size, size), 2)
        try:
            with torch.no_grad():
                out = D(x)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            _fail(f"D(x) with x of shape (4, 3, {size}, {size}) failed: {type(err).__name__}: {err}",
                  "features (the halving trunk) then the 4x4 score convolution.")
        if tuple(out.shape) != (4,):
            _fail(f"D(x) has shape {tuple(out.shape)} for 4 patches, expected (4,): one raw score per patch.",
                  "flatten the (B, 1, 1, 1) output of the score convolution.")
        _check_layout(D, f"discriminator_{size}", "Discriminator")
        sides = _block_sides(D, x, D.features)
        if sides != [size // 2 ** (k + 1) for k in range(len(sides))] or sides[-1:] != [4]:
            _fail(f"the blocks of D.features give sides {sides} at {size} px; each must halve the side, down to 4.",
                  "Conv2d(kernel_size=4, stride=2, padding=1) in every block.")
    if any(isinstance(m, nn.Sigmoid) for m in D.modules()):
        _fail("the discriminator contains a Sigmoid.", "the least-squares loss uses the raw score; remove it.")
    if any(isinstance(m, nn.BatchNorm2d) for m in D.features[0].modules()):
        _fail("the first block of D.features has BatchNorm.", "DCGAN applies no BatchNorm to D's input layer.")
    if not all(abs(m.negative_slope - 0.2) < 1e-9 for m in D.modules() if isinstance(m, nn.LeakyReLU)) or \
            not any(isinstance(m, nn.LeakyReLU) for m in D.modules()):
        _fail("the discriminator does not use LeakyReLU(0.2) everywhere.", "DCGAN uses LeakyReLU with slope 0.2 in D.")
    D = _fixed_weights(_build(discriminator_cls, 32, "Discriminator"))
    with torch.no_grad():
        out = D(_fixed_input((2, 3, 32, 32), 3))
    _compare_values("D(x) under fixed weights", out, expected("malaria")["outputs"]["discriminator_32"]["score"],
                    "each block is Conv2d -> (BatchNorm2d) -> LeakyReLU(0.2); the score conv reads the last block.")
    _ok("discriminator")


def check_malaria_head(multitask_cls: Callable[..., nn.Module]) -> None:
    """Lab 3 multi-task discriminator: (score, probabilities), the head's input and activation, layout, values."""
    for size in (32, 64):
        torch.manual_seed(0)
        M = _build(multitask_cls, size, "MultiTaskDiscriminator")
        x = _fixed_input((5, 3, size, size), 4) * 3  # large inputs: probabilities must stay in [0, 1]
        try:
            with torch.no_grad():
                out = M(x)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            _fail(f"M(x) failed at {size} px: {type(err).__name__}: {err}", "forward returns forward_logits' score "
                  "and the sigmoid of its stage logits.")
        if not isinstance(out, tuple) or len(out) != 2:
            _fail(f"M(x) returned {type(out).__name__}, expected a tuple (score (B,), probabilities (B, 4)).",
                  "forward returns two tensors.")
        score, probs = out
        if tuple(score.shape) != (5,) or tuple(probs.shape) != (5, 4):
            _fail(f"M(x) gave shapes {tuple(score.shape)} and {tuple(probs.shape)}, expected (5,) and (5, 4).",
                  "one raw score per patch and one output per stage.")
        if probs.min() < 0 or probs.max() > 1:
            _fail("the stage probabilities leave [0, 1].", "apply a sigmoid to the stage logits in forward.")
        _check_layout(M, f"multitask_{size}", "MultiTaskDiscriminator")
        seen: dict = {}
        hook = M.head.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(i[0].shape)))
        cam_hook = M.cam_layer.register_forward_hook(lambda m, i, o: seen.update(cam=tuple(o.shape)))
        try:
            M.forward_logits(x)
        finally:
            hook.remove()
            cam_hook.remove()
        c = M.config.d_channels * 2 ** (M.config.num_resamplings - 1)  # channels of the last halving block
        if seen.get("shape") != (5, c, 4, 4) or seen.get("cam") != (5, c, 4, 4):
            _fail(f"the head reads a tensor of shape {seen.get('shape')} and cam_layer gives {seen.get('cam')}; "
                  f"both should be {(5, c, 4, 4)}, the output of the last halving block.",
                  "compute h = self.features(x) once and give it to both self.score and self.head.")
    if any(isinstance(m, nn.Sigmoid) for m in M.modules()):
        _fail("the multi-task discriminator contains an nn.Sigmoid module.",
              "the head must output logits (BCE-with-logits uses them); forward applies torch.sigmoid once.")
    M = _fixed_weights(_build(multitask_cls, 32, "MultiTaskDiscriminator"))
    x = _fixed_input((2, 3, 32, 32), 5)
    want = expected("malaria")["outputs"]["multitask_32"]
    with torch.no_grad():
        score, logits = M.forward_logits(x)
        _, probs = M(x)
        logits_only = M.classify_logits(x)
    _compare_values("forward_logits(x) score under fixed weights", score, want["score"],
                    "the realness score is the same as in Discriminator.")
    _compare_values("forward_logits(x) stage logits under fixed weights", logits, want["logits"],
                    "head = Flatten -> Linear(C*4*4, head_hidden) -> LeakyReLU(0.2) -> Linear(head_hidden, 4), "
                    "reading the output of the last halving block; no sigmoid inside the head.")
    _compare_values("the stage probabilities of forward(x)", probs, want["probs"],
                    "forward returns torch.sigmoid(logits) once (not twice, not softmax).")
    _compare_values("classify_logits(x)", logits_only, want["logits"], "classify_logits returns the head's logits.")
    _ok("multi-task discriminator")


def check_lsgan_losses(d_loss: Callable, g_loss: Callable) -> None:
    """The least-squares losses J_D and J_G on fixed raw scores against the committed values."""
    exp = expected("malaria")["losses"]
    real, fake = _fixed_logits(requires_grad=True)
    ld = d_loss(real, fake)
    _compare("lsgan_d_loss(score_real, score_fake)", ld, exp["lsgan_d"],
             "J_D = 1/(2m) sum (D(x) - 1)^2 + 1/(2m) sum D(G(z))^2: targets 1 for real and 0 for fake, "
             "the factor 1/2 on both terms, and no sigmoid (the scores are raw).")
    _compare("lsgan_d_loss with (m, 1) scores", d_loss(real[:, None], fake[:, None]), exp["lsgan_d"],
             "average over all entries (.mean()) so that (m,) and (m, 1) scores give the same loss.")
    lg = g_loss(fake)
    _compare("lsgan_g_loss(score_fake)", lg, exp["lsgan_g"],
             "J_G = 1/m sum (D(G(z)) - 1)^2: target 1 for the fakes and no factor 1/2.")
    if not _carries_grad(ld, lg):
        _fail("a loss does not carry gradients back to the scores.", "compute it with torch operations, no .item()/.detach()/numpy.")
    _ok("least-squares losses")


def check_stage_loss(stage_loss: Callable) -> None:
    """J_C, the multi-label binary cross-entropy of the stage logits, on fixed inputs."""
    exp = expected("malaria")["losses"]
    real, fake = _fixed_logits()
    logits = torch.stack([real, fake, real.flip(0), -fake], dim=1).requires_grad_(True)  # (6, 4)
    targets = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]],
                           dtype=torch.float32)
    loss = stage_loss(logits, targets)
    _compare("stage_loss_bce(logits_stage, targets)", loss, exp["stage_bce"],
             "binary_cross_entropy_with_logits(logits, targets), averaged over all m x 4 entries; do not apply a "
             "sigmoid (or softmax) first.")
    if not loss.requires_grad:
        _fail("stage_loss_bce does not carry gradients back to the logits.", "compute it with torch operations.")
    _ok("classification loss")


def check_grad_cam(grad_cam: Callable) -> None:
    """GradCAM on a tiny model whose maps are known in closed form.

    The probe model's feature maps are A^0 = x and A^1 = -x (a 1x1 convolution), and output c is
    a weighted sum of one feature map over all positions, so dy_c/dA is constant: target 0 gives
    alpha = (1, 0) and the map relu(x); targets 1 and 2 give maps proportional to relu(-x).
    """
    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Conv2d(1, 2, kernel_size=1, bias=False)   # (B, 2, 4, 4): x and -x
            self.head = nn.Linear(2 * 4 * 4, 3, bias=False)
            with torch.no_grad():
                self.features.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
                w = torch.zeros(3, 2, 16)
                w[0, 0], w[1, 1], w[2, 0] = 1.0, 2.0, -1.0
                self.head.weight.copy_(w.view(3, 32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x).flatten(1))                 # (B, 3)

    model = Probe().train()
    x = torch.linspace(-1, 1, 3 * 16).view(3, 1, 4, 4)[torch.tensor([2, 0, 1])]

    def unit(m: torch.Tensor) -> torch.Tensor:
        low, high = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
        return (m - low) / (high - low).clamp_min(1e-7)

    pos, neg = unit(torch.relu(x[:, 0])), unit(torch.relu(-x[:, 0]))
    for target, want, what in ((0, pos, "target 0 (map relu(x))"), (1, neg, "target 1 (map relu(-x))"),
                               (torch.tensor([0, 2, 1]), torch.stack([pos[0], neg[1], neg[2]]), "one target per image")):
        cams = grad_cam(model, model.features, x, target)
        if not torch.is_tensor(cams) or tuple(cams.shape) != (3, 4, 4):
            _fail(f"grad_cam returned {getattr(cams, 'shape', type(cams).__name__)} for 3 images of 4x4, expected (3, 4, 4).",
                  "sum the weighted maps over channels, upsample to the input size and drop the channel axis.")
        if cams.requires_grad:
            _fail("grad_cam returns a tensor that still requires grad.", "detach the activation before building the map.")
        err = float((cams.float() - want).abs().max())
        if err > 1e-5:
            _fail(f"grad_cam for {what} differs from the known map by up to {err:.4f}.",
                  "alpha_k is the mean of dy_c/dA^k over positions; the map is ReLU(sum_k alpha_k A^k), "
                  "then min-max scaled per image. Explain the target's logit, not the sum of all outputs.")
    if not model.training:
        _fail("grad_cam left the model in eval mode.", "restore the previous mode with model.train(was_training).")
    if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters()):
        _fail("grad_cam filled the parameters' .grad.", "backpropagate only to the activation: y.backward(inputs=[A]).")
    _ok("GradCAM")
