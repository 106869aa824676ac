"""The cWGAN-GP lab, executed headlessly top to bottom in the smoke profile, then probed."""

import re

import nbformat

from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_outputs_of_one_real_run, probe_result

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "lab8_cwgan.ipynb"

PROBE = r'''
import numpy as np, torch, json
from helpers.data import FASHION_CLASSES
# every class, by index, by name and by name in another case: same images for the same seed
for c, name in enumerate(FASHION_CLASSES):
    a = generate(3, c, seed=11)
    assert isinstance(a, np.ndarray) and a.shape == (3, 28, 28) and a.dtype == np.float32, (c, type(a), a.shape)
    assert 0.0 <= a.min() and a.max() <= 1.0, c
    for alias in (name, name.lower(), name.upper(), f"  {name} "):
        assert np.array_equal(generate(3, alias, seed=11), a), alias
    assert np.array_equal(generate(3, np.int64(c), seed=11), a)
assert np.array_equal(generate(2, "t-shirt", seed=1), generate(2, 0, seed=1))
assert not np.array_equal(generate(4, 7, seed=7), generate(4, 7, seed=8))
assert not np.array_equal(generate(4, 7, seed=7), generate(4, 9, seed=7))
assert generate(np.int64(2), 1).shape == (2, 28, 28)
# mode restored, no gradients
G.train(); generate(2, 3); assert G.training
G.eval(); generate(2, 3); assert not G.training
G.train()
# bad arguments: the error names what was passed; unknown classes list the valid ones
for args, err in (((0, 1), ValueError), ((-1, 1), ValueError), ((1.5, 1), TypeError), (("3", 1), TypeError),
                  ((2, 10), ValueError), ((2, -1), ValueError), ((2, "Sandals"), ValueError), ((2, ""), ValueError),
                  ((2, 2.0), TypeError), ((2, None), TypeError), ((2, True), TypeError), ((2, [1, 2]), TypeError)):
    try:
        generate(*args)
    except err as e:
        assert any(repr(a) in str(e) or str(a) in str(e) for a in args), str(e)
        if err is ValueError and args[0] == 2:
            assert all(name in str(e) for name in FASHION_CLASSES), str(e)
    else:
        raise AssertionError(f"generate{args!r} did not raise {err.__name__}")
# before training: a fresh generator is refused, not passed off as clothes
G_saved = G
G = Generator(cfg.latent_dim, cfg.g_width).to(device)
try:
    generate(2, "Bag")
except RuntimeError as e:
    assert "not been trained" in str(e)
else:
    raise AssertionError("generate() on an untrained G did not raise")
G = G_saved
print("PROBE-RESULT " + json.dumps({"epochs": len(history["epoch_end"]), "iters": len(history["loss_G"]),
      "keys": sorted(history), "acc_epochs": len(history["conditional_accuracy"]),
      "eval_keys": sorted(k for k in report if "conditional" in k)}))
'''






def test_cwgan_runs_in_smoke_profile_and_generate_keeps_its_contract(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    result = probe_result(nb)
    assert result["epochs"] == 2 and result["iters"] == 4 and result["acc_epochs"] == 2
    for key in ("loss_G", "loss_D", "W_estimate", "GP", "D(x)", "D(G(z))", "conditional_accuracy"):
        assert key in result["keys"], key
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
    nbformat.validate(nb)
    assert nb.metadata.get("accelerator") == "GPU"
    assert "colab" not in nb.metadata
    assert_outputs_of_one_real_run(nb)  # figures of a real quick run on the CPU, as in the vanilla lab
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
