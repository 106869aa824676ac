"""The vanilla lab, executed headlessly top to bottom in the smoke profile, then probed."""

import nbformat

from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_outputs_of_one_real_run, probe_result

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "lab8_vanilla.ipynb"

PROBE = r'''
import numpy as np, torch, json
# good arguments
a = generate(3)
assert isinstance(a, np.ndarray) and a.shape == (3, 28, 28) and a.dtype == np.float32, (type(a), a.shape)
assert 0.0 <= a.min() and a.max() <= 1.0
assert np.array_equal(generate(4, seed=7), generate(4, seed=7))
assert not np.array_equal(generate(4, seed=7), generate(4, seed=8))
assert generate(np.int64(2)).shape == (2, 28, 28)
# mode restored, no gradients; the samples come from the trained average of G
G_ema.train(); generate(2); assert G_ema.training
G_ema.eval(); generate(2); assert not G_ema.training
G_ema.train()
assert G_ema.num_updates == len(history["loss_G"]) > 0
# bad arguments: the error names what was passed
for bad, err in ((0, ValueError), (-1, ValueError), (1.5, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError)):
    try:
        generate(bad)
    except err as e:
        assert repr(bad) in str(e) or str(bad) in str(e), str(e)
    else:
        raise AssertionError(f"generate({bad!r}) did not raise {err.__name__}")
# before training: a fresh generator is refused, not passed off as digits
G_ema_saved = G_ema
G_ema = EMA(Generator(cfg.latent_dim, cfg.g_width).to(device))
try:
    generate(2)
except RuntimeError as e:
    assert "not been trained" in str(e)
else:
    raise AssertionError("generate() on an untrained G_ema did not raise")
G_ema = G_ema_saved
print("PROBE-RESULT " + json.dumps({"epochs": len(history["epoch_end"]), "iters": len(history["loss_G"])}))
'''






def test_vanilla_runs_in_smoke_profile_and_generate_keeps_its_contract(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    assert probe_result(nb) == {"epochs": 2, "iters": 4}
    out = lab_dirs["outputs"] / "vanilla-smoke"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "losses.png", "generate_64.png",
                 "digit_histogram.png", "weights_D_first.png", "lr_comparison.png"):
        assert (out / name).is_file(), name
    ckpt = lab_dirs["checkpoints"] / "vanilla-smoke"
    assert (ckpt / "last.pt").is_file()

    # Re-running the notebook resumes from the checkpoint instead of starting over.
    nb2 = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    assert "Nothing to train: the checkpoint already has 2 epochs" in all_text(nb2)
    assert probe_result(nb2) == {"epochs": 2, "iters": 4}


def test_committed_notebook_is_clean_and_asks_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("accelerator") == "GPU"
    assert "colab" not in nb.metadata
    assert_outputs_of_one_real_run(nb)  # issue: figures are real outputs of a quick or full run
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("def generate(", "class Generator(", "class Discriminator(", "def d_loss_bce(",
                 "def g_loss_bce(", "opt_G =", "opt_D =", "def train_step(", "path_to_checkpoint"):
        assert name in sources, name
    # every solution region is closed
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") > 0
