"""The vanilla lab, executed headlessly top to bottom in the smoke profile, then probed."""

import nbformat

from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_committed_notebook, probe_result

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "lab8_vanilla.ipynb"

# The probe is a module the kernel imports (helpers.course.probe): it checks generate with the one contract
# (helpers.checks.contract) and reports the run; nothing here is code in a string but this call.
PROBE = 'from helpers.course.probe import print_probe_result\nprint_probe_result(globals(), "vanilla")'


def _assert_probe(result):
    assert result["contract"]["status"] == "passed", [i for i in result["contract"]["items"] if not i["ok"]]
    ids = {i["id"] for i in result["contract"]["items"]}
    assert {"shape_dtype", "same_seed", "other_seed", "bad_count_'4'", "mode_restored"} <= ids  # G_ema's mode too
    assert set(result["graded"].values()) == {"passed"}, result["graded"]  # what the grader calls, on this run
    assert result["epochs"] == 2 and result["iters"] == 4
    assert result["ema_updates"] == result["iters"]        # samples come from the trained average of G
    assert result["untrained_refused"] and result["error_names_argument"]
    assert result["numpy_count"] == [2, 28, 28]






def test_vanilla_runs_in_smoke_profile_and_generate_keeps_its_contract(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    _assert_probe(probe_result(nb))
    out = lab_dirs["outputs"] / "vanilla-smoke"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "losses.png", "generate_64.png",
                 "digit_histogram.png", "weights_D_first.png", "lr_comparison.png"):
        assert (out / name).is_file(), name
    ckpt = lab_dirs["checkpoints"] / "vanilla-smoke"
    assert (ckpt / "last.pt").is_file()

    # Re-running the notebook resumes from the checkpoint instead of starting over.
    nb2 = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    assert "Nothing to train: the checkpoint already has 2 epochs" in all_text(nb2)
    _assert_probe(probe_result(nb2))


def test_committed_notebook_is_clean_and_asks_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert_committed_notebook(nb)
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("def generate(", "class Generator(", "class Discriminator(", "def d_loss_bce(",
                 "def g_loss_bce(", "opt_G =", "opt_D =", "def train_step(", "path_to_checkpoint"):
        assert name in sources, name
    # every solution region is closed
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") > 0


def test_the_weight_figures_find_the_layers_by_type_whatever_their_names(tmp_path):
    """Code after the TODOs must work for any architecture that passes the checks, not only the solution's names."""
    from types import SimpleNamespace

    from torch import nn

    from helpers.env import shown_path
    from helpers.plotting import plot_first_layer_weights
    from helpers.training import EMA

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "weights_G_last.png" in c.source)

    class OtherD(nn.Module):  # no .net: a stem and a body
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 4, 2, 1)
            self.body = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1))

    class OtherG(nn.Module):  # ends with a transposed convolution, not a 3x3 convolution
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(16, 8, 4, 2, 1)
            self.to_image = nn.Sequential(nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Tanh())

    shown = []
    namespace = {"D": OtherD(), "G_ema": EMA(OtherG()), "nn": nn, "env": SimpleNamespace(output_dir=tmp_path),
                 "show": shown.append, "plot_first_layer_weights": plot_first_layer_weights, "shown_path": shown_path}
    exec(cell.source, namespace)  # noqa: S102 - the notebook's own cell
    assert len(shown) == 2 and (tmp_path / "weights_D_first.png").is_file() and (tmp_path / "weights_G_last.png").is_file()
    assert tuple(namespace["weight_G"].shape) == (8, 1, 4, 4)  # one 4x4 image per input channel of the last layer
