import json
from pathlib import Path

import nbformat
import pytest
import torch

from helpers.course import bench
from helpers.course.labs import LABS
from helpers.course.run_notebook import keep_outputs

from conftest import REPO_ROOT


def test_summarise_computes_speed_and_time_to_target():
    raw = {
        "epoch_end": [10, 20, 30],
        "epoch_seconds": [2.0, 2.0, 4.0],
        "images_per_step": 64,
        "per_epoch": {"recognised": [0.5, 0.92, 0.95]},
        "metrics": {"confident_fraction": 0.95, "class_histogram": [0.1] * 10},
        "config": {},
        "contract": {"status": "passed", "items": []},
    }
    s = bench.summarise("vanilla", raw, wall_seconds=12.0)
    assert s["train_images_per_second"] == 30 * 64 / 8.0
    assert s["seconds_to_target"] == 4.0  # reached after the second epoch
    assert s["meets_target"] is True
    raw["metrics"]["class_histogram"] = [0.2] + [0.8 / 9] * 9  # one digit over 15%
    assert bench.summarise("vanilla", raw, 12.0)["meets_target"] is False
    raw["per_epoch"]["recognised"] = [0.1, 0.2, 0.3]
    assert bench.summarise("vanilla", raw, 12.0)["seconds_to_target"] is None


def test_counted_flops_give_the_rate_reached_and_a_labelled_gpu_estimate():
    raw = {"epoch_end": [10, 20], "epoch_seconds": [2.0, 2.0], "images_per_step": 64,
           "per_epoch": {"recognised": [0.5, 0.6]}, "metrics": {"confident_fraction": 0.6, "class_histogram": [0.1] * 10, "kl_from_uniform": 0.0,
                                                          "frechet_distance": 9.0, "real_floor": {"confident_fraction": 0.98,
                                                          "kl_from_uniform": 0.0, "frechet_distance": 2.0}},
           "config": {}, "contract": {"status": "passed", "items": []}, "step_flops": 4.05e9}
    f = bench.summarise("vanilla", raw, wall_seconds=5.0)["flops"]
    assert f["train_tflops"] == 0.081 and f["achieved_gflops_per_s"] == 20.25  # 20 steps x 4.05 GFLOPs in 4 s
    # 81e9 FLOPs on a T4's 8.1 TFLOPS: 10 ms at 100%, so 25 ms at 40% and 100 ms at 10%
    assert f["gpu_estimate_seconds"] == [0.0, 0.1] and "ESTIMATE, not measured" in f["gpu_estimate_basis"]
    assert bench.flops_summary(8.1e12, 1, 1.0)["gpu_estimate_seconds"] == [2.5, 10.0]
    report = {"profile": "quick", "command": "x", "environment": {"device": "cpu", "device_name": "x86_64",
              "torch": "2", "python": "3.11", "cpu_count": 2, "torch_threads": 2, "platform": "Linux", "date": "d"},
              "results": [bench.summarise("vanilla", dict(raw, step_flops=8.1e12 * 6), 5.0)]}
    md = bench.to_markdown(report)
    assert "| vanilla | 48600.00 G | 972.00 | 243000.0 GFLOP/s | 5.0–20.0 min (estimate) |" in md, md
    report["results"].append(bench.summarise("vanilla", raw, 5.0))  # 0.081 TFLOPs: 25 ms to 100 ms, in seconds
    assert "| vanilla | 4.05 G | 0.08 | 20.2 GFLOP/s | 0.0–0.1 s (estimate) |" in bench.to_markdown(report)
    assert "Not a measurement: this project has no GPU." in md
    raw.pop("step_flops")  # a notebook trained without fit's count: no figure, no estimate
    assert "flops" not in bench.summarise("vanilla", raw, 5.0)


def _malaria_raw(per_epoch, final):
    return {
        "epoch_end": [5, 10, 15],
        "epoch_seconds": [3.0, 1.0, 1.0],
        "images_per_step": 32,
        "per_epoch": {"val_macro_f1": per_epoch},
        "metrics": {"val_macro_f1": final},
        "config": {},
        "contract": {"status": "passed", "items": []},
        "peak_memory": {"rss_mb": 900.0, "cuda_mb": None},
        "task1_train_seconds": 4.0,
    }


def test_summarise_malaria_reads_the_macro_f1_curve_and_undefined_epochs():
    s = bench.summarise("malaria", _malaria_raw([None, 0.4, 0.6], 0.6), wall_seconds=30.0)
    assert s["per_epoch_val_macro_f1"] == [None, 0.4, 0.6] and s["per_epoch_train_seconds"] == [3.0, 4.0, 5.0]
    assert s["seconds_to_target"] == 5.0 and s["meets_target"] is True  # 0.6 >= 0.5 after the third epoch
    assert s["train_images_per_second"] == 15 * 32 / 5.0 and s["task1_train_seconds"] == 4.0
    assert s["peak_memory_mb"] == 900.0 and "RSS" in s["peak_memory_kind"]
    s = bench.summarise("malaria", _malaria_raw([None, None, None], None), wall_seconds=30.0)
    assert s["seconds_to_target"] is None and s["meets_target"] is False
    raw = _malaria_raw([0.1, 0.2, 0.3], 0.3)
    raw["peak_memory"] = {"rss_mb": 2000.0, "cuda_mb": 512.0}  # on a GPU, CUDA's peak is the figure
    s = bench.summarise("malaria", raw, wall_seconds=30.0)
    assert s["peak_memory_mb"] == 512.0 and s["peak_memory_kind"] == "CUDA peak allocated"


def test_the_registry_chooses_the_labs_and_each_has_a_target(tmp_path, monkeypatch):
    assert bench.BENCH_LABS == [lab.name for lab in LABS if lab.bench]
    assert set(bench.BENCH_LABS) == {"vanilla", "cwgan", "malaria", "fc", "iclevr"}
    assert set(bench.BENCH_LABS) <= set(bench.TARGETS)
    ran = []

    def fake_run_lab(lab, profile, workdir, timeout, keep=None, inplace_results=None):  # no notebook: which labs run
        ran.append(lab)
        assert inplace_results is None
        return {"lab": lab, "per_epoch_train_seconds": [1.0], "per_epoch_" + bench.TARGETS[lab][0]: [0.5]}

    monkeypatch.setattr(bench, "run_lab", fake_run_lab)
    monkeypatch.setattr(bench, "to_markdown", lambda report: "")
    assert bench.main(["--profile", "smoke", "--out", str(tmp_path)]) == 0
    assert ran == bench.BENCH_LABS


def test_committed_results_stay_readable():
    """The committed result files (older ones written before Lab 3 was benchmarked) still render, and every
    field they have is still written, with the same meaning, by today's summarise and run_lab."""
    new_keys = set(bench.summarise("malaria", dict(_malaria_raw([0.1, 0.2, 0.3], 0.3), step_flops=1e9), 1.0)) | {"load_average"}
    new_keys |= {"all_runs_train_seconds"}  # summarise writes it for the iclevr lab (its three runs together)
    files = sorted((REPO_ROOT / "results").glob("bench_*.json"))
    assert files
    for path in files:
        report = json.loads(path.read_text())
        md = bench.to_markdown(report)
        for r in report["results"]:
            assert f"| {r['lab']} | {r['epochs']} |" in md
            old = set(r) - {"per_epoch_" + bench.TARGETS[r["lab"]][0]}  # the per-epoch key is named after the lab's metric
            assert old <= new_keys, (path.name, old - new_keys)
        if not any(r.get("per_epoch_train_seconds") for r in report["results"]):
            assert bench.plot_metric_against_time(report, Path("/nonexistent/plot.png")) is None  # nothing to plot
        else:
            assert bench.metric_figure(report) is not None


def test_inplace_names_the_report_in_each_notebook_and_refuses_smoke(tmp_path, monkeypatch, capsys):
    passed = []

    def fake_run_lab(lab, profile, workdir, timeout, keep=None, inplace_results=None):
        passed.append((lab, inplace_results))
        return {"lab": lab, "per_epoch_train_seconds": [1.0], "per_epoch_" + bench.TARGETS[lab][0]: [0.5]}

    monkeypatch.setattr(bench, "run_lab", fake_run_lab)
    monkeypatch.setattr(bench, "to_markdown", lambda report: "")
    assert bench.main(["--profile", "full", "--labs", "cwgan", "--out", str(tmp_path), "--stem", "bench_full_cpu_cwgan",
                       "--inplace"]) == 0
    assert passed == [("cwgan", "results/bench_full_cpu_cwgan.md")]
    assert (tmp_path / "bench_full_cpu_cwgan.json").is_file()
    assert "copy the report there" in capsys.readouterr().out  # --out is not results/: the note says where it belongs
    with pytest.raises(SystemExit):
        bench.main(["--profile", "smoke", "--inplace", "--out", str(tmp_path)])
    assert "use the quick or full profile" in capsys.readouterr().err
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="first cell is not its Markdown title"):
        keep_outputs(nb, "full", 1.0)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# Title"))
    nb.metadata["widgets"] = {"state": {}}
    keep_outputs(nb, "full", 12.4, "results/x.md")
    assert "widgets" not in nb.metadata and "one run of the `full` profile" in nb.cells[0].source
    assert "12 min in all" in nb.cells[0].source and "`results/x.md`" in nb.cells[0].source


def test_the_plot_has_one_line_per_lab_against_training_seconds(tmp_path):
    results = [bench.summarise("malaria", _malaria_raw([None, 0.4, 0.6], 0.6), 1.0),
               {"lab": "vanilla", "per_epoch_train_seconds": [10.0, 20.0], "per_epoch_recognised": [0.5, 0.7]}]
    report = {"profile": "quick", "environment": {"device": "cpu", "device_name": "x86_64"}, "results": results}
    ax = bench.metric_figure(report).axes[0]
    curves = [line for line in ax.lines if not line.get_label().startswith("_")]  # thresholds are unlabelled
    assert [line.get_label() for line in curves] == ["malaria: val_macro_f1", "vanilla: recognised"]
    assert list(curves[1].get_xdata()) == [10.0, 20.0] and list(curves[1].get_ydata()) == [0.5, 0.7]
    assert sorted(line.get_ydata()[0] for line in ax.lines if line.get_label().startswith("_")) == [0.6, 0.85]  # quick targets
    assert bench.plot_metric_against_time(report, tmp_path / "p.png").stat().st_size > 10_000


def _smoke_report(tmp_path, monkeypatch, lab):
    monkeypatch.setenv("GANLAB_DEVICE", "cpu")
    assert bench.main(["--profile", "smoke", "--labs", lab, "--out", str(tmp_path),
                       "--notebooks", str(tmp_path / "nb")]) == 0
    report = json.loads((tmp_path / "bench_smoke_cpu.json").read_text())
    env = report["environment"]
    assert env["device"] == "cpu" and env["torch"] == __import__("torch").__version__
    assert report["command"].startswith("python -m helpers.course.bench --profile smoke")
    assert all(len(report["load_average"][k]) == 3 for k in ("start", "end"))
    (r,) = report["results"]
    key = bench.TARGETS[lab][0]
    assert r["lab"] == lab and r["epochs"] == 2 and r["train_images_per_second"] > 0 and r["target_metric"] == key
    assert len(r["per_epoch_" + key]) == 2
    assert r["per_epoch_train_seconds"][-1] == pytest.approx(r["train_seconds"], abs=0.1)
    assert 0 < r["per_epoch_train_seconds"][0] < r["per_epoch_train_seconds"][1]
    assert r["peak_memory_mb"] > 100 and r["peak_memory"]["cuda_mb"] is None  # the kernel's RSS: torch alone is more
    assert all(len(r["load_average"][k]) == 3 for k in ("start", "end"))
    assert r["generate_contract"] == "passed"  # the one contract, checked by helpers.course.probe in the kernel
    md = (tmp_path / "bench_smoke_cpu.md").read_text()
    assert f"| {lab} | 2 |" in md and "torch " + env["torch"] in md and "Load average" in md
    assert report["plot"] == "bench_smoke_cpu.png" and (tmp_path / "bench_smoke_cpu.png").stat().st_size > 10_000
    assert "](bench_smoke_cpu.png)" in md
    return r, md


def test_bench_runs_vanilla_in_smoke_profile_on_cpu(tmp_path, monkeypatch):
    r, md = _smoke_report(tmp_path, monkeypatch, "vanilla")
    m = r["metrics"]
    assert abs(sum(m["class_histogram"]) - 1) < 1e-6 and 0 <= m["confident_fraction"] <= 1
    assert "real_floor" in m
    assert r["flops"]["step_flops"] > 1e6 and "estimated T4 training time" in md  # fit counted one real step
    executed = nbformat.read(tmp_path / "nb" / "vanilla_smoke.ipynb", as_version=4)  # kept for its figures
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))


def test_bench_runs_fc_in_smoke_profile_on_cpu(tmp_path, monkeypatch):
    """The fully connected GAN: the baseline run (its G, history and config) is what the benchmark measures."""
    r, md = _smoke_report(tmp_path, monkeypatch, "fc")
    m = r["metrics"]
    assert abs(sum(m["class_histogram"]) - 1) < 1e-6 and 0 <= m["confident_fraction"] <= 1 and "real_floor" in m
    assert r["config"]["num_epochs"] == 2 and r["config"]["dropout"] > 0  # the baseline's config, dropout on
    assert "recognised >= 0.5" in md


def test_bench_runs_iclevr_in_smoke_profile_on_cpu(tmp_path, monkeypatch):
    """The i-CLEVR lab: the SAGAN run's G (generate's) is measured, with both comparison runs and the rendered floor;
    the time target covers all three runs."""
    r, md = _smoke_report(tmp_path, monkeypatch, "iclevr")
    m = r["metrics"]
    assert set(m["runs"]) == {"sagan", "sn", "dcgan"} and m["run"] == "sagan"
    for key in ("accuracy_test", "accuracy_new_test"):
        assert 0 <= m[key] <= 1 and 0 < m["real_floor"][key] <= 1
    assert m["fd"] > 0 and r["all_runs_train_seconds"] >= r["train_seconds"]
    assert r["config"]["spectral_norm"] and r["config"]["self_attention"]
    assert "accuracy >= 0.5" in md and "new_test accuracy" in md


def test_iclevr_targets_need_both_test_files():
    floor = {"accuracy_test": 0.9, "accuracy_new_test": 0.9}
    good = {"accuracy_test": 0.82, "accuracy_new_test": 0.81, "real_floor": floor}
    assert all(ok for _, ok in bench.target_checks("iclevr", "full", good, 2600))
    assert not all(ok for _, ok in bench.target_checks("iclevr", "full", {**good, "accuracy_new_test": 0.7}, 2600))
    assert not all(ok for _, ok in bench.target_checks("iclevr", "full", good, 2800))        # > 45 minutes
    assert all(ok for _, ok in bench.target_checks("iclevr", "quick", {**good, "accuracy_test": 0.55}, 290))
    assert not all(ok for _, ok in bench.target_checks("iclevr", "quick", good, 310))        # > 5 minutes


def test_bench_runs_malaria_in_smoke_profile_on_cpu(tmp_path, monkeypatch):
    r, md = _smoke_report(tmp_path, monkeypatch, "malaria")
    m = r["metrics"]
    assert r["task1_train_seconds"] > 0 and "val_macro_f1 >= 0.6" in md
    assert m["num_val_patches"] > 3 and set(m["val_f1_per_stage"]) == {"ring", "trophozoite", "schizont", "gametocyte"}
    defined = [v for v in m["val_f1_per_stage"].values() if v is not None]
    assert m["val_macro_f1"] == (pytest.approx(sum(defined) / len(defined)) if defined else None)
    last_epoch = r["per_epoch_val_macro_f1"][-1]  # the run's own last-epoch value; the probe recomputes the final one
    assert (m["val_macro_f1"] is None) if last_epoch is None else m["val_macro_f1"] == pytest.approx(last_epoch, abs=1e-4)
    assert m["feature_frechet_distance"] >= 0 and m["real_floor"]["feature_frechet_distance"] >= 0


def test_target_checks_follow_the_profile_and_the_floor():
    floor = {"frechet_distance": 0.8, "confident_fraction": 0.98, "conditional_accuracy": 0.905,
             "conditional_accuracy_per_class": [0.9] * 10}
    good = {"confident_fraction": 0.86, "class_histogram": [0.1] * 10, "frechet_distance": 7.9, "real_floor": floor}
    assert all(ok for _, ok in bench.target_checks("vanilla", "quick", good, 170))
    assert not all(ok for _, ok in bench.target_checks("vanilla", "full", good, 170))      # 92% and 4x in full
    slow = dict(bench.target_checks("vanilla", "quick", good, 181))
    assert [ok for what, ok in slow.items() if what.startswith("training")] == [False]
    lopsided = {**good, "class_histogram": [0.05] + [0.95 / 9] * 9}
    assert not all(ok for _, ok in bench.target_checks("vanilla", "quick", lopsided, 100))
    cw = {"conditional_accuracy": 0.88, "conditional_accuracy_per_class": [0.9] * 9 + [0.79], "frechet_distance": 3.0,
          "real_floor": floor}
    checks = dict(bench.target_checks("cwgan", "full", cw, 2000))
    assert [ok for what, ok in checks.items() if "class gap" in what] == [False]       # 11 points below its floor
    assert bench.target_checks("malaria", "full", {"val_macro_f1": None}, 10)[0][1] is False


def test_the_speed_tool_times_the_notebooks_own_step_in_turns():
    from helpers.course import speed
    from helpers.course.notebook_code import load_definitions

    nb = load_definitions(REPO_ROOT / "lab8_vanilla.ipynb")
    variants = [speed.Variant("eager", 1, 8), speed.Variant("channels_last", 1, 8, channels_last=True)]
    steps = speed.measure_steps(nb, variants, g_width=4, d_width=4, steps=2, rounds=3, warmup=1)
    assert [len(s["step_ms_rounds"]) for s in steps] == [3, 3]
    for s in steps:
        assert s["step_ms"] == pytest.approx(sorted(s["step_ms_rounds"])[1], abs=0.01)  # the median round
        assert s["images_per_second"] == pytest.approx(8 / (s["step_ms"] / 1e3), rel=0.01)
    runner = speed.StepRunner(nb, variants[1], 4, 4)
    before = [p.detach().clone() for p in runner.G.parameters()]
    runner.step()  # the notebook's step: both networks change, channels_last stays
    assert any(not torch.equal(a, b) for a, b in zip(before, runner.G.parameters()))
    assert runner.x_real.is_contiguous(memory_format=torch.channels_last)
    report = {"command": "c", "environment": bench.environment(), "g_width": 4, "d_width": 4, "rounds": 3,
              "steps_per_round": 2, "load_average": {"start": None, "end": None}, "steps": steps,
              "evaluation": [{"mode": "torch.no_grad", "seconds": 1.0, "rounds": [1.0]}]}
    md = speed.to_markdown(report)
    assert "| eager | " in md and "| 1.00x |" in md and "| torch.no_grad | 1.0 |" in md
