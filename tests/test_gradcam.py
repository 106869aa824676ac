"""The notebook's hook-based GradCAM against pytorch-grad-cam (PyPI ``grad-cam``) on the same model and input,
the notebook's own multi-task discriminator and the one malaria_test.py loads from a model file."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from helpers.malaria.gradcam import plot_gradcam
from helpers.malaria.models import MalariaGANConfig, load_model, save_model

try:  # the cross-check is required, not optional: a missing package fails the test run
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
except ImportError as err:  # pragma: no cover - environment problem
    raise ImportError(f"{err}. tests/test_gradcam.py compares with pytorch-grad-cam: pip install grad-cam "
                      f"(it is in requirements.txt).") from None


from lab3_support import notebook_namespace

NB = notebook_namespace()
grad_cam = NB["grad_cam"]  # the lab's own implementation (dcgan_malaria.ipynb)


class HeadLogits(nn.Module):
    """The multi-task discriminator seen as a plain classifier: images -> stage logits (B, 4)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classify_logits(x)


def make_model(size: int = 32) -> nn.Module:
    """A seeded multi-task D with PyTorch's default init and non-trivial BatchNorm statistics.

    (The DCGAN init's tiny weights give near-constant maps, which would make the comparison weak.)
    """
    torch.manual_seed(0)
    model = NB["MultiTaskDiscriminator"](MalariaGANConfig(image_size=size))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, size, size))  # train mode: updates running mean/var
    return model


def reference(model: nn.Module, layer: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    with GradCAM(model=HeadLogits(model), target_layers=[layer]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    model.zero_grad(set_to_none=True)
    return torch.from_numpy(maps)


@pytest.mark.parametrize("size", [32, 64])
def test_matches_pytorch_grad_cam(size):
    model = make_model(size)
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    maps = {}
    for layer_name, layer in (("last conv", model.cam_layer), ("one before", model.features[-2])):
        for stage in range(4):
            ours = grad_cam(model, layer, x, stage, forward=model.classify_logits)
            ref = reference(model, layer, x, [stage] * 4)
            assert ours.shape == (4, size, size) and ref.shape == ours.shape
            assert ours.min() >= 0 and ours.max() <= 1
            assert torch.allclose(ours, ref, atol=1e-5), (layer_name, stage, (ours - ref).abs().max())
            maps[layer_name, stage] = ours
    # The comparison means something only when the maps vary: a map is all zero when the ReLU removes
    # everything (allowed, and equal in both), but most must span [0, 1].
    spread = torch.stack([(m.amax(dim=(1, 2)) == 1) & (m.std(dim=(1, 2)) > 0.05) for m in maps.values()])
    assert spread.float().mean() > 0.8
    assert not torch.allclose(maps["last conv", 0], maps["last conv", 1], atol=1e-2)  # stages explained differently


def test_per_image_targets_and_no_side_effects():
    model = make_model()
    model.train()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    targets = [2, 0, 3]
    ours = grad_cam(model, model.cam_layer, x, torch.tensor(targets), forward=model.classify_logits)
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients accumulated
    assert not model.cam_layer._forward_hooks  # hooks removed
    assert torch.allclose(ours, reference(model, model.cam_layer, x, targets), atol=1e-5)


def test_errors_and_plot():
    model = make_model()
    other = nn.Conv2d(3, 3, 3)
    with pytest.raises(ValueError, match="not used"):
        grad_cam(model, other, torch.randn(1, 3, 32, 32), 0, forward=model.classify_logits)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    cams = torch.stack([grad_cam(model, model.cam_layer, x, s, forward=model.classify_logits) for s in range(4)], dim=1)
    fig = plot_gradcam(x, cams, map_titles=["ring", "trophozoite", "schizont", "gametocyte"], row_titles=["a", "b"])
    assert len(fig.axes) == 2 * 5
    matplotlib.pyplot.close(fig)


def test_on_the_model_malaria_test_loads(tmp_path):
    """The notebook's grad_cam and pytorch-grad-cam on a model read from a model file (TorchScript, no
    notebook class) give the maps of the notebook model it was saved from."""
    model = make_model().eval()
    loaded = load_model(save_model(model, tmp_path / "D_multitask.pt", "multitask"), "multitask")
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    for stage in range(4):
        want = grad_cam(model, model.cam_layer, x, stage, forward=model.classify_logits)
        ours = grad_cam(loaded, loaded.cam_layer, x, stage, forward=loaded.classify_logits)
        ref = reference(loaded, loaded.cam_layer, x, [stage] * 3)
        assert torch.allclose(ours, want, atol=1e-5), (stage, (ours - want).abs().max())
        assert torch.allclose(ref, want, atol=1e-5), (stage, (ref - want).abs().max())
    assert (want.amax(dim=(1, 2)) == 1).all()  # maps that vary, so the comparison means something
    assert not loaded.cam_layer._forward_hooks and not loaded.training
