"""Lab 3 model files (helpers.malaria.models): the notebook's own networks saved as TorchScript and read
back without any Python unpickling; refusals that name the file; and the stand-alone malaria_test.py.

There is no reference architecture in helpers/: every network here is the notebook's own class.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers.checkpoints import CheckpointError
from helpers.malaria import models as model_files
from helpers.malaria.models import MalariaGANConfig, load_model, save_model
from helpers.sampling import is_trained

from lab3_support import NOTEBOOK, REPO, notebook_namespace

CLASSES = {"generator": "Generator", "discriminator": "Discriminator", "multitask": "MultiTaskDiscriminator"}


@pytest.fixture(scope="module")
def nb():
    return notebook_namespace()


def build(nb, architecture: str, config: MalariaGANConfig | None = None) -> nn.Module:
    """A notebook network with PyTorch's default init and BatchNorm statistics of its own (outputs that
    vary from input to input, so a mix-up of weights or of modes shows), in eval mode."""
    config = config or MalariaGANConfig()
    torch.manual_seed(0)
    model = nb[CLASSES[architecture]](config)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.reset_parameters()
    x = torch.randn(8, config.latent_dim) if architecture == "generator" else torch.randn(8, 3, config.image_size, config.image_size)
    with torch.no_grad():
        model.train()(x)  # updates the running mean and variance
    return model.eval()


def model_input(architecture: str, config: MalariaGANConfig, n: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(11)
    if architecture == "generator":
        return torch.randn(n, config.latent_dim, generator=gen)
    return torch.rand(n, 3, config.image_size, config.image_size, generator=gen) * 2 - 1


def outputs(model: nn.Module, x: torch.Tensor) -> tuple:
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, tuple) else (out,)


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("size", [32, 64])
def test_notebook_networks_round_trip(nb, tmp_path, size):
    config = MalariaGANConfig(image_size=size, d_channels=32)
    for architecture in CLASSES:
        model = build(nb, architecture, config).train()  # saved in eval mode, left as it was
        path = save_model(model, tmp_path / f"{architecture}.pt", architecture)
        assert model.training
        loaded = load_model(path, architecture)
        assert loaded.config == config and not loaded.training and is_trained(loaded)
        x = model_input(architecture, config)  # a batch size the trace never saw
        for want, got in zip(outputs(model.eval(), x), outputs(loaded, x), strict=True):
            assert torch.allclose(want, got, atol=1e-6), architecture
    M, L = build(nb, "multitask", config), load_model(tmp_path / "multitask.pt")
    x = model_input("multitask", config)
    with torch.no_grad():
        assert torch.allclose(M.forward_logits(x)[1], L.forward_logits(x)[1], atol=1e-6)
        assert torch.allclose(M.classify_logits(x), L.classify_logits(x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["discriminator.pt", "generator.pt", "multitask.pt"]


def test_loaded_multitask_exposes_the_cam_activation(nb, tmp_path):
    """The loaded model's cam_layer sees the activation of the notebook model's cam_layer, and the
    gradient of a stage logit with respect to it is the notebook model's."""
    M = build(nb, "multitask")
    L = load_model(save_model(M, tmp_path / "M.pt", "multitask"))
    x = model_input("multitask", M.config)
    grads = []
    for model in (M, L):
        caught = []
        handle = model.cam_layer.register_forward_hook(lambda m, i, o: caught.append(o))
        logits = model.classify_logits(x)
        handle.remove()
        grads.append((caught[0], torch.autograd.grad(logits[:, 2].sum(), caught[0])[0]))
    assert grads[0][0].shape == (5, 256, 4, 4)
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6) and torch.allclose(grads[0][1], grads[1][1], atol=1e-6)


# ----------------------------------------------------------------------------- what save_model refuses
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the frozen batch size below is the point
def test_save_refusals(nb, tmp_path):
    with pytest.raises(TypeError, match="config must be the MalariaGANConfig"):
        save_model(nn.Linear(1, 1), tmp_path / "n.pt", "generator")
    with pytest.raises(TypeError, match="forward_logits"):
        save_model(nb["Discriminator"](MalariaGANConfig()), tmp_path / "d.pt", "multitask")
    with pytest.raises(ValueError, match="Unknown model architecture"):
        save_model(nb["Discriminator"](MalariaGANConfig()), tmp_path / "d.pt", "resnet")

    class FixedBatch(nb["Generator"]):
        def forward(self, z):  # len(z) is a Python number while tracing: the batch size would be frozen
            x = self.project(z).view(len(z), self.config.g_channels, 4, 4)
            return self.upsample(self.project_norm(x))

    with pytest.raises(ValueError, match="batch size"):
        save_model(FixedBatch(MalariaGANConfig()).eval(), tmp_path / "f.pt", "generator")
    assert not list(tmp_path.iterdir())  # nothing written on refusal


# ----------------------------------------------------------------------------- loading runs no unpickling
class Payload:
    """Unpickling this object runs ``exec(code)`` (what a malicious .pt file does)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def _writes(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('payload ran')"


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "G.pt"
    torch.save({"format": 1, "architecture": "generator", "models": {"generator": Payload(_writes(marker))}}, evil)
    torch.load(evil, weights_only=False)  # the payload is live: Python's unpickler runs it
    assert marker.read_text() == "payload ran"
    marker.unlink()
    with pytest.raises(CheckpointError, match=re.escape(str(evil)) + r".*looks like a torch.save file"):
        load_model(evil, "generator")
    assert not marker.exists()


@pytest.mark.parametrize("member", ["data.pkl", "constants.pkl"])
def test_a_payload_inside_a_real_model_file_is_refused_and_never_runs(nb, tmp_path, member):
    """A genuine model file whose pickled part is swapped for a payload: the archive and its JSON are
    valid, so it reaches torch.jit.load, whose C++ reader knows tensors and TorchScript types only."""
    good = save_model(build(nb, "generator"), tmp_path / "good.pt", "generator")
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, pickle.dumps(Payload(_writes(marker)), protocol=2)
                         if info.filename.endswith("/" + member) else data)
    with pytest.raises(CheckpointError, match=re.escape(str(evil)) + r" could not be read as a TorchScript model.*exec"):
        load_model(evil)
    assert not marker.exists()
    rewritten = tmp_path / "rewritten.pt"  # the same rewrite without the payload loads: the payload is what is refused
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(rewritten, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    load_model(rewritten)


def test_loading_uses_torchscripts_reader_and_no_python_unpickler(nb, tmp_path, monkeypatch):
    model = build(nb, "multitask")
    path = save_model(model, tmp_path / "M.pt", "multitask")

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model used Python's unpickler")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    calls = []
    jit_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or jit_load(*a, **k))
    loaded = load_model(path)
    assert calls == [(str(path),)]
    x = model_input("multitask", model.config)
    for want, got in zip(outputs(model, x), outputs(loaded, x), strict=True):
        assert torch.allclose(want, got, atol=1e-6)


# ----------------------------------------------------------------------------- other refusals name the file
def test_load_refusals(nb, tmp_path):
    path = save_model(build(nb, "multitask"), tmp_path / "M.pt", "multitask")
    with pytest.raises(CheckpointError, match="holds a 'multitask' model, not a 'generator'"):
        load_model(path, "generator")
    with pytest.raises(ValueError, match="Unknown model architecture"):
        load_model(path, "resnet")
    with pytest.raises(CheckpointError, match="No model file"):
        load_model(tmp_path / "missing.pt")
    torch.save({"models": {"G": {"w": torch.zeros(2)}}}, tmp_path / "checkpoint.pt")  # a training checkpoint
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "checkpoint.pt")) + ".*torch.save file"):
        load_model(tmp_path / "checkpoint.pt")
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "notes.pt")) + ".*not a complete zip archive"):
        load_model(tmp_path / "notes.pt")


def test_truncated_and_corrupt_files_name_the_file(nb, tmp_path):
    data = save_model(build(nb, "generator"), tmp_path / "G.pt", "generator").read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        truncated = tmp_path / f"truncated_{cut}.pt"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=re.escape(str(truncated)) + ".*truncated, corrupt"):
            load_model(truncated)
    with zipfile.ZipFile(tmp_path / "G.pt") as archive:  # flip a byte inside the weights of the first layer
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    offset = info.header_offset + 30 + name_length + extra_length + 8  # local header, then the member's bytes
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:])
    with pytest.raises(CheckpointError, match=re.escape(str(corrupt)) + " is corrupt: the member .*data/0 fails its checksum"):
        load_model(corrupt)


def test_another_format_or_unknown_config_is_refused(nb, tmp_path):
    good = save_model(build(nb, "generator"), tmp_path / "G.pt", "generator")

    def with_metadata(name: str, **changes) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename.endswith("/extra/" + model_files.METADATA_NAME):
                    meta = json.loads(data)
                    meta.update(changes)
                    data = json.dumps(meta).encode()
                dst.writestr(info.filename, data)
        return out

    with pytest.raises(CheckpointError, match="format 3; this code reads format 2"):
        load_model(with_metadata("future.pt", format=3))
    with pytest.raises(CheckpointError, match=r"config fields this code does not know: \['depth'\]"):
        load_model(with_metadata("depth.pt", config={**MalariaGANConfig().__dict__, "depth": 3}))
    with pytest.raises(CheckpointError, match=r"outputs of shapes \[\(2, 3, 32, 32\)\], not \[\(2, 3, 64, 64\)\]"):
        load_model(with_metadata("lies.pt", config={**MalariaGANConfig().__dict__, "image_size": 64}))


# ----------------------------------------------------------------------------- malaria_test.py
def _run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "malaria_test.py", *args], capture_output=True, text=True, cwd=REPO, timeout=180)


def test_script_classifier(nb, tmp_path):
    M = build(nb, "multitask")
    weights = save_model(M, tmp_path / "multitask.pt", "multitask")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "cell.png")
    x = torch.from_numpy(np.array(Image.open(tmp_path / "cell.png"))).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        score, probs = M(x)
    run = _run_script("multitask", str(weights), str(tmp_path / "cell.png"))
    assert run.returncode == 0, run.stderr
    printed = {m[0]: float(m[1]) for m in re.findall(r"^\s+(ring|trophozoite|schizont|gametocyte)\s+([0-9.]+)", run.stdout, re.M)}
    assert list(printed) == ["ring", "trophozoite", "schizont", "gametocyte"]
    assert np.allclose(list(printed.values()), probs[0].numpy(), atol=1e-4)
    assert float(re.search(r"score\s+(-?[0-9.]+)", run.stdout).group(1)) == pytest.approx(score.item(), abs=1e-4)


def test_script_errors(nb, tmp_path, capsys):
    """What the command line says about a wrong architecture, a missing image and a broken file (in-process)."""
    from malaria_test import main

    weights = save_model(build(nb, "multitask"), tmp_path / "multitask.pt", "multitask")
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "cell.png")
    assert main(["discriminator", str(weights), str(tmp_path / "cell.png")]) == 2
    assert "holds a 'multitask' model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["multitask", str(weights)])
    assert exit_.value.code == 2 and "multitask needs an image" in capsys.readouterr().err
    (tmp_path / "broken.pt").write_bytes(weights.read_bytes()[:5000])
    assert main(["multitask", str(tmp_path / "broken.pt"), str(tmp_path / "cell.png")]) == 2
    assert f"error: {tmp_path / 'broken.pt'}" in capsys.readouterr().err
    assert main(["generator", str(weights), "2", "--gradcam", str(NOTEBOOK)]) == 2
    assert "use grad_cam with a multitask model file" in capsys.readouterr().err
    assert main(["multitask", str(weights), str(tmp_path / "cell.png"), "--gradcam", str(tmp_path / "none.ipynb")]) == 2
    assert "No notebook at" in capsys.readouterr().err


def test_script_gradcam_with_the_notebooks_grad_cam(nb, tmp_path):
    weights = save_model(build(nb, "multitask"), tmp_path / "multitask.pt", "multitask")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "cells.npy", rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    run = _run_script("multitask", str(weights), str(tmp_path / "cells.npy"), "--out", str(tmp_path / "out"),
                      "--gradcam", str(NOTEBOOK))
    assert run.returncode == 0, run.stderr
    with Image.open(tmp_path / "out" / "gradcam.png") as im:
        assert im.size[0] > 100 and im.size[1] > 200  # three rows of (patch, map)


def test_script_generator(nb, tmp_path):
    weights = save_model(build(nb, "generator"), tmp_path / "G.pt", "generator")
    run = _run_script("generator", str(weights), "3", "--out", str(tmp_path / "out"), "--seed", "7")
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["generated_000.png", "generated_001.png", "generated_002.png", "grid.png"]
    with Image.open(tmp_path / "out" / "generated_001.png") as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_test_function_in_process(nb, tmp_path):
    from malaria_test import test as malaria_test

    G = build(nb, "generator")
    weights = save_model(G, tmp_path / "G.pt", "generator")
    z = torch.randn(2, 100)
    out = malaria_test("generator", weights, z.numpy(), out_dir=tmp_path / "a")
    with torch.no_grad():
        assert torch.allclose(out["images"], G(z), atol=1e-6)
    again = malaria_test("generator", weights, 4, out_dir=tmp_path / "b", seed=3)["images"]
    assert torch.equal(again, malaria_test("generator", weights, 4, out_dir=tmp_path / "c", seed=3)["images"])
    M = build(nb, "multitask", MalariaGANConfig(image_size=64))
    D = save_model(M, tmp_path / "M64.pt", "multitask")
    res = malaria_test("multitask", D, torch.zeros(3, 3, 40, 40))  # a batch, resized to 64 px
    assert res["probabilities"].shape == (3, 4) and res["scores"].shape == (3,) and "cams" not in res
    # With the notebook's grad_cam: the maps of the loaded model are those of the notebook model.
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    res = malaria_test("multitask", D, x, out_dir=tmp_path / "cam", grad_cam=nb["grad_cam"])
    top = res["probabilities"].argmax(dim=1)
    want = nb["grad_cam"](M, M.cam_layer, x, top, forward=M.classify_logits)
    assert torch.allclose(res["cams"], want, atol=1e-5) and res["gradcam_path"] == tmp_path / "cam" / "gradcam.png"
    assert res["gradcam_path"].is_file()
