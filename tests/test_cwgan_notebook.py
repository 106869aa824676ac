"""The cWGAN-GP lab, executed headlessly top to bottom in the smoke profile, then probed."""

import re

import nbformat

from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_committed_notebook, probe_result

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "lab8_cwgan.ipynb"

# The probe is a module the kernel imports (helpers.course.probe): it checks generate(n, c) with the one
# contract (every class by index and by name in any case, seeds, bad counts and classes, G's mode).
PROBE = 'from helpers.course.probe import print_probe_result\nprint_probe_result(globals(), "cwgan")'






def test_cwgan_runs_in_smoke_profile_and_generate_keeps_its_contract(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    result = probe_result(nb)
    assert result["contract"]["status"] == "passed", [i for i in result["contract"]["items"] if not i["ok"]]
    ids = {i["id"] for i in result["contract"]["items"]}
    assert {f"class_{c}" for c in range(10)} | {"bad_class_'Sandals'", "bad_class_True", "mode_restored"} <= ids
    assert result["untrained_refused"] and result["error_names_argument"] and result["numpy_count"] == [2, 28, 28]
    assert set(result["graded"].values()) == {"passed"}, result["graded"]  # what the grader calls, on this run
    assert result["epochs"] == 2 and result["iters"] == 4 and result["acc_epochs"] == 2
    for key in ("loss_G", "loss_D", "W_estimate", "GP", "D(x)", "D(G(z))", "conditional_accuracy"):
        assert key in result["history_keys"], key
    assert result["eval_keys"] == ["conditional_accuracy", "conditional_accuracy_per_class"]
    text = all_text(nb)
    for check in ("conditioning", "conditional generator", "critic", "Wasserstein losses", "gradient penalty",
                  "generate(n, c)"):
        assert f"✓ {check}: passed" in text, check
    out = lab_dirs["outputs"] / "cwgan-smoke"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "losses.png", "wgan_curves.png",
                 "critic_input_planes.png", "generate_sneaker.png", "generate_all_classes.png", "interpolation.png",
                 "conditional_accuracy_per_class.png", "js_vs_wasserstein.png"):
        assert (out / name).is_file(), name
    ckpt = lab_dirs["checkpoints"] / "cwgan-smoke"
    assert (ckpt / "last.pt").is_file() and (ckpt / "best.pt").is_file()

    # Re-running the notebook resumes from the checkpoint instead of starting over.
    nb2 = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    assert "Nothing to train: the checkpoint already has 2 epochs" in all_text(nb2)
    assert probe_result(nb2)["iters"] == 4


def test_committed_notebook_is_clean_and_has_every_todo():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert_committed_notebook(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "PROFILE" in params[0].source and "SEED" in params[0].source
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("def generate(", "class Generator(", "class Critic(", "def get_WLoss_generator(",
                 "def get_WLoss_discriminator(", "def get_gradient_regularisation(", "def get_grad_function(",
                 "create_graph=True", "opt_G =", "opt_D =", "def train_step(", "path_to_checkpoint", "import ipywidgets"):
        assert name in sources, name
    assert "BatchNorm" not in sources[sources.index("class Critic("):sources.index("check_critic(Critic)")]
    # every solution region is closed, and get_grad_function is given (outside any solution region)
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") > 0
    for region in re.findall(r"### BEGIN SOLUTION(.*?)### END SOLUTION", sources, flags=re.S):
        assert "def get_grad_function" not in region and "def class_index" not in region
