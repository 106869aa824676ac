"""Lab 3 models, the notebook's LSGAN and stage losses, save/load, and the stand-alone malaria_test.py script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers.checkpoints import CheckpointError
from helpers.malaria.models import (
    Discriminator, Generator, MalariaGANConfig, MultiTaskDiscriminator, load_model, save_model, state_dict_layout,
)
from helpers.models import count_parameters

from lab3_support import notebook_namespace

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the notebook's losses
# The LSGAN losses and J_C are student code: they live only in dcgan_malaria.ipynb. These tests run
# the notebook's own definitions (its imports, functions and classes; nothing else).
@pytest.fixture(scope="module")
def nb():
    return notebook_namespace()


def test_lsgan_d_loss_by_hand(nb):
    lsgan_d_loss = nb["lsgan_d_loss"]
    score_real = torch.tensor([0.5, 1.5, 1.0])
    score_fake = torch.tensor([0.0, 1.0, -1.0, 2.0])  # a different m for the fake term
    # 1/(2*3) * (0.25 + 0.25 + 0) + 1/(2*4) * (0 + 1 + 1 + 4) = 0.5/6 + 6/8
    assert lsgan_d_loss(score_real, score_fake).item() == pytest.approx(0.5 / 6 + 6 / 8)
    assert lsgan_d_loss(score_real[:, None], score_fake[:, None]).item() == pytest.approx(0.5 / 6 + 6 / 8)
    assert lsgan_d_loss(torch.ones(5), torch.zeros(5)).item() == 0.0  # the optimum of D


def test_lsgan_d_loss_gradient_by_hand(nb):
    score_real = torch.tensor([0.5, 1.5, 1.0], requires_grad=True)
    score_fake = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    nb["lsgan_d_loss"](score_real, score_fake).backward()
    # d/ds_i of 1/(2m) (s_i - 1)^2 = (s_i - 1)/m ; of 1/(2m) s_i^2 = s_i/m
    assert torch.allclose(score_real.grad, torch.tensor([-0.5, 0.5, 0.0]) / 3)
    assert torch.allclose(score_fake.grad, torch.tensor([0.0, 1.0, -1.0]) / 3)


def test_lsgan_g_loss_by_hand(nb):
    lsgan_g_loss = nb["lsgan_g_loss"]
    score_fake = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    loss = lsgan_g_loss(score_fake)
    assert loss.item() == pytest.approx((1 + 0 + 4) / 3)  # 1/m sum (s - 1)^2
    loss.backward()
    assert torch.allclose(score_fake.grad, 2 * (score_fake.detach() - 1) / 3)
    assert lsgan_g_loss(torch.ones(4)).item() == 0.0


def test_stage_loss_by_hand(nb):
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # -log sigma(0), -log(1 - sigma(2)), -log(1 - sigma(-1)), -log sigma(0.5), averaged over the 4 entries
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    want = -(np.log(sig(0.0)) + np.log(1 - sig(2.0)) + np.log(1 - sig(-1.0)) + np.log(sig(0.5))) / 4
    assert nb["stage_loss_bce"](logits, targets).item() == pytest.approx(want, rel=1e-6)
    big = torch.tensor([[200.0, -200.0]])  # saturated: from logits, not sigmoid + BCELoss
    assert nb["stage_loss_bce"](big, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("size,d_channels", [(32, 64), (64, 64), (32, 16)])
def test_notebook_architectures_match_the_script(nb, size, d_channels):
    """The notebook's classes have the state_dict keys and shapes malaria_test.py rebuilds, and the same outputs."""
    cfg = MalariaGANConfig(image_size=size, d_channels=d_channels)
    pairs = ((nb["Generator"], Generator, torch.randn(3, 100)),
             (nb["Discriminator"], Discriminator, torch.randn(3, 3, size, size)),
             (nb["MultiTaskDiscriminator"], MultiTaskDiscriminator, torch.randn(3, 3, size, size)))
    for notebook_cls, script_cls, x in pairs:
        mine, ref = notebook_cls(cfg), script_cls(cfg)
        assert state_dict_layout(mine) == state_dict_layout(ref), notebook_cls.__name__
        ref.load_state_dict(mine.state_dict())  # same weights -> same function
        mine.eval(), ref.eval()
        with torch.no_grad():
            a, b = mine(x), ref(x)
        for t, u in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.allclose(t, u, atol=1e-6), notebook_cls.__name__
    M = nb["MultiTaskDiscriminator"](cfg)
    assert M.cam_layer is M.features[-1]


def test_save_model_accepts_notebook_classes_with_the_same_layout(nb, tmp_path):
    torch.manual_seed(0)
    G = nb["Generator"](MalariaGANConfig()).eval()
    path = save_model(G, tmp_path / "G.pt", architecture="generator")
    loaded = load_model(path, "generator")
    z = torch.randn(2, 100)
    with torch.no_grad():
        assert torch.equal(G(z), loaded(z))
    with pytest.raises(TypeError, match="pass it, e.g. save_model"):
        save_model(G, tmp_path / "G2.pt")  # a notebook class needs its architecture named
    with pytest.raises(ValueError, match="unexpected keys: head"):
        save_model(nb["MultiTaskDiscriminator"](MalariaGANConfig()), tmp_path / "D.pt", architecture="discriminator")


def test_save_model_refuses_a_different_layout(tmp_path):
    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = MalariaGANConfig()
            self.project = nn.Linear(100, 64)  # not 128 * 4 * 4

    with pytest.raises(ValueError, match=r"project.weight: \(64, 100\) instead of \(2048, 100\)"):
        save_model(Wrong(), tmp_path / "w.pt", architecture="generator")
    no_config = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="config must be the MalariaGANConfig"):
        save_model(no_config, tmp_path / "n.pt", architecture="generator")
    assert not list(tmp_path.iterdir())  # nothing written on refusal


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size", [32, 64])
def test_generator_and_discriminator_shapes(size):
    torch.manual_seed(0)
    cfg = MalariaGANConfig(image_size=size)
    G, D = Generator(cfg), Discriminator(cfg)
    z = torch.randn(4, 100)
    x = G(z)
    assert x.shape == (4, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh
    assert G.project.out_features == 128 * 4 * 4  # reshaped to (128, 4, 4)
    assert D(x).shape == (4,)
    # Every conv of the trunk halves the side: S -> S/2 -> ... -> 4.
    sides = []
    hooks = [blk.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for blk in D.features]
    D(x)
    for h in hooks:
        h.remove()
    assert sides == [size // 2 ** (k + 1) for k in range(len(sides))] and sides[-1] == 4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.features[0])  # none on the input layer
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, torch.nn.LeakyReLU))


def test_parameter_counts():
    cfg = MalariaGANConfig()  # 32 px
    g = (100 * 2048 + 2048) + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 32 * 16 + 2 * 32 + 32 * 3 * 16 + 3
    d = (3 * 64 * 16 + 64) + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256 + (256 * 16 + 1)
    head = (256 * 16 * 128 + 128) + (128 * 4 + 4)
    assert count_parameters(Generator(cfg)) == g
    assert count_parameters(Discriminator(cfg)) == d
    assert count_parameters(MultiTaskDiscriminator(cfg)) == d + head


def test_multitask_head_output():
    torch.manual_seed(0)
    M = MultiTaskDiscriminator()
    x = torch.randn(6, 3, 32, 32) * 3  # large inputs: probabilities must still be in [0, 1]
    score, probs = M(x)
    assert score.shape == (6,) and probs.shape == (6, 4)
    assert probs.min() >= 0 and probs.max() <= 1
    score2, logits = M.forward_logits(x)
    assert torch.allclose(probs, torch.sigmoid(logits)) and torch.allclose(score, score2)
    assert torch.allclose(M.classify_logits(x), logits)
    # The head reads the second-to-last conv (the last halving block), (B, 256, 4, 4).
    seen = {}
    h = M.head.register_forward_hook(lambda m, i, o: seen.update(shape=i[0].shape))
    M(x)
    h.remove()
    assert seen["shape"] == (6, 256, 4, 4)
    assert len(M.head) == 4 and sum(isinstance(m, torch.nn.Linear) for m in M.head) == 2
    # Same trunk and score names as the plain discriminator: its weights load into the multi-task one.
    M.load_state_dict(Discriminator().state_dict(), strict=False)


# ----------------------------------------------------------------------------- save / load
def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    for model, x in ((Generator(MalariaGANConfig(image_size=64)), torch.randn(2, 100)),
                     (Discriminator(), torch.randn(2, 3, 32, 32)),
                     (MultiTaskDiscriminator(), torch.randn(2, 3, 32, 32))):
        model.eval()
        path = save_model(model, tmp_path / f"{type(model).__name__}.pt")
        loaded = load_model(path)
        assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
        with torch.no_grad():
            a, b = model(x), loaded(x)
        for t, u in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.equal(t, u)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Discriminator.pt", "Generator.pt", "MultiTaskDiscriminator.pt"]
    assert load_model(tmp_path / "Generator.pt").config.image_size == 64


def test_load_errors(tmp_path):
    path = save_model(MultiTaskDiscriminator(), tmp_path / "M.pt")
    with pytest.raises(CheckpointError, match="holds a 'multitask' model, not a 'generator'"):
        load_model(path, "generator")
    with pytest.raises(ValueError, match="Unknown model architecture"):
        load_model(path, "resnet")
    with pytest.raises(CheckpointError, match="No model file"):
        load_model(tmp_path / "missing.pt")
    torch.save({"models": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Lab 3 model file"):
        load_model(tmp_path / "other.pt")
    torch.save({"models": {"x": Path("a")}}, tmp_path / "unsafe.pt")  # an arbitrary object: refused by weights_only
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "unsafe.pt")


# ----------------------------------------------------------------------------- malaria_test.py
def _run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "malaria_test.py", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_script_classifier(tmp_path):
    torch.manual_seed(0)
    M = MultiTaskDiscriminator()
    for m in M.modules():  # default PyTorch init gives probabilities away from 0.5, so a mix-up shows
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.reset_parameters()
    weights = save_model(M, tmp_path / "multitask.pt")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "cell.png")
    x = torch.from_numpy(np.array(Image.open(tmp_path / "cell.png"))).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        score, probs = M.eval()(x)
    run = _run_script("multitask", str(weights), str(tmp_path / "cell.png"))
    assert run.returncode == 0, run.stderr
    printed = {m[0]: float(m[1]) for m in re.findall(r"^\s+(ring|trophozoite|schizont|gametocyte)\s+([0-9.]+)", run.stdout, re.M)}
    assert list(printed) == ["ring", "trophozoite", "schizont", "gametocyte"]
    assert np.allclose(list(printed.values()), probs[0].numpy(), atol=1e-4)
    assert float(re.search(r"score\s+(-?[0-9.]+)", run.stdout).group(1)) == pytest.approx(score.item(), abs=1e-4)
    wrong = _run_script("discriminator", str(weights), str(tmp_path / "cell.png"))
    assert wrong.returncode == 2 and "holds a 'multitask' model" in wrong.stderr
    no_image = _run_script("multitask", str(weights))
    assert no_image.returncode == 2 and "multitask needs an image" in no_image.stderr


def test_script_generator(tmp_path):
    weights = save_model(Generator(), tmp_path / "G.pt")
    run = _run_script("generator", str(weights), "3", "--out", str(tmp_path / "out"), "--seed", "7")
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["generated_000.png", "generated_001.png", "generated_002.png", "grid.png"]
    with Image.open(tmp_path / "out" / "generated_001.png") as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_test_function_in_process(tmp_path):
    from malaria_test import test as malaria_test

    torch.manual_seed(0)
    G = Generator()
    weights = save_model(G, tmp_path / "G.pt")
    z = torch.randn(2, 100)
    out = malaria_test("generator", weights, z.numpy(), out_dir=tmp_path / "a")
    with torch.no_grad():
        assert torch.allclose(out["images"], G.eval()(z), atol=1e-6)
    again = malaria_test("generator", weights, 4, out_dir=tmp_path / "b", seed=3)["images"]
    assert torch.equal(again, malaria_test("generator", weights, 4, out_dir=tmp_path / "c", seed=3)["images"])
    D = save_model(MultiTaskDiscriminator(MalariaGANConfig(image_size=64)), tmp_path / "M64.pt")
    res = malaria_test("multitask", D, torch.zeros(3, 3, 40, 40))  # a batch, resized to 64 px
    assert res["probabilities"].shape == (3, 4) and res["scores"].shape == (3,)
