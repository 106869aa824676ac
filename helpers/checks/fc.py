"""Instant checks of the fully connected GAN lab (extra/fc_gan.ipynb)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.common import CheckFailed, _fail, _ok, check_train_step, expected
from helpers.checks.contract import FC, check_contract
from helpers.checks.graded import Defined, GradedCheck
from helpers.checks.vanilla import _check_bce_losses

__all__ = ['CheckFailed', 'check_fc_discriminator', 'check_fc_generator', 'check_fc_losses', 'check_fc_train_step',
           'check_generate']

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28
SLOPE = 0.2  # LeakyReLU's negative slope in both networks


def _build(cls: Callable[..., nn.Module], call: str, hint: str, *args, **kwargs) -> nn.Module:
    try:
        return cls(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - say how the class is meant to be called
        _fail(f"{call} could not be built: {type(err).__name__}: {err}", hint)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _layer_sizes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in _linear_layers(model)]


def _trace_linears(model: nn.Module, run: Callable[[], torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The input and the output of every linear layer of ``model`` during ``run()``, in call order."""
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    hooks = []
    for layer in _linear_layers(model):
        hooks.append(layer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach().clone())))
        hooks.append(layer.register_forward_hook(lambda _m, _args, out: outputs.append(out.detach().clone())))
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return inputs, outputs


def _check_leaky_between(inputs: list[torch.Tensor], outputs: list[torch.Tensor], net: str) -> None:
    """Each hidden linear layer's input is LeakyReLU(0.2) of the previous layer's output (no dropout active)."""
    for i in range(len(outputs) - 1):
        want = F.leaky_relu(outputs[i], SLOPE)
        got = inputs[i + 1]
        if got.shape != want.shape or not torch.allclose(got, want, atol=1e-5):
            _fail(f"in {net}, what goes into linear layer {i + 2} is not LeakyReLU({SLOPE}) of linear layer {i + 1}'s "
                  f"output.", f"put nn.LeakyReLU({SLOPE}) after each hidden linear layer (slope {SLOPE}, nothing "
                  "else in between except dropout in D).")


# ----------------------------------------------------------------------------- fc lab
def check_fc_generator(generator_cls: Callable[..., nn.Module], latent_dim: int = 64, hidden: int = 256) -> None:
    """Shapes, layer sizes, LeakyReLU(0.2) between the layers and a tanh output for the fully connected generator.

    Args:
        generator_cls: called as ``generator_cls(latent_dim)`` (the notebook's ``Generator``).
        latent_dim: the noise dimension.
        hidden: the width of both hidden layers that ``generator_cls(latent_dim)`` builds.
    """
    torch.manual_seed(0)
    G = _build(generator_cls, f"Generator({latent_dim})", "the constructor takes the latent dimension first.", latent_dim)
    z = torch.randn(8, latent_dim)
    try:
        with torch.no_grad():
            x = G(z)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - explain
        _fail(f"G(z) with z of shape (8, {latent_dim}) failed: {type(err).__name__}: {err}",
              f"follow the shapes in the TODO: ({latent_dim}) -> {hidden} -> {hidden} -> 784, reshaped to (B, 1, 28, 28).")
    if tuple(x.shape) != (8, *IMAGE_SHAPE):
        _fail(f"G(z) has shape {tuple(x.shape)}, expected {(8, *IMAGE_SHAPE)}.",
              "the last linear layer gives (B, 784): reshape it with .view(-1, 1, 28, 28).")
    sizes = _layer_sizes(G)
    want = [(latent_dim, hidden), (hidden, hidden), (hidden, PIXELS)]
    if sizes != want:
        _fail(f"the generator's linear layers are {sizes} (in, out), expected {want}.",
              f"three nn.Linear layers: latent_dim -> {hidden} -> {hidden} -> 784.")
    if any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in G.modules()):
        _fail("the generator has convolutions.", "this lab's networks are fully connected: nn.Linear layers only.")
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        _fail(f"G(z) has values in [{x.min():.3f}, {x.max():.3f}], outside [-1, 1].", "end the generator with nn.Tanh().")
    if float(x.std()) < 1e-4:
        _fail("G(z) gives the same value everywhere.", "check that the noise actually flows through the layers.")
    inputs, outputs = _trace_linears(G, lambda: G(z))
    if len(outputs) != 3:
        _fail(f"G(z) ran {len(outputs)} linear layers, expected 3.", "call each linear layer once in forward.")
    _check_leaky_between(inputs, outputs, "the generator")
    if not torch.allclose(x.flatten(1), torch.tanh(outputs[-1]), atol=1e-5):
        _fail("G(z) is not tanh of the last linear layer's output.",
              "end with nn.Tanh() right after the last linear layer (images in [-1, 1], the range of the data).")
    _ok("generator")


def check_fc_discriminator(discriminator_cls: Callable[..., nn.Module], hidden: int = 256, dropout: float = 0.3) -> None:
    """One logit per image, the layer sizes, LeakyReLU(0.2), and dropout: in both hidden layers at rate ``p`` in
    train mode, off in eval mode, absent with ``dropout=0``.

    Args:
        discriminator_cls: called as ``discriminator_cls(dropout=p)`` (the notebook's ``Discriminator``).
        hidden: the width of both hidden layers that it builds.
        dropout: the dropout probability to test (0 < p < 1).
    """
    torch.manual_seed(0)
    hint = "the constructor takes dropout= (the probability, 0 switches it off)."
    D0 = _build(discriminator_cls, "Discriminator(dropout=0.0)", hint, dropout=0.0)
    Dp = _build(discriminator_cls, f"Discriminator(dropout={dropout})", hint, dropout=dropout)
    x = torch.rand(64, *IMAGE_SHAPE) * 2 - 1
    D0.eval()
    with torch.no_grad():
        out = D0(x)
    if tuple(out.shape) != (64,):
        _fail(f"D(x) has shape {tuple(out.shape)} for 64 images, expected (64,): one logit per image.",
              "end with nn.Linear(hidden, 1) and flatten its output with .view(-1).")
    sizes = _layer_sizes(D0)
    want = [(PIXELS, hidden), (hidden, hidden), (hidden, 1)]
    if sizes != want:
        _fail(f"the discriminator's linear layers are {sizes} (in, out), expected {want}.",
              f"flatten the image to 784 values, then nn.Linear layers 784 -> {hidden} -> {hidden} -> 1.")
    if any(isinstance(m, nn.Sigmoid) for m in D0.modules()):
        _fail("the discriminator contains a Sigmoid, but forward must return logits.",
              "remove the sigmoid; the loss uses binary_cross_entropy_with_logits, and probability() applies it.")
    inputs, outputs = _trace_linears(D0, lambda: D0(x))
    if len(outputs) != 3:
        _fail(f"D(x) ran {len(outputs)} linear layers, expected 3.", "call each linear layer once in forward.")
    _check_leaky_between(inputs, outputs, "the discriminator (eval mode)")
    if not torch.allclose(out, outputs[-1].view(-1), atol=1e-5):
        _fail("D(x) is not the last linear layer's output: forward changes the logits (a sigmoid?).",
              "return the logits as they are: the loss applies the sigmoid (binary_cross_entropy_with_logits), and "
              "probability() applies it for D(x).")
    if hasattr(D0, "probability"):
        with torch.no_grad():
            p = D0.probability(x)
        if not torch.allclose(p, torch.sigmoid(out), atol=1e-6):
            _fail("D.probability(x) is not sigmoid(D(x)).", "probability() applies the sigmoid once to the logits.")

    # Dropout off: the same images give the same logits, also in train mode.
    D0.train()
    with torch.no_grad():
        if not torch.equal(D0(x), D0(x)):
            _fail("Discriminator(dropout=0.0) gives different logits for the same images in train mode.",
                  "with dropout=0 there must be no randomness: no dropout layers at all (or p=0).")
    for m in Dp.modules():
        if isinstance(m, nn.Dropout) and abs(m.p - dropout) > 1e-9:
            _fail(f"Discriminator(dropout={dropout}) has a Dropout layer with p={m.p}.",
                  "pass the constructor's dropout to every nn.Dropout(p=dropout).")
    # Dropout on, train mode: random, and in both hidden layers at about rate p (LeakyReLU is never exactly 0).
    Dp.train()
    with torch.no_grad():
        first, second = Dp(x), Dp(x)
    if torch.equal(first, second):
        _fail(f"Discriminator(dropout={dropout}) in train mode gives the same logits twice: dropout is not active.",
              "add nn.Dropout(dropout) after the LeakyReLU of each hidden layer.")
    inputs, _ = _trace_linears(Dp, lambda: Dp(x))
    if len(inputs) == 3:
        if float((inputs[0] == 0).float().mean()) > 0.5 * dropout:
            _fail("the discriminator drops input pixels: dropout sits before the first linear layer.",
                  "dropout belongs in the hidden layers only: after each hidden LeakyReLU, not on the image.")
        for i, h in ((1, inputs[1]), (2, inputs[2])):
            share = float((h == 0).float().mean())
            if abs(share - dropout) > 0.1:
                _fail(f"in train mode {share:.0%} of the values going into linear layer {i + 1} are zeroed, expected "
                      f"about {dropout:.0%} (dropout={dropout}).",
                      "put nn.Dropout(dropout) after the LeakyReLU of both hidden layers (and nowhere else).")
    # Dropout on, eval mode: deterministic and exactly the network without dropout (same weights).
    Dp.eval()
    with torch.no_grad():
        a, b = Dp(x), Dp(x)
    if not torch.equal(a, b):
        _fail(f"Discriminator(dropout={dropout}) in eval mode gives different logits for the same images: dropout is "
              f"still active.", "use nn.Dropout modules (D.eval() switches them off), or "
              "F.dropout(h, p, training=self.training).")
    reference = _build(discriminator_cls, "Discriminator(dropout=0.0)", hint, dropout=0.0)
    try:
        reference.load_state_dict(Dp.state_dict())
    except RuntimeError as err:
        _fail(f"Discriminator(dropout={dropout}) and Discriminator(dropout=0.0) have different weights: {err}"[:400],
              "the dropout switch adds no weights: the same linear layers with or without dropout.")
    reference.eval()
    with torch.no_grad():
        plain = reference(x)
    if not torch.allclose(a, plain, atol=1e-5):
        _fail(f"in eval mode Discriminator(dropout={dropout}) gives other logits than the same weights without "
              f"dropout (largest difference {float((a - plain).abs().max()):.4f}).",
              "in eval mode dropout must change nothing; nn.Dropout scales by 1/(1-p) in training so that no "
              "rescaling is needed at evaluation.")
    _ok("discriminator (with and without dropout)")


def check_fc_losses(d_loss: Callable, g_loss: Callable) -> None:
    """BCE losses on fixed logits against the committed values, also on large logits (as in the vanilla lab).

    Args:
        d_loss: the notebook's ``d_loss_bce(logits_real, logits_fake)``, called with its arguments by name.
        g_loss: the notebook's ``g_loss_bce(logits_fake)``.
    """
    _check_bce_losses(d_loss, g_loss, expected("fc")["losses"])
    _ok("BCE losses")


def check_fc_train_step(train_step: Callable, make_optimizers: Callable, generator_cls: Callable[..., nn.Module],
                        discriminator_cls: Callable[..., nn.Module], cfg, x_real: torch.Tensor) -> None:
    """``make_optimizers`` gives two Adam optimizers with the config's settings, each owning one network, and one
    ``train_step(x_real, G, D, opt_G, opt_D)`` updates D, then G, without gradients reaching G in the D step.

    Args:
        train_step: the notebook's ``train_step(x_real, G, D, opt_G, opt_D)``.
        make_optimizers: the notebook's ``make_optimizers(G, D, cfg) -> (opt_G, opt_D)``.
        generator_cls, discriminator_cls: the notebook's classes; fresh networks are built from ``cfg``.
        cfg: the notebook's config (``latent_dim``, ``hidden``, ``dropout``, ``lr``, ``beta1``, ``beta2``).
        x_real: a batch of real images (B, 1, 28, 28) in [-1, 1].
    """
    torch.manual_seed(0)
    device = x_real.device
    G = _build(generator_cls, "Generator(cfg.latent_dim, cfg.hidden)", "see TODO 1.", cfg.latent_dim, cfg.hidden).to(device)
    D = _build(discriminator_cls, "Discriminator(cfg.hidden, cfg.dropout)", "see TODO 2.", cfg.hidden, cfg.dropout).to(device)
    optimizers = make_optimizers(G, D, cfg)
    if not (isinstance(optimizers, tuple) and len(optimizers) == 2):
        _fail(f"make_optimizers returned {type(optimizers).__name__}, expected a pair (opt_G, opt_D).",
              "return opt_G, opt_D.")
    opt_G, opt_D = optimizers
    for opt, name in ((opt_G, "opt_G"), (opt_D, "opt_D")):
        if not isinstance(opt, torch.optim.Adam):
            _fail(f"{name} is {type(opt).__name__}, expected torch.optim.Adam.", "use torch.optim.Adam for both networks.")
        group = opt.param_groups[0]
        if abs(float(group["lr"]) - cfg.lr) > 1e-12 or tuple(group["betas"]) != (cfg.beta1, cfg.beta2):
            _fail(f"{name} has lr={group['lr']} and betas={tuple(group['betas'])}, expected lr={cfg.lr} and "
                  f"betas={(cfg.beta1, cfg.beta2)} from the config.", "pass lr=cfg.lr, betas=(cfg.beta1, cfg.beta2).")
    check_train_step(lambda batch: train_step(batch, G, D, opt_G, opt_D), G, D, opt_G, opt_D, x_real)


def check_generate(generate: Callable, model: nn.Module | None = None) -> None:
    """The ``generate`` contract (helpers.checks.contract.FC): float32 (n, 28, 28) in [0, 1], seeds, bad arguments.

    Args:
        generate: the notebook's ``generate(n, seed=None)``.
        model: the network generate samples from; when given, its train/eval mode must survive a call.
    """
    check_contract(generate, FC, model=model)


# ----------------------------------------------------------------------------- what the grader calls
def _grade_train_step(names: Defined) -> None:
    cfg = names["cfg"]
    check_fc_train_step(names["train_step"], names["make_optimizers"], names["Generator"], names["Discriminator"], cfg,
                        names["x_train"][:cfg.batch_size])


GRADED = [
    GradedCheck("fc.generator", "TODO 1: the fully connected generator",
                lambda names: check_fc_generator(names["Generator"], latent_dim=names["cfg"].latent_dim),
                check="check_fc_generator"),
    GradedCheck("fc.discriminator", "TODO 2: the discriminator, with and without dropout",
                lambda names: check_fc_discriminator(names["Discriminator"], dropout=names["cfg"].dropout or 0.3),
                check="check_fc_discriminator"),
    GradedCheck("fc.losses", "TODO 3: the BCE losses",
                lambda names: check_fc_losses(d_loss=names["d_loss_bce"], g_loss=names["g_loss_bce"]),
                check="check_fc_losses"),
    GradedCheck("fc.train_step", "TODO 4: the optimizers and the training step", _grade_train_step,
                check="check_fc_train_step"),
]

# The notebook's call of the generate contract (the row "fc.generate" of POINTS).
GENERATE_CHECK = "check_generate"


def graded_generate(names: Defined) -> dict:
    """What the grader checks the generate contract with: the function and the network it samples from."""
    return {"generate": names["generate"], "model": names.get("G")}
