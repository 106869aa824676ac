"""Lab 3 notebook, executed headlessly top to bottom in the smoke profile on the real sample, then
its saved models run through the stand-alone malaria_test.py from the command line."""

from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import numpy as np

from helpers.course.run_notebook import execute_notebook
from nbprobe import assert_committed_notebook, probe_result

from helpers.course.labs import lab_named
from lab3_support import NOTEBOOK, REPO, sample_root

GRADED_MALARIA = [r.id for r in lab_named("malaria").checks_module().GRADED]

# The probe is a module the kernel imports (helpers.course.probe): the generate contract at (3, S, S), the
# run of both tasks, the saved models and the prediction for the saved patch.
PROBE = 'from helpers.course.probe import print_probe_result\nprint_probe_result(globals(), "malaria")'

EXPECTED_FIGURES = (
    "real_patches_stages.png", "real_patches_no_stage.png",
    "samples_epoch_001.png", "samples_epoch_002.png", "samples_multitask_epoch_002.png",
    "loss_G.png", "loss_D.png", "multitask_loss_G.png", "multitask_loss_D.png", "generate_64.png",
    "checkerboard_zoom.png", "classification_curves.png", "f1_per_stage.png", "gallery_val.png", "gallery_train.png",
    "gradcam.png", "samples_old_vs_new.png", "weights_D_first.png", "weights_G_last.png",
    "weights_D_multitask_first.png", "experiment_base_losses.png", "experiment_batch_size.png",
    "experiment_optimizer.png", "experiment.md", "experiment.csv",
)




def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "malaria_test.py", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_notebook_runs_in_smoke_profile_and_its_models_work_in_malaria_test(lab_dirs, tmp_path):
    sample = sample_root()  # fails (never skips) without the real sample
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE],
                          env={"GANLAB_DATA": str(sample.parent), "GANLAB_MALARIA_DATA": ""})
    res = probe_result(nb)
    assert res["data"] == str(sample) and res["profile"] == "smoke"
    assert res["contract"]["status"] == "passed", [i for i in res["contract"]["items"] if not i["ok"]]
    assert res["untrained_refused"] and res["generate_mt_shape"][:2] == [3, 3]
    assert sorted(res["graded"]) == sorted(GRADED_MALARIA) and set(res["graded"].values()) == {"passed"}, res["graded"]
    assert [res["epochs"], res["epochs_mt"]] == [2, 2] and [res["iters"], res["iters_mt"]] == [4, 4]
    assert res["val_f1_epochs"] == 2 and res["train_loss_epochs"] == 2
    assert res["n_train"] > 9 and res["n_val"] > 3  # the 12 stage cells of the sample plus stage-free cells
    assert res["experiments"][0] == "base" and len(res["experiments"]) >= 3

    out = lab_dirs["outputs"] / "malaria-smoke"
    missing = [name for name in EXPECTED_FIGURES if not (out / name).is_file()]
    assert not missing, missing
    ckpt = lab_dirs["checkpoints"] / "malaria-smoke"
    assert (ckpt / "task1" / "last.pt").is_file() and (ckpt / "task2" / "best.pt").is_file()
    assert sorted(p.name for p in (ckpt / "models").iterdir()) == ["D.pt", "D_multitask.pt", "G.pt", "G_multitask.pt"]

    assert (out / "malaria_test" / "gradcam.png").is_file()  # test(..., grad_cam=grad_cam) in the notebook

    # The notebook's own weights, from the command line: stage probabilities of the saved patch and
    # GradCAM with the notebook's grad_cam on the loaded file ...
    run = _script("multitask", res["models"]["multitask"], res["patch"], "--out", str(tmp_path / "cam"),
                  "--gradcam", str(NOTEBOOK))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "cam" / "gradcam.png").is_file()
    printed = dict(re.findall(r"^\s+(ring|trophozoite|schizont|gametocyte)\s+([0-9.]+)", run.stdout, re.M))
    assert list(printed) == ["ring", "trophozoite", "schizont", "gametocyte"]
    assert np.allclose([float(v) for v in printed.values()], res["probs"], atol=2e-4)
    assert float(re.search(r"score\s+(-?[0-9.]+)", run.stdout).group(1)) == np.round(res["score"], 4)
    # ... and generated patches.
    run = _script("generator", res["models"]["generator_mt"], "3", "--out", str(tmp_path / "gen"))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [
        "generated_000.png", "generated_001.png", "generated_002.png", "grid.png"]


def test_committed_notebook_is_clean_and_complete():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert_committed_notebook(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and all(f"{name} =" in params[0].source for name in ("PROFILE", "SEED", "DATA_PATH"))
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("class Generator(", "class Discriminator(", "class MultiTaskDiscriminator(", "def lsgan_d_loss(",
                 "def lsgan_g_loss(", "def stage_loss_bce(", "opt_G =", "opt_D =", "def train_step(",
                 "def generate(", 'setup_lab("malaria"', "save_model(", "load_model(", "malaria_test.py",
                 "run_experiments(", "grad_cam("):
        assert name in sources, name
    assert "helpers.losses" not in sources  # student code is not importable from helpers
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") >= 9
