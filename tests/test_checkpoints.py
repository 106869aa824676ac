import os
import pickle
import stat

import pytest
import torch
from torch import nn

from helpers.checkpoints import CheckpointError, CheckpointManager, atomic_save, restore, safe_load
from helpers.data import TensorBatcher
from helpers.training import EMA, TrainingDiverged, fit


def _tiny(width=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 1))


def _setup(width=4):
    model = _tiny(width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt


def _run(folder, num_epochs, width=4, stop_after=None, ema=False):
    """Train a tiny regression with fit(); optionally crash after `stop_after` epochs.

    With ``ema``, an EMA of the model is updated after every step and checkpointed beside it;
    the returned model is then the average.
    """
    torch.manual_seed(1)
    model, opt = _setup(width)
    models = {"M": model}
    if ema:
        models["M_ema"] = EMA(model, decay=0.9)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 3, generator=g)
    y = x.sum(1, keepdim=True)
    batches = TensorBatcher((x, y), batch_size=8)

    def step(xb, yb):
        loss = ((model(xb) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "noise": torch.rand(())}  # rand: RNG state must resume too

    def crash(epoch, history):
        if stop_after is not None and epoch > stop_after:
            raise KeyboardInterrupt  # the Colab disconnect, mid-training

    hist = fit(step, batches, num_epochs, models, {"M": opt}, folder, config={"width": width},
               on_epoch_end=crash, score=lambda h: h["loss"][-1],
               after_step=(lambda: models["M_ema"].update(model)) if ema else None)
    return models["M_ema"] if ema else model, hist


def test_round_trip_restores_models_optimizers_and_history(tmp_path):
    model, opt = _setup()
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    manager = CheckpointManager(tmp_path)
    manager.save(manager.state(3, {"M": model}, {"M": opt}, {"loss": [1.0, 0.5]}, {"lr": 0.01}), score=0.5)
    assert manager.last_path.is_file() and manager.best_path.is_file()
    ckpt = manager.load()
    model2, opt2 = _setup(4)
    with torch.no_grad():
        for p in model2.parameters():
            p.zero_()
    restore(ckpt, {"M": model2}, {"M": opt2}, path=manager.last_path)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert ckpt["epoch"] == 3 and ckpt["history"]["loss"] == [1.0, 0.5] and ckpt["config"] == {"lr": 0.01}


def test_best_is_kept_while_last_moves_on(tmp_path):
    model, opt = _setup()
    manager = CheckpointManager(tmp_path)
    assert manager.save(manager.state(1, {"M": model}, {"M": opt}, {}), score=2.0)
    assert manager.save(manager.state(2, {"M": model}, {"M": opt}, {}), score=1.0)
    assert not manager.save(manager.state(3, {"M": model}, {"M": opt}, {}), score=5.0)
    assert manager.load("last")["epoch"] == 3
    assert manager.load("best")["epoch"] == 2
    # A fresh manager (new session) reads the best score from disk.
    assert not CheckpointManager(tmp_path).save(manager.state(4, {"M": model}, {"M": opt}, {}), score=1.5)
    assert manager.load("best")["epoch"] == 2


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    _, full = _run(tmp_path / "a", num_epochs=4)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", num_epochs=4, stop_after=2)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    model, resumed = _run(tmp_path / "b", num_epochs=4)
    assert resumed["epoch_end"] == full["epoch_end"] == [5, 10, 15, 20]
    assert resumed["loss"] == full["loss"]
    assert resumed["noise"] == full["noise"]
    # Running again with nothing left to do changes nothing.
    _, again = _run(tmp_path / "b", num_epochs=4)
    assert again["loss"] == full["loss"]


def test_an_averaged_model_resumes_exactly_too(tmp_path):
    """The EMA's weights and its update count (which sets the warm-up) survive an interruption."""
    full_ema, _ = _run(tmp_path / "a", num_epochs=3, ema=True)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", num_epochs=3, stop_after=1, ema=True)
    resumed_ema, _ = _run(tmp_path / "b", num_epochs=3, ema=True)
    assert full_ema.num_updates == resumed_ema.num_updates == 15
    for a, b in zip(full_ema.state_dict().values(), resumed_ema.state_dict().values()):
        if torch.is_tensor(a):
            assert torch.equal(a, b)
    trained, _ = _run(tmp_path / "c", num_epochs=3)
    assert not torch.equal(trained[0].weight, full_ema.module[0].weight)  # an average, not a copy


def test_ema_follows_its_formula_and_copies_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.5)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(8, 2))                     # moves BatchNorm's running mean
    ema.update(model)                            # n = 1: d = min(0.5, 2 / 11) = 2/11
    d = 2 / 11
    assert torch.allclose(ema.module[0].weight, d * start + (1 - d) * model[0].weight)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in ema.parameters())
    assert torch.equal(ema(torch.ones(3, 2)), ema.module(torch.ones(3, 2)))
    with pytest.raises(ValueError, match="another architecture"):
        ema.update(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_truncated_checkpoint_gives_clear_error_and_keeps_good_file(tmp_path):
    _run(tmp_path, num_epochs=2)
    last = tmp_path / "last.pt"
    good = (tmp_path / "best.pt").read_bytes()
    last.write_bytes(last.read_bytes()[: len(last.read_bytes()) // 2])
    with pytest.raises(CheckpointError) as info:
        _run(tmp_path, num_epochs=3)
    assert str(last) in str(info.value) and "corrupt or truncated" in str(info.value)
    assert last.exists()  # never deleted
    assert (tmp_path / "best.pt").read_bytes() == good
    assert safe_load(tmp_path / "best.pt")["epoch"] in (1, 2)


def test_other_architecture_gives_clear_error_and_leaves_model_untouched(tmp_path):
    _run(tmp_path, num_epochs=1, width=4)
    before = (tmp_path / "last.pt").read_bytes()
    model, opt = _setup(width=6)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        restore(safe_load(tmp_path / "last.pt"), {"M": model}, {"M": opt}, path=tmp_path / "last.pt")
    msg = str(info.value)
    assert str(tmp_path / "last.pt") in msg and "wrong shapes" in msg and "0.weight" in msg
    assert all(torch.equal(own[k], v) for k, v in model.state_dict().items())
    assert (tmp_path / "last.pt").read_bytes() == before
    renamed = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        restore(safe_load(tmp_path / "last.pt"), {"M": renamed}, path=tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"holds models \['M'\]"):
        restore(safe_load(tmp_path / "last.pt"), {"G": model}, path=tmp_path / "last.pt")
    # The good checkpoint still loads into the right architecture.
    ok, ok_opt = _setup(width=4)
    restore(safe_load(tmp_path / "last.pt"), {"M": ok}, {"M": ok_opt})


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch " + str(_Exploit.marker),))


def test_pickle_that_runs_code_is_refused(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    torch.save({"models": {}, "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="Refused to load"):
        safe_load(path)
    assert not _Exploit.marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"models": _Exploit()}))
    with pytest.raises(CheckpointError):
        safe_load(raw)
    assert not _Exploit.marker.exists()


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path):
    path = atomic_save({"models": {}, "epoch": 1}, tmp_path / "last.pt")
    with pytest.raises(Exception):
        atomic_save({"models": {}, "bad": lambda: 0}, path)  # lambdas cannot be pickled
    assert safe_load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_nan_loss_stops_training_and_keeps_last_checkpoint(tmp_path):
    _run(tmp_path, num_epochs=1)
    before = (tmp_path / "last.pt").read_bytes()
    model, opt = _setup()
    batches = TensorBatcher((torch.randn(8, 3),), batch_size=4)
    with pytest.raises(TrainingDiverged, match="loss is nan"):
        fit(lambda x: {"loss": torch.tensor(float("nan"))}, batches, 1, {"M": model}, {"M": opt}, tmp_path / "n")
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not (tmp_path / "n" / "last.pt").exists()


def test_every_checkpoint_is_fsynced_and_then_its_folder_after_the_rename(tmp_path, monkeypatch):
    """A rename is durable only once its folder is fsynced: a Colab disconnect right after an epoch keeps it."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append(("fsync folder" if stat.S_ISDIR(info.st_mode) else "fsync file", info.st_ino))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    model, opt = _setup()
    manager = CheckpointManager(tmp_path / "vanilla")
    assert manager.save(manager.state(1, {"M": model}, {"M": opt}, {}), score=1.0)  # last.pt, then best.pt
    folder = (tmp_path / "vanilla").stat().st_ino
    assert [kind for kind, _ in events] == ["fsync file", "replace", "fsync folder"] * 2, events
    for i in (0, 3):
        assert events[i][1] == events[i + 1][1], "the file fsynced is not the one renamed"
        assert events[i + 2][1] == folder, "the folder fsynced is not the checkpoint's"
