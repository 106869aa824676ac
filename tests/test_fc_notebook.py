"""The fully connected GAN lab (extra/fc_gan.ipynb), executed headlessly top to bottom in the smoke profile,
then probed; and the committed notebook itself."""

import re

import nbformat

from helpers.course.labs import lab_named
from helpers.course.notebook_code import load_definitions
from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_committed_notebook, probe_result

NOTEBOOK = lab_named("fc").notebook_path()

# The probe is a module the kernel imports (helpers.course.probe): it checks generate with the one contract
# (helpers.checks.contract.FC), calls every graded check on the notebook's names and reports the runs.
PROBE = 'from helpers.course.probe import print_probe_result\nprint_probe_result(globals(), "fc")'

# smoke: the baseline trains 2 epochs of 2 steps, the run without dropout and the lr and batch runs 1 epoch each.
RUNS = {"baseline": 2, "no_dropout": 1, "lr_0.01": 1, "batch_32": 1, "batch_512": 1}


def _assert_probe(result):
    assert result["contract"]["status"] == "passed", [i for i in result["contract"]["items"] if not i["ok"]]
    ids = {i["id"] for i in result["contract"]["items"]}
    assert {"shape_dtype", "same_seed", "other_seed", "bad_count_'4'", "mode_restored"} <= ids  # G's mode too
    assert set(result["graded"]) == {"fc.generator", "fc.discriminator", "fc.losses", "fc.train_step"}
    assert set(result["graded"].values()) == {"passed"}, result["graded"]  # what the grader calls, on this run
    assert result["epochs"] == 2 and result["iters"] == 4  # the baseline's history
    assert result["untrained_refused"] and result["error_names_argument"]
    assert result["numpy_count"] == [2, 28, 28]
    assert result["runs"] == RUNS, result["runs"]
    # every comparison is made at equal epochs: the baseline is measured at the epochs of each experiment
    assert {"baseline@1", "baseline@2", "no_dropout@1", "lr_0.01@1", "batch_32@1", "batch_512@1"} <= set(result["measured"])


def _table(nb) -> str:
    cell = next(c for c in nb.cells if c.get("id") == "fc-table")
    return "".join(o.get("text", "") for o in cell.outputs)


def test_fc_runs_in_smoke_profile_and_resumes_with_the_same_measurements(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    _assert_probe(probe_result(nb))
    text = all_text(nb)
    # the conclusions are printed from the measurements, one per experiment
    for line in ("After 1 epoch(s): ", "spread of successive changes", "Closest to real digits after 1 epoch(s) (lowest FD)",
                 "Smallest against largest batch", "Best epoch by the FD", "How sure D is during epoch 1"):
        assert line in text, line
    table = _table(nb)
    assert re.search(r"^run\s+dropout\s+lr\s+batch\s+epoch\s+steps\s+recognised", table, re.M), table
    assert len([line for line in table.splitlines() if line.split()[:1] in (["baseline"], ["no_dropout"])]) == 3
    assert "real digits" in table
    out = lab_dirs["outputs"] / "fc-smoke"
    for name in ("samples_baseline.png", "samples_no_dropout.png", "samples_lr_0.01.png", "samples_batch_32.png",
                 "dropout_curves.png", "lr_curves.png", "batch_curves.png", "losses_baseline.png",
                 "generate_64.png", "digit_histogram.png"):
        assert (out / name).is_file(), name
    ckpt = lab_dirs["checkpoints"] / "fc-smoke"
    for run, epochs in RUNS.items():
        assert (ckpt / run / "last.pt").is_file(), run
        assert (ckpt / run / f"G_epoch_{epochs:03d}.pt").is_file(), run
    assert (ckpt / "baseline" / "G_epoch_001.pt").is_file()  # kept for the comparisons at epoch 1

    # Re-running resumes every run from its checkpoint, and the kept weights give the same measurements.
    nb2 = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE])
    assert all_text(nb2).count("Nothing to train: the checkpoint already has") == len(RUNS)
    _assert_probe(probe_result(nb2))
    assert _table(nb2) == table


def test_committed_notebook_is_clean_and_asks_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert_committed_notebook(nb)
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("class Generator(", "class Discriminator(", "def d_loss_bce(", "def g_loss_bce(",
                 "def make_optimizers(", "def train_step(", "def generate(", "path_to_checkpoint", "fit(",
                 "evaluate_samples(", "BUDGET_MIN", "CHECKPOINT_DIR"):
        assert name in sources, name
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") > 0


def test_the_full_profile_follows_the_handout():
    """Samples after 10, 20, 50 and 100 epochs; only the baseline runs 100, each experiment fewer, and the
    baseline keeps its weights at every epoch an experiment is compared at."""
    cfg = load_definitions(NOTEBOOK, module_name="ganlab_test_fc_profile").Config()
    assert cfg.sample_epochs == (10, 20, 50, 100) and cfg.num_epochs == 100
    assert cfg.latent_dim == 64 and cfg.hidden == 256 and 0 < cfg.dropout < 1
    assert cfg.lr == 2e-4 and cfg.lr_fast == 0.01 and set(cfg.batch_sizes) == {32, 128, 512}
    assert cfg.batch_size in cfg.batch_sizes
    assert cfg.arm_epochs < cfg.num_epochs and cfg.dropout_arm_epochs < cfg.num_epochs
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    # the weights kept by every run: the sample epochs and the epochs of the experiments
    assert "kept = set(run_cfg.sample_epochs) | {run_cfg.arm_epochs, run_cfg.dropout_arm_epochs" in source
    quick = re.search(r"quick=dict\(([^)]*\([^)]*\)[^)]*)\)", source).group(1)
    assert "sample_epochs=(1, 2, 3, 5)" in quick and "num_epochs=5" in quick, quick
