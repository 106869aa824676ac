"""Instant checks of the multi-label conditional GAN lab (extra/cgan_iclevr.ipynb): SAGAN against DCGAN on i-CLEVR.

The value checks (self-attention, conditional batch norm, hinge losses) compare a student's module or function
with numbers stored in ``helpers/checks/answers/iclevr.json`` (``python -m helpers.checks.store``), computed
from the solution notebook on fixed inputs under fixed weights; the network checks test properties a correct
network has whatever its widths (shapes, range, the condition's effect, the switches, the projection's
linearity in the condition).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from helpers.checks.common import (CheckFailed, _call_as_declared, _compare, _compare_values, _fail, _fixed_input,
                                   _fixed_weights, _ok, check_train_step, expected)
from helpers.checks.contract import ICLEVR, check_contract
from helpers.checks.graded import Defined, GradedCheck

__all__ = ['CheckFailed', 'check_conditional_batchnorm', 'check_iclevr_discriminator', 'check_iclevr_generator',
           'check_hinge_losses', 'check_iclevr_train_step', 'check_self_attention', 'check_generate']

NUM_OBJECTS = 24
ATTENTION_CHANNELS = 16     # the SelfAttention the value check builds: SelfAttention(16) on (2, 16, 6, 5)
CBN_CHANNELS = 6            # the ConditionalBatchNorm2d the value check builds: (6, 24) on (4, 6, 3, 3)


def _build(cls: Callable[..., nn.Module], call: str, hint: str, *args, **kwargs) -> nn.Module:
    try:
        return cls(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - say how the class is meant to be called
        _fail(f"{call} could not be built: {type(err).__name__}: {err}", hint)


def _run(what: str, hint: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as err:  # noqa: BLE001 - explain
        _fail(f"{what} failed: {type(err).__name__}: {err}"[:600], hint)


def _fixed_conditions(n: int, seed: int = 3) -> torch.Tensor:
    """``n`` 24-hot conditions of 1 to 3 objects, the same every time."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.zeros(n, NUM_OBJECTS)
    for i in range(n):
        k = 1 + i % 3
        y[i, torch.randperm(NUM_OBJECTS, generator=gen)[:k]] = 1.0
    return y


def _has_spectral_norm(module: nn.Module) -> bool:
    """Spectral norm on ``module.weight``: torch.nn.utils.parametrizations.spectral_norm or the older spectral_norm."""
    if parametrize.is_parametrized(module, "weight"):
        return any("SpectralNorm" in type(p).__name__ for p in module.parametrizations["weight"])
    return hasattr(module, "weight_orig") and any("SpectralNorm" in type(h).__name__
                                                    for h in module._forward_pre_hooks.values())


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))]


def _count(model: nn.Module, cls_name: str) -> int:
    return sum(type(m).__name__ == cls_name for m in model.modules())


# ----------------------------------------------------------------------------- TODO 1: self-attention
def attention_inputs() -> torch.Tensor:
    """The fixed feature map of the self-attention value check: (2, 16, 6, 5)."""
    return _fixed_input((2, ATTENTION_CHANNELS, 6, 5), 11)


def fixed_attention(attention_cls: Callable[..., nn.Module], gamma: float = 0.7) -> nn.Module:
    """``attention_cls(16)`` with every weight fixed (by name) and ``gamma`` set: the value check's module."""
    A = _fixed_weights(attention_cls(ATTENTION_CHANNELS))
    with torch.no_grad():
        A.gamma.fill_(gamma)
    return A


def check_self_attention(attention_cls: Callable[..., nn.Module]) -> None:
    """SAGAN's self-attention block: its layout, the identity at gamma = 0, the value under fixed weights,
    a receptive field that spans the whole map, and the spectral-norm switch.

    Args:
        attention_cls: called as ``attention_cls(channels)`` and ``attention_cls(channels, spectral_norm=True)``
            (the notebook's ``SelfAttention``).
    """
    torch.manual_seed(0)
    C = ATTENTION_CHANNELS
    hint = "the constructor takes the channels first and spectral_norm= (default False)."
    A = _build(attention_cls, f"SelfAttention({C})", hint, C)
    layers = {name: (m.in_channels, m.out_channels, m.kernel_size) for name, m in A.named_modules()
              if isinstance(m, nn.Conv2d)}
    want = {"query": (C, C // 8, (1, 1)), "key": (C, C // 8, (1, 1)), "value": (C, C, (1, 1))}
    if layers != want:
        _fail(f"SelfAttention({C}) has the convolutions {layers} (name: in, out, kernel), expected {want}.",
              "three 1x1 nn.Conv2d named query and key (C -> C // 8) and value (C -> C).")
    gamma = getattr(A, "gamma", None)
    if not isinstance(gamma, nn.Parameter) or gamma.numel() != 1:
        _fail("SelfAttention has no scalar parameter `gamma`.", "self.gamma = nn.Parameter(torch.zeros(1)).")
    if float(gamma.detach().abs().sum()) != 0.0:
        _fail(f"gamma starts at {float(gamma.detach().flatten()[0]):g}, expected 0.",
              "start gamma at 0: the block begins as the identity and learns how much attention to mix in.")
    x = attention_inputs()
    out = _run(f"SelfAttention({C})(x) with x of shape {tuple(x.shape)}",
               "follow the shapes in the TODO: (B, C, H, W) -> (B, C, H, W).", lambda: A(x))
    if tuple(out.shape) != tuple(x.shape):
        _fail(f"SelfAttention returned shape {tuple(out.shape)} for input {tuple(x.shape)}; it must keep the shape.",
              "reshape the attended values back to (B, C, H, W).")
    if not torch.allclose(out, x, atol=1e-6):
        _fail("with gamma = 0 SelfAttention(x) is not x.", "return x + self.gamma * o: the residual keeps the input.")
    A = _run("SelfAttention with fixed weights", hint, lambda: fixed_attention(attention_cls))
    with torch.no_grad():
        out = A(x)
        far = x.clone()
        far[:, :, 0, 0] += 3.0                               # change one corner pixel
        moved = (A(far) - out)[:, :, -1, -1].abs().max()     # the opposite corner's output
    if float(moved) < 1e-6:
        _fail("changing the top-left pixel does not change SelfAttention's output at the bottom-right pixel.",
              "every position attends to every other one: softmax over all H*W positions of query . key.")
    _compare_values("SelfAttention(x) under fixed weights (gamma = 0.7)", out, expected("iclevr")["attention"]["output"],
                    "attention = softmax over the keys of (query^T key), shape (B, HW, HW), no scaling; "
                    "o[:, :, i] = sum_j value[:, :, j] * attention[i, j]; return x + gamma * o.")
    S = _build(attention_cls, f"SelfAttention({C}, spectral_norm=True)", hint, C, spectral_norm=True)
    missing = [name for name, m in _weighted_layers(S) if not _has_spectral_norm(m)]
    if missing:
        _fail(f"SelfAttention({C}, spectral_norm=True): no spectral norm on {missing}.",
              "wrap each convolution with spectral_norm(...) when spectral_norm is True (the `sn` helper).")
    extra = [name for name, m in _weighted_layers(A) if _has_spectral_norm(m)]
    if extra:
        _fail(f"SelfAttention({C}) (spectral_norm=False) has spectral norm on {extra}.", "only when spectral_norm=True.")
    _ok("self-attention")


# ----------------------------------------------------------------------------- TODO 2: conditional batch norm
def cbn_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed input of the conditional batch norm value check: x (4, 6, 3, 3) and y (4, 24)."""
    return _fixed_input((4, CBN_CHANNELS, 3, 3), 21) * 2 + 0.5, _fixed_conditions(4, 5)


def check_conditional_batchnorm(cbn_cls: Callable[..., nn.Module]) -> None:
    """Conditional batch norm: BatchNorm2d without its own affine, then a per-channel gain and bias computed from
    the condition by two linear layers (gain starting at 1, bias at 0).

    Args:
        cbn_cls: called as ``cbn_cls(channels, num_classes)`` (the notebook's ``ConditionalBatchNorm2d``).
    """
    torch.manual_seed(0)
    C = CBN_CHANNELS
    M = _build(cbn_cls, f"ConditionalBatchNorm2d({C}, {NUM_OBJECTS})",
               "the constructor takes the channels and the number of objects (24).", C, NUM_OBJECTS)
    bns = [m for m in M.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(bns) != 1 or bns[0].affine:
        _fail("ConditionalBatchNorm2d needs exactly one nn.BatchNorm2d, with affine=False.",
              "nn.BatchNorm2d(channels, affine=False): the gain and bias come from the condition instead.")
    linears = sorted((m.in_features, m.out_features) for m in M.modules() if isinstance(m, nn.Linear))
    if linears != [(NUM_OBJECTS, C), (NUM_OBJECTS, C)]:
        _fail(f"its linear layers are {linears} (in, out), expected two of ({NUM_OBJECTS}, {C}).",
              "self.gain = nn.Linear(num_classes, channels) and self.bias = nn.Linear(num_classes, channels).")
    x, y = cbn_inputs()
    M.train()
    out = _run("ConditionalBatchNorm2d(x, y)", "forward(x, y): x (B, C, H, W), y (B, 24).", lambda: M(x, y))
    plain = F.batch_norm(x, None, None, training=True, eps=bns[0].eps)
    if tuple(out.shape) != tuple(x.shape):
        _fail(f"ConditionalBatchNorm2d returned shape {tuple(out.shape)} for {tuple(x.shape)}.", "keep the shape.")
    if not torch.allclose(out, plain, atol=1e-4):
        _fail("a fresh ConditionalBatchNorm2d is not plain batch norm: the gain must start at 1 and the bias at 0 "
              "for every condition.", "initialise the gain layer with weight 0 and bias 1, the bias layer with "
              "weight 0 and bias 0 (nn.init.zeros_, nn.init.ones_).")
    F_ = _fixed_weights(cbn_cls(C, NUM_OBJECTS))
    with torch.no_grad():
        fixed = F_(x, y)
    _compare_values("ConditionalBatchNorm2d(x, y) under fixed weights (eval mode)", fixed,
                    expected("iclevr")["cbn"]["output"],
                    "normalise with the BatchNorm2d, then multiply by gain(y) and add bias(y), each reshaped to "
                    "(B, C, 1, 1).")
    _ok("conditional batch norm")


# ----------------------------------------------------------------------------- TODO 3: the generator
def check_iclevr_generator(generator_cls: Callable[..., nn.Module], cfg: Any) -> None:
    """G(z, y): images (B, 3, S, S) in [-1, 1] at S = cfg.image_size, conditional batch norm, the condition's effect,
    and one self-attention block exactly when ``cfg.self_attention``.

    Args:
        generator_cls: called as ``generator_cls(cfg)`` (the notebook's ``Generator``).
        cfg: the notebook's config (``latent_dim``, ``image_size``, ``self_attention``...).
    """
    torch.manual_seed(0)
    for attention in (False, True):
        c = replace(cfg, self_attention=attention)
        G = _build(generator_cls, f"Generator(cfg) with self_attention={attention}", "the constructor takes the config.", c)
        S = c.image_size
        z = torch.randn(6, c.latent_dim)
        y = _fixed_conditions(6)
        G.train()
        x = _run(f"G(z, y) with z {tuple(z.shape)} and y {tuple(y.shape)}",
                 "forward(z, y): z (B, latent_dim), y (B, 24) -> (B, 3, S, S).", lambda: G(z, y))
        if tuple(x.shape) != (6, 3, S, S):
            _fail(f"G(z, y) has shape {tuple(x.shape)}, expected {(6, 3, S, S)} (cfg.image_size = {S}).",
                  "one ConvTranspose2d(4, 2, 1) block doubles the size: 4 -> 8 -> 16 -> 32 (-> 64).")
        if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
            _fail(f"G(z, y) has values in [{x.min():.3f}, {x.max():.3f}], outside [-1, 1].", "end with torch.tanh.")
        n_att = _count(G, "SelfAttention")
        if n_att != int(attention):
            _fail(f"Generator with self_attention={attention} has {n_att} SelfAttention blocks, expected {int(attention)}.",
                  "add one SelfAttention block (after the block that gives 8 x 8 features) only when "
                  "cfg.self_attention is True.")
        if _count(G, "ConditionalBatchNorm2d") < 2:
            _fail("the generator uses fewer than two ConditionalBatchNorm2d layers.",
                  "normalise before every upsampling block with ConditionalBatchNorm2d(channels, 24), fed y.")
        G.eval()
        with torch.no_grad():
            a = G(z, y)
            b = G(z, _fixed_conditions(6, seed=9))
        if torch.allclose(a, b, atol=1e-6):
            _fail("G(z, y) does not depend on y (eval mode).", "pass y to every ConditionalBatchNorm2d (and to the "
                  "first linear layer together with z).")
        if attention:
            _check_attention_in_forward(G, lambda: G(z, y), a)
    _ok("generator (with and without self-attention)")


def _check_attention_in_forward(model: nn.Module, forward: Callable[[], torch.Tensor], before: torch.Tensor,
                                prefix: str = "") -> None:
    """Every SelfAttention block's gamma set to 1 must change ``forward()`` from ``before`` (gamma 0): the block is
    called in forward. ``prefix`` starts the failure message."""
    with torch.no_grad():
        for m in model.modules():
            if type(m).__name__ == "SelfAttention":
                m.gamma.fill_(1.0)
        after = forward()
    if torch.allclose(after, before, atol=1e-6):
        _fail(f"{prefix}setting the SelfAttention block's gamma to 1 changes nothing: it is not in forward.",
              "call the attention block in forward, on the 8 x 8 features.")


# ----------------------------------------------------------------------------- TODO 4: the discriminator
def check_iclevr_discriminator(discriminator_cls: Callable[..., nn.Module], cfg: Any) -> None:
    """D(x, y): one raw score per image (B,), a projection discriminator (the score is linear in the 24-hot
    condition: D(x, y1) + D(x, y2) = D(x, y1 + y2) + D(x, 0)), spectral norm on every layer exactly when
    ``cfg.spectral_norm``, and one self-attention block exactly when ``cfg.self_attention``.

    Args:
        discriminator_cls: called as ``discriminator_cls(cfg)`` (the notebook's ``Discriminator``).
        cfg: the notebook's config.
    """
    torch.manual_seed(0)
    S = cfg.image_size
    x = _fixed_input((6, 3, S, S), 31)
    for sn in (False, True):
        for attention in (False, True):
            c = replace(cfg, spectral_norm=sn, self_attention=attention)
            what = f"Discriminator(cfg) with spectral_norm={sn}, self_attention={attention}"
            D = _build(discriminator_cls, what, "the constructor takes the config.", c)
            layers = _weighted_layers(D)
            if not layers:
                _fail(f"{what} has no convolution or linear layer.", "see the TODO's layers.")
            with_sn = [name for name, m in layers if _has_spectral_norm(m)]
            if sn and len(with_sn) != len(layers):
                missing = [name for name, m in layers if not _has_spectral_norm(m)]
                _fail(f"{what}: no spectral norm on {missing}.",
                      "wrap every nn.Conv2d and nn.Linear of D (the attention's too) with sn(layer, cfg.spectral_norm).")
            if not sn and with_sn:
                _fail(f"{what}: spectral norm on {with_sn}.", "apply spectral norm only when cfg.spectral_norm is True.")
            n_att = _count(D, "SelfAttention")
            if n_att != int(attention):
                _fail(f"{what} has {n_att} SelfAttention blocks, expected {int(attention)}.",
                      "add one SelfAttention block (on the 8 x 8 features) only when cfg.self_attention is True.")
            if any(isinstance(m, (nn.Sigmoid, nn.BatchNorm2d)) for m in D.modules()):
                _fail(f"{what} contains a Sigmoid or a BatchNorm2d.",
                      "D returns raw scores (the hinge loss takes them as they are) and uses no batch norm "
                      "(spectral norm is its regulariser; batch norm would mix real and fake images' statistics).")
            D.eval()  # spectral norm's power iteration runs in train mode only: eval mode is deterministic
            y1, y2 = _fixed_conditions(6, 4), _fixed_conditions(6, 8)
            with torch.no_grad():
                s1 = _run(f"{what}: D(x, y) with x {tuple(x.shape)}", "forward(x, y): x (B, 3, S, S), y (B, 24) -> (B,).",
                          lambda: D(x, y1))
                if tuple(s1.shape) != (6,):
                    _fail(f"D(x, y) has shape {tuple(s1.shape)} for 6 images, expected (6,): one score per image.",
                          "flatten the final score with .view(-1) (or squeeze the last axis).")
                s2, s12, s0 = D(x, y2), D(x, y1 + y2), D(x, torch.zeros_like(y1))
            if torch.allclose(s1, s2, atol=1e-6):
                _fail(f"{what}: D(x, y) does not depend on y.", "add the projection term sum(embed(y) * h) to the score.")
            gap = float((s1 + s2 - s12 - s0).abs().max())
            if gap > 1e-3 * (1 + float(s1.abs().max())):
                _fail(f"{what}: the score is not linear in the condition (D(x, y1) + D(x, y2) - D(x, y1 + y2) - D(x, 0) "
                      f"is up to {gap:.4g}): y should enter only through the projection.",
                      "score = linear(h) + sum(embed(y) * h, dim=1), with h the pooled features of x alone and embed "
                      "a bias-free nn.Linear(24, channels): no label planes, no nonlinearity applied to y.")
            if attention:
                _check_attention_in_forward(D, lambda: D(x, y1), s1, f"{what}: ")
    _ok("discriminator (projection; spectral norm and self-attention on and off)")


# ----------------------------------------------------------------------------- TODO 5: hinge losses
def _fixed_scores() -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor([2.5, 0.3, -0.4, 1.0, 0.9, -2.0]), torch.tensor([-1.5, 0.2, 1.7, -0.9, -1.0, 0.6]))


def check_hinge_losses(d_loss: Callable, g_loss: Callable) -> None:
    """The hinge losses on fixed scores, against the stored values (and on scores where hinge and BCE differ).

    Args:
        d_loss: the notebook's ``d_loss_hinge(score_real, score_fake)``, called with its arguments by name.
        g_loss: the notebook's ``g_loss_hinge(score_fake)``.
    """
    want = expected("iclevr")["losses"]
    real, fake = _fixed_scores()
    hint_d = ("J_D = mean(relu(1 - score_real)) + mean(relu(1 + score_fake)): real scores above +1 and fake scores "
              "below -1 cost nothing.")
    _compare("d_loss_hinge(score_real, score_fake)", _call_as_declared(d_loss, "d_loss_hinge", score_real=real,
                                                                       score_fake=fake), want["d_loss"], hint_d)
    _compare("d_loss_hinge on 3 fake scores", _call_as_declared(d_loss, "d_loss_hinge", score_real=real,
                                                                score_fake=fake[:3]), want["d_loss_short"],
             "average real and fake scores separately (two means), so batches of different sizes work.")
    _compare("g_loss_hinge(score_fake)", _call_as_declared(g_loss, "g_loss_hinge", score_fake=fake), want["g_loss"],
             "J_G = -mean(score_fake): no hinge for G.")
    _ok("hinge losses")


# ----------------------------------------------------------------------------- TODO 6: optimizers and the step
def check_iclevr_train_step(train_step: Callable, make_optimizers: Callable, generator_cls: Callable[..., nn.Module],
                            discriminator_cls: Callable[..., nn.Module], cfg: Any, x_real: torch.Tensor,
                            y: torch.Tensor) -> None:
    """``make_optimizers`` gives two Adam optimizers (lr_G, lr_D, betas from the config), each owning one network,
    and ``train_step(x_real, y, G, D, opt_G, opt_D)`` updates D, then G, without gradients reaching G in the D step.

    Args:
        train_step: the notebook's ``train_step(x_real, y, G, D, opt_G, opt_D)``.
        make_optimizers: the notebook's ``make_optimizers(G, D, cfg) -> (opt_G, opt_D)``.
        generator_cls, discriminator_cls: the notebook's classes; fresh networks are built from ``cfg``.
        cfg: the notebook's config.
        x_real, y: a batch of real images (B, 3, S, S) in [-1, 1] and their conditions (B, 24).
    """
    torch.manual_seed(0)
    device = x_real.device
    G = _build(generator_cls, "Generator(cfg)", "see TODO 3.", cfg).to(device)
    D = _build(discriminator_cls, "Discriminator(cfg)", "see TODO 4.", cfg).to(device)
    optimizers = make_optimizers(G, D, cfg)
    if not (isinstance(optimizers, tuple) and len(optimizers) == 2):
        _fail(f"make_optimizers returned {type(optimizers).__name__}, expected a pair (opt_G, opt_D).",
              "return opt_G, opt_D.")
    opt_G, opt_D = optimizers
    for opt, name, lr in ((opt_G, "opt_G", cfg.lr_G), (opt_D, "opt_D", cfg.lr_D)):
        if not isinstance(opt, torch.optim.Adam):
            _fail(f"{name} is {type(opt).__name__}, expected torch.optim.Adam.", "use torch.optim.Adam for both networks.")
        group = opt.param_groups[0]
        if abs(float(group["lr"]) - lr) > 1e-12 or tuple(group["betas"]) != (cfg.beta1, cfg.beta2):
            _fail(f"{name} has lr={group['lr']} and betas={tuple(group['betas'])}, expected lr={lr} and "
                  f"betas={(cfg.beta1, cfg.beta2)} from the config.",
                  "opt_G uses cfg.lr_G, opt_D cfg.lr_D; both betas=(cfg.beta1, cfg.beta2).")
    check_train_step(lambda xb, yb: train_step(xb, yb, G, D, opt_G, opt_D), G, D, opt_G, opt_D, x_real, y)


# ----------------------------------------------------------------------------- TODO 7: generate
def check_generate(generate: Callable, model: nn.Module | None = None) -> None:
    """The ``generate`` contract (helpers.checks.contract.ICLEVR): float32 (n, 3, 64, 64) in [0, 1] for one condition
    (names or a 24-hot vector) or one condition per image, seeds, and a ValueError for each bad condition.

    Args:
        generate: the notebook's ``generate(n, objects, seed=None)``.
        model: the network generate samples from; when given, its train/eval mode must survive a call.
    """
    check_contract(generate, ICLEVR, model=model)


# ----------------------------------------------------------------------------- what the grader calls
def _grade_train_step(names: Defined) -> None:
    cfg = names["cfg"]
    b = min(cfg.batch_size, 16)
    check_iclevr_train_step(names["train_step"], names["make_optimizers"], names["Generator"],
                            names["Discriminator"], cfg, names["x_train"][:b], names["y_train"][:b])


GRADED = [
    GradedCheck("iclevr.self_attention", "TODO 1: the self-attention block",
                lambda names: check_self_attention(names["SelfAttention"]), check="check_self_attention"),
    GradedCheck("iclevr.conditional_batchnorm", "TODO 2: conditional batch norm",
                lambda names: check_conditional_batchnorm(names["ConditionalBatchNorm2d"]),
                check="check_conditional_batchnorm"),
    GradedCheck("iclevr.generator", "TODO 3: the conditional generator",
                lambda names: check_iclevr_generator(names["Generator"], names["cfg"]), check="check_iclevr_generator"),
    GradedCheck("iclevr.discriminator", "TODO 4: the projection discriminator with the spectral-norm switch",
                lambda names: check_iclevr_discriminator(names["Discriminator"], names["cfg"]),
                check="check_iclevr_discriminator"),
    GradedCheck("iclevr.losses", "TODO 5: the hinge losses",
                lambda names: check_hinge_losses(d_loss=names["d_loss_hinge"], g_loss=names["g_loss_hinge"]),
                check="check_hinge_losses"),
    GradedCheck("iclevr.train_step", "TODO 6: the optimizers and the training step", _grade_train_step,
                check="check_iclevr_train_step"),
]

# The notebook's call of the generate contract (the row "iclevr.generate" of POINTS).
GENERATE_CHECK = "check_generate"


def graded_generate(names: Defined) -> dict:
    """What the grader checks the generate contract with: the function and the network it samples from."""
    return {"generate": names["generate"], "model": names.get("G")}
