"""Grading the trained model (checkpoint mode) and a whole class at once (folder mode)."""

import csv
import dataclasses
import json

import pytest
import torch

from helpers.checkpoints import CheckpointManager, atomic_save
from helpers.course import grade_checkpoint
from helpers.course.grade_class import grade_folder, submissions_in
from helpers.course.notebook_code import load_definitions
from helpers.training import EMA

from grade_support import VANILLA, add_cell, cell_index, solution, write

REAL_TEST_IMAGES = '''
def generate(n, seed=None):
    """A submission whose generate hands out real MNIST *test* images: good samples, not copies of training images."""
    from helpers.data import load_mnist
    x, _ = load_mnist(train=False)
    return ((x[:n, 0] + 1) / 2).numpy()
'''


def _vanilla_checkpoint(path, g_width=8, d_width=8, seed=0, **config):
    """A checkpoint as the vanilla notebook's fit() writes it, of untrained networks of the given widths."""
    nb = load_definitions(VANILLA, module_name="ganlab_test_ckpt_vanilla")
    cfg = nb.Config(g_width=g_width, d_width=d_width, **config)
    torch.manual_seed(seed)
    G = nb.Generator(cfg.latent_dim, cfg.g_width)
    models = {"G": G, "D": nb.Discriminator(cfg.d_width), "G_ema": EMA(G, decay=cfg.ema_decay)}
    opts = {k: torch.optim.Adam(models[k].parameters()) for k in ("G", "D")}
    state = CheckpointManager(path.parent).state(3, models, opts, {"epoch_end": [1, 2, 3]}, dataclasses.asdict(cfg))
    atomic_save(state, path)
    return models


def test_the_networks_are_rebuilt_from_the_saved_config(tmp_path):
    saved = _vanilla_checkpoint(tmp_path / "last.pt", g_width=12, d_width=4, seed=3)
    nb = grade_checkpoint.load_trained(VANILLA, tmp_path / "last.pt", "vanilla")
    assert nb.cfg.g_width == 12 and nb.cfg.d_width == 4 and nb._ganlab_epoch == 3
    for name in ("G", "D", "G_ema"):
        for a, b in zip(getattr(nb, name).state_dict().values(), saved[name].state_dict().values()):
            assert torch.equal(a, b) if torch.is_tensor(a) else a == b
    images = nb.generate(4, seed=0)  # the submission's own generate, on the loaded G_ema
    assert images.shape == (4, 28, 28) and images.dtype.name == "float32"


def test_an_untrained_model_is_scored_and_fails_the_thresholds(tmp_path):
    _vanilla_checkpoint(tmp_path / "last.pt")
    result = grade_checkpoint.run(VANILLA, tmp_path / "last.pt", "vanilla", tmp_path / "scratch", samples=200)
    assert result["status"] == "failed", result.get("message")
    assert result["epoch"] == 3 and result["config"]["g_width"] == 8
    assert result["passed"] is False and result["thresholds"] and result["thresholds_name"]
    assert {"value", "floor", "passed", "rule"} <= set(result["thresholds"][0])
    assert not list((tmp_path / "scratch").glob("checkpoint-*.json"))  # the result file is removed


def test_good_samples_pass(tmp_path):
    _vanilla_checkpoint(tmp_path / "last.pt")
    nb = solution()
    nb.cells[cell_index(nb, "def generate(")].source = REAL_TEST_IMAGES
    submission = write(nb, tmp_path / "good.ipynb")
    result = grade_checkpoint.grade_checkpoint(submission, tmp_path / "last.pt", "vanilla", samples=500)
    assert result["status"] == "passed", result
    assert result["copies"]["share"] <= 0.05


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint", "other config", "no config"])
def test_a_bad_checkpoint_is_reported_not_raised(tmp_path, damage):
    path = tmp_path / "last.pt"
    if damage == "truncated":
        _vanilla_checkpoint(path)
        path.write_bytes(path.read_bytes()[:2000])
        expect = "corrupt or truncated"
    elif damage == "not a checkpoint":
        path.write_text("<html>Google Drive: sign in</html>")
        expect = "is not a PyTorch checkpoint: torch.save writes a zip archive, this file is an HTML page"
    else:
        state = torch.load(_vanilla_checkpoint_path(tmp_path), weights_only=True)
        state["config"]["n_critic"] = 5  # a cWGAN-GP config handed in for the vanilla lab
        atomic_save(state, path)
        expect = "fields the submission's Config lacks: ['n_critic']"
        if damage == "no config":  # saved without fit(..., config=cfg): never rebuilt from Config's defaults
            state["config"] = {}
            atomic_save(state, path)
            expect = "holds no training config"
    result = grade_checkpoint.grade_checkpoint(VANILLA, path, "vanilla", samples=100)
    assert result["status"] == "error" and expect in result["message"], result["message"]


def _vanilla_checkpoint_path(tmp_path):
    path = tmp_path / "other" / "last.pt"
    _vanilla_checkpoint(path)
    return path


def test_a_submission_that_dies_while_scoring_is_reported(tmp_path):
    _vanilla_checkpoint(tmp_path / "last.pt")
    nb = solution()
    nb.cells[cell_index(nb, "def generate(")].source = "def generate(n, seed=None):\n    import os\n    os._exit(7)\n"
    submission = write(nb, tmp_path / "dies.ipynb")
    result = grade_checkpoint.run(submission, tmp_path / "last.pt", "vanilla", tmp_path / "scratch", samples=100)
    assert result["status"] == "error" and "exit code 7" in result["message"]


def _fake_grade(calls):
    def fake(submission, lab=None, out_dir=None, timeout=None):
        calls.append(submission.name)
        if "crash" in submission.name:
            raise RuntimeError("the grader broke on this one")
        points = 3.0 if "good" in submission.name else 1.0
        report = {"submission": str(submission), "student": submission.stem, "lab": "vanilla",
                  "points": points, "max_points": 3.0, "problems": [], "by_hand": [],
                  "checks": [{"id": "vanilla.generator", "title": "generator", "kind": "visible", "points": points,
                              "max_points": 3.0, "status": "passed" if points == 3 else "failed", "message": ""}],
                  "contract": {"status": "passed", "items": []}}
        (out_dir / f"{submission.stem}.grade.json").write_text(json.dumps(report))
        return report
    return fake


def test_a_folder_is_graded_resumed_and_tabled(tmp_path):
    subs = tmp_path / "subs"
    for name in ("alice_good", "bob", "carol_crash"):
        write(solution(), subs / f"{name}.ipynb")
    (subs / "alice_good.executed.ipynb").write_text("{}")  # left by an earlier run: not a submission
    assert [p.stem for p in submissions_in(subs)] == ["alice_good", "bob", "carol_crash"]
    calls, out = [], tmp_path / "grades"
    reports = grade_folder(subs, out, jobs=2, grade_fn=_fake_grade(calls), log=lambda line: None)
    assert sorted(calls) == ["alice_good.ipynb", "bob.ipynb", "carol_crash.ipynb"]
    assert [r["points"] for r in reports] == [3.0, 1.0, 0.0]  # the crash is a row with no points, not a stop
    assert "the grader failed" in reports[2]["problems"][0]
    table = (out / "class_table_vanilla.csv").read_text()
    assert "alice_good" in table and "carol_crash" in table and "pass rate" in table
    assert (out / "bob.feedback.md").is_file()

    calls.clear()  # a second run grades only what changed since, and what the grader failed on
    add_cell(nb := solution(), "print('changed')")
    write(nb, subs / "bob.ipynb")
    grade_folder(subs, out, jobs=1, grade_fn=_fake_grade(calls), log=lambda line: None)
    assert sorted(calls) == ["bob.ipynb", "carol_crash.ipynb"]


def test_a_folder_without_submissions_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .ipynb submissions"):
        submissions_in(tmp_path)
    with pytest.raises(NotADirectoryError):
        submissions_in(tmp_path / "missing")


def test_the_command_grades_a_class_with_checkpoints_and_merges_hand_scores(tmp_path, capsys):
    """README's instructor route, end to end: a folder of two students, one checkpoint, hand-given scores."""
    from helpers.course.grade import main

    from grade_support import template

    subs, out = tmp_path / "subs", tmp_path / "grades"
    write(solution(), subs / "alice.ipynb")
    write(template(), subs / "bob.ipynb")
    _vanilla_checkpoint(subs / "alice.pt")
    assert main([str(subs), "--jobs", "2", "--out", str(out), "--samples", "200", "--timeout", "600"]) == 0
    alice = json.loads((out / "alice.grade.json").read_text())
    bob = json.loads((out / "bob.grade.json").read_text())
    assert alice["points"] == alice["max_points"] > 0 and bob["points"] == 0
    assert alice["checkpoint"]["status"] == "failed" and "checkpoint" not in bob  # untrained weights, thresholds missed
    assert "## Samples of your trained model" in (out / "alice.feedback.md").read_text()
    rows = (out / "class_table_vanilla.csv").read_text().splitlines()
    assert rows[0].startswith("student,lab,vanilla.generator") and any(r.startswith("bob,") for r in rows)

    (tmp_path / "hand.csv").write_text("student,vanilla.answer_dc\n(max points),2\nalice,2\nbob,1\n")
    assert main(["merge", str(out / "class_table_vanilla.csv"), str(tmp_path / "hand.csv")]) == 0
    merged = {row["student"]: row for row in csv.DictReader((out / "class_table_vanilla_merged.csv").open())}
    assert merged["bob"]["vanilla.answer_dc"] == "1" and float(merged["bob"]["total"]) == 1.0
    assert float(merged["alice"]["total"]) == alice["max_points"] + 2
    with pytest.raises(SystemExit):
        main(["merge", str(out / "class_table_vanilla.csv"), str(tmp_path / "missing.csv")])
