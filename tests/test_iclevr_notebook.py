"""The multi-label conditional GAN lab (extra/cgan_iclevr.ipynb), executed headlessly top to bottom in the smoke
profile, then probed; its template stops at the first TODO; and the committed notebook itself."""


import nbformat
import pytest

from helpers.course.labs import lab_named
from helpers.course.notebook_code import load_definitions
from helpers.course.run_notebook import execute_notebook
from nbprobe import all_text, assert_committed_notebook, printed_json, probe_result

NOTEBOOK = lab_named("iclevr").notebook_path()
TEMPLATE = lab_named("iclevr").template_path()

# The probe (helpers.course.probe) checks generate with the one contract (helpers.checks.contract.ICLEVR), calls
# every graded check on the notebook's names and reports the runs; the cell after it calls generate's edge cases.
PROBE = 'from helpers.course.probe import print_probe_result\nprint_probe_result(globals(), "iclevr")'
EDGES = r'''
import json
edges = {}
for bad in (["pink cube"], ["red cube", "red cube"], [], ["red cube", "blue cube", "green cube", "gray cube"],
            [["red cube"], ["blue cube"], ["gray cube"]], np.zeros(24), "red cube", [["red cube"], []]):
    try:
        generate(2, bad)
        edges[repr(bad)[:60]] = "no error"
    except ValueError as err:
        edges[repr(bad)[:60]] = "ValueError: " + str(err)
one = generate(3, ["gray cube", "cyan sphere"], seed=4)
vec = generate(3, encode_conditions(["gray cube", "cyan sphere"])[0], seed=4)
per_image = generate(2, [["gray cube"], ["red cube", "blue sphere", "yellow cylinder"]], seed=4)
print("EDGES " + json.dumps({"errors": edges, "same": bool(np.array_equal(one, vec)),
                             "shapes": [list(one.shape), list(per_image.shape)], "dtype": str(one.dtype),
                             "range": [float(one.min()), float(one.max())]}))
'''

RUNS = {"sagan": 2, "sn": 2, "dcgan": 2}  # smoke: 2 epochs of 2 steps each


def _edges(nb) -> dict:
    return printed_json(nb, "EDGES ")


def _assert_probe(result):
    assert result["contract"]["status"] == "passed", [i for i in result["contract"]["items"] if not i["ok"]]
    ids = {i["id"] for i in result["contract"]["items"]}
    assert {"shape_dtype", "vector", "per_image", "same_seed", "other_seed", "other_condition", "bad_count_'4'",
            "bad_objects_0", "bad_objects_5", "mode_restored"} <= ids
    assert set(result["graded"]) == {"iclevr.self_attention", "iclevr.conditional_batchnorm", "iclevr.generator",
                                     "iclevr.discriminator", "iclevr.losses", "iclevr.train_step"}
    assert set(result["graded"].values()) == {"passed"}, result["graded"]
    assert result["epochs"] == 2 and result["iters"] == 4 and result["acc_epochs"] == 2
    assert result["untrained_refused"] and result["error_names_argument"]
    assert result["numpy_count"] == [2, 3, 64, 64]
    assert result["runs"] == RUNS, result["runs"]
    assert result["measured"] == ["dcgan", "real", "sagan", "sn"]


def test_iclevr_runs_in_smoke_profile_and_generate_keeps_its_contract(lab_dirs):
    nb = execute_notebook(NOTEBOOK, "smoke", timeout=300, extra_cells=[PROBE, EDGES])
    _assert_probe(probe_result(nb))
    edges = _edges(nb)
    assert edges["same"] and edges["shapes"] == [[3, 3, 64, 64], [2, 3, 64, 64]] and edges["dtype"] == "float32"
    assert 0 <= edges["range"][0] <= edges["range"][1] <= 1
    errors = edges["errors"]
    assert all(v.startswith("ValueError") for v in errors.values()), errors
    assert "pink cube" in errors["['pink cube']"] and "more than once" in errors["['red cube', 'red cube']"]
    assert "no object" in errors["[]"] and "at most 3" in errors["['red cube', 'blue cube', 'green cube', 'gray cube']"]
    text = all_text(nb)
    # the conclusions are printed from the measurements
    for line in ("After 2 epoch(s) each (4 steps):", "Spectral norm (SN against DCGAN): test:",
                 "Self-attention (SAGAN against SN): test:", "Most accurate on both files together:",
                 "real (rendered)", "s per epoch; D's loss over the last tenth"):
        assert line in text, line
    out = lab_dirs["outputs"] / "iclevr-smoke"
    for name in ("real_scenes.png", "losses_sagan.png", "accuracy_sagan.png", "accuracy_runs.png", "d_runs.png",
                 "test_conditions_sagan.png", "test_conditions_sn.png", "test_conditions_dcgan.png",
                 "generate_red_cube_blue_sphere.png"):
        assert (out / name).is_file(), name
    for run in RUNS:
        assert (lab_dirs["checkpoints"] / "iclevr-smoke" / run / "last.pt").is_file(), run


def test_template_stops_at_its_first_todo(lab_dirs):
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError) as info:
        execute_notebook(TEMPLATE, "smoke", timeout=300)
    assert "NotImplementedError" in str(info.value)
    nb = nbformat.read(TEMPLATE, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "raise NotImplementedError()" in c.source)
    assert nb.cells[first].id == "cell-attention"


def test_committed_notebook_is_clean_and_asks_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert_committed_notebook(nb)
    sources = "\n".join(c.source for c in nb.cells)
    for name in ("class SelfAttention(", "class ConditionalBatchNorm2d(", "class Generator(", "class Discriminator(",
                 "def d_loss_hinge(", "def g_loss_hinge(", "def make_optimizers(", "def train_step(",
                 "def generate(", "path_to_checkpoint", "fit(", "encode_conditions(", "BUDGET_MIN",
                 "CHECKPOINT_DIR", "SEED", "PROFILE"):
        assert name in sources, name
    assert sources.count("### BEGIN SOLUTION") == sources.count("### END SOLUTION") > 0
    assert sources.count("##TODO##") >= 7


def test_the_comparison_changes_one_switch_at_a_time():
    nb = load_definitions(NOTEBOOK, module_name="ganlab_test_iclevr_profile")
    cfg = nb.Config()
    assert cfg.spectral_norm and cfg.self_attention and cfg.image_size in (32, 64)
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    assert 'train_gan(replace(arm_cfg, self_attention=False), "sn")' in source
    assert 'train_gan(replace(arm_cfg, spectral_norm=False, self_attention=False), "dcgan")' in source
    assert "arm_cfg = replace(cfg, num_epochs=sagan.epochs)" in source
