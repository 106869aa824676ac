"""Instant checks of the malaria lab (dcgan_malaria.ipynb)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from helpers.checks.graded import Defined, GradedCheck
from helpers.checks.common import (CheckFailed, _call_as_declared, _carries_grad, _compare, _compare_values, _fail,
                                   _fixed_input, _fixed_logits, _fixed_weights, _ok, check_train_step, expected)
from helpers.checks.vanilla import check_generate

__all__ = ['CheckFailed', 'check_generate', 'check_grad_cam', 'check_lsgan_losses', 'check_malaria_discriminator',
           'check_malaria_generator', 'check_malaria_head', 'check_stage_loss', 'check_train_step']


# ---- malaria lab (dcgan_malaria.ipynb) -------------------------------------------------------
# The expected values in answers/malaria.json come from the solution notebook (python -m
# helpers.checks.store): the state_dict layouts of the TODOs, outputs under fixed weights, and loss
# values. Nothing here (or in helpers.malaria) builds a reference model, so no solution can be read
# off these checks.

_MALARIA_HINT_LAYOUT = ("use the attribute names and sizes of the TODO (later cells and GradCAM reach layers by "
                        "name): compare your print(model) with the table in the TODO.")


def _malaria_config(image_size: int):
    from helpers.malaria.models import MalariaGANConfig  # sizes only, no architecture

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
              "keep self.config = config in __init__: save_model stores it in the model file for malaria_test.py.")
    return model


def _check_layout(model: nn.Module, key: str, what: str) -> None:
    from helpers.malaria.models import layout_differences, state_dict_layout

    diffs = layout_differences(state_dict_layout(model), expected("malaria")["layouts"][key])
    if diffs:
        _fail(f"{what} does not have the expected parameters: " + "; ".join(diffs) + ".", _MALARIA_HINT_LAYOUT)


@torch.no_grad()
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
    """The least-squares losses J_D and J_G on fixed raw scores against the committed values.

    Args:
        d_loss: the notebook's ``lsgan_d_loss(score_real, score_fake)``, called with its arguments by name.
        g_loss: the notebook's ``lsgan_g_loss(score_fake)``.
    """
    exp = expected("malaria")["losses"]
    real, fake = _fixed_logits(requires_grad=True)
    ld = _call_as_declared(d_loss, "lsgan_d_loss", score_real=real, score_fake=fake)
    _compare("lsgan_d_loss(score_real, score_fake)", ld, exp["lsgan_d"],
             "J_D = 1/(2m) sum (D(x) - 1)^2 + 1/(2m) sum D(G(z))^2: targets 1 for real and 0 for fake, "
             "the factor 1/2 on both terms, and no sigmoid (the scores are raw).")
    _compare("lsgan_d_loss with (m, 1) scores", d_loss(score_real=real[:, None], score_fake=fake[:, None]), exp["lsgan_d"],
             "average over all entries (.mean()) so that (m,) and (m, 1) scores give the same loss.")
    lg = _call_as_declared(g_loss, "lsgan_g_loss", score_fake=fake)
    _compare("lsgan_g_loss(score_fake)", lg, exp["lsgan_g"],
             "J_G = 1/m sum (D(G(z)) - 1)^2: target 1 for the fakes and no factor 1/2.")
    if not _carries_grad(ld, lg):
        _fail("a loss does not carry gradients back to the scores.", "compute it with torch operations, no .item()/.detach()/numpy.")
    _ok("least-squares losses")


def _fixed_stage_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed stage logits (6, 4) and multi-hot targets (6, 4) for check_stage_loss (plain numbers)."""
    real, fake = _fixed_logits()
    logits = torch.stack([real, fake, real.flip(0), -fake], dim=1)  # (6, 4)
    targets = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]],
                           dtype=torch.float32)
    return logits, targets


def check_stage_loss(stage_loss: Callable) -> None:
    """J_C, the multi-label binary cross-entropy of the stage logits, on fixed inputs.

    Args:
        stage_loss: the notebook's ``stage_loss_bce(logits_stage, targets)``, called with its arguments by name.
    """
    exp = expected("malaria")["losses"]
    logits, targets = _fixed_stage_batch()
    logits.requires_grad_(True)
    loss = _call_as_declared(stage_loss, "stage_loss_bce", logits_stage=logits, targets=targets)
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


# ----------------------------------------------------------------------------- what the grader calls
def _grade_train_step(names: Defined, step: str, G: str, D: str, opt_G: str, opt_D: str) -> None:
    n = names["cfg"].batch_size
    check_train_step(names[step], names[G], names[D], names[opt_G], names[opt_D], names["x_train"][:n],
                     names["y_train"][:n])


GRADED = [
    GradedCheck("malaria.generator", "TODO 1: the generator", lambda names: check_malaria_generator(names["Generator"]),
                check="check_malaria_generator"),
    GradedCheck("malaria.discriminator", "TODO 2: the discriminator",
                lambda names: check_malaria_discriminator(names["Discriminator"]), check="check_malaria_discriminator"),
    GradedCheck("malaria.losses", "TODO 3: the least-squares losses",
                lambda names: check_lsgan_losses(d_loss=names["lsgan_d_loss"], g_loss=names["lsgan_g_loss"]),
                check="check_lsgan_losses"),
    GradedCheck("malaria.train_step", "TODO 4-5: optimizers and the training step",
                lambda names: _grade_train_step(names, "train_step", "G", "D", "opt_G", "opt_D"),
                check="check_train_step(train_step)"),
    GradedCheck("malaria.head", "TODO 7: the multi-task discriminator",
                lambda names: check_malaria_head(names["MultiTaskDiscriminator"]), check="check_malaria_head"),
    GradedCheck("malaria.stage_loss", "TODO 8: the classification loss",
                lambda names: check_stage_loss(names["stage_loss_bce"]), check="check_stage_loss"),
    GradedCheck("malaria.train_step_multitask", "TODO 9: the multi-task training step",
                lambda names: _grade_train_step(names, "train_step_mt", "G_mt", "D_mt", "opt_G_mt", "opt_D_mt"),
                check="check_train_step(train_step_mt)"),
    GradedCheck("malaria.grad_cam", "GradCAM (the TODO in grad_cam)", lambda names: check_grad_cam(names["grad_cam"]),
                check="check_grad_cam"),
]

# The notebook's call of the generate contract (the row "malaria.generate" of POINTS).
GENERATE_CHECK = "check_generate"


def graded_generate(names: Defined) -> dict:
    """What the grader checks the generate contract with: the function, one patch's shape, the network."""
    size = names["cfg"].image_size
    return {"generate": names["generate"], "shape": (3, size, size), "model": names.get("G")}
