import json

import nbformat

from helpers.course import bench


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


def test_bench_runs_vanilla_in_smoke_profile_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_DEVICE", "cpu")
    assert bench.main(["--profile", "smoke", "--labs", "vanilla", "--out", str(tmp_path),
                       "--notebooks", str(tmp_path / "nb")]) == 0
    report = json.loads((tmp_path / "bench_smoke_cpu.json").read_text())
    env = report["environment"]
    assert env["device"] == "cpu" and env["torch"] == __import__("torch").__version__
    assert report["command"].startswith("python -m helpers.course.bench --profile smoke")
    (r,) = report["results"]
    assert r["lab"] == "vanilla" and r["epochs"] == 2 and r["train_images_per_second"] > 0
    m = r["metrics"]
    assert abs(sum(m["class_histogram"]) - 1) < 1e-6 and 0 <= m["confident_fraction"] <= 1
    assert "real_floor" in m
    assert r["generate_contract"] == "passed"  # the one contract, checked by helpers.course.probe in the kernel
    md = (tmp_path / "bench_smoke_cpu.md").read_text()
    assert "| vanilla | 2 |" in md and "torch " + env["torch"] in md
    executed = nbformat.read(tmp_path / "nb" / "vanilla_smoke.ipynb", as_version=4)  # kept for its figures
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
