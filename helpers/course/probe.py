"""Probes that run inside an executed lab notebook's kernel: a real module the kernel imports.

The benchmark and the notebook tests append one cell to a notebook,

    from helpers.course.probe import print_bench_result
    print_bench_result(globals(), "vanilla")

which measures the notebook's own objects and prints one line of JSON (``BENCH-RESULT {...}`` or
``PROBE-RESULT {...}``) for the caller to read. Both check ``generate`` with the one contract
(:mod:`helpers.checks.contract`). The grader does not use this module: it calls the checks itself in
its own process (:mod:`helpers.course.grade_runner`) and trusts nothing a notebook prints.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any, Mapping

import numpy as np
import torch

from helpers.checks.contract import contract_items
from helpers.checks.graded import Defined
from helpers.course.labs import lab_named

BENCH_MARK = "BENCH-RESULT "
PROBE_MARK = "PROBE-RESULT "


def contract_report(names: Mapping[str, Any], lab: str) -> dict:
    """The generate contract checked on a notebook's names: ``{"status", "items": [...]}``."""
    record = lab_named(lab)
    options = record.checks_module().graded_generate(Defined(names))
    items = contract_items(options.pop("generate"), record.contract, **options)
    return {"status": "passed" if all(i.ok for i in items) else "failed", "items": [i.to_dict() for i in items]}


def untrained_is_refused(names: dict, lab: str) -> bool:
    """``generate`` raises "not been trained" when its network is a fresh, untrained one (restored afterwards)."""
    cfg, device = names["cfg"], names["device"]
    if lab == "vanilla":
        key, fresh = "G_ema", names["EMA"](names["Generator"](cfg.latent_dim, cfg.g_width).to(device))
        call = (2,)
    elif lab == "fc":
        key, fresh = "G", names["Generator"](cfg.latent_dim, cfg.hidden).to(device)
        call = (2,)
    elif lab == "cwgan":
        key, fresh = "G_ema", names["EMA"](names["Generator"](cfg.latent_dim, cfg.g_width).to(device))
        call = (2, "Bag")
    elif lab == "iclevr":
        key, fresh = "G", names["Generator"](cfg).to(device)
        call = (2, ["red cube"])
    else:
        key, fresh = "G", names["Generator"](names["model_config"]).to(device)
        call = (2,)
    saved = names[key]
    names[key] = fresh  # the notebook's globals: generate reads its network from them
    try:
        names["generate"](*call)
    except RuntimeError as err:
        return "not been trained" in str(err)
    finally:
        names[key] = saved
    return False


def error_names_argument(names: Mapping[str, Any], lab: str) -> bool:
    """Every bad count (and, in the cwgan lab, bad class) raises an error whose message names what was passed."""
    generate = names["generate"]
    calls = [((bad,), err) for bad, err in ((0, ValueError), (-1, ValueError), (1.5, TypeError), ("3", TypeError),
                                            (None, TypeError), (True, TypeError))]
    if lab == "iclevr":
        calls = [((*args, ["red cube"]), err) for args, err in calls]
    if lab == "cwgan":
        calls = [((*args, 1), err) for args, err in calls]
        calls += [((2, bad), err) for bad, err in ((10, ValueError), ("", ValueError), (2.0, TypeError),
                                                   ([1, 2], TypeError))]
    for args, err in calls:
        try:
            generate(*args)
        except err as e:
            if not any(repr(a) in str(e) or str(a) in str(e) for a in args):
                return False
        else:
            return False
    return True


def _malaria_facts(names: dict) -> dict:
    """The Lab 3 run: both tasks' histories, the data, the saved models and the saved patch's prediction."""
    from PIL import Image

    from helpers.sampling import eval_mode

    history_mt, device = names["history_mt"], names["device"]
    a = names["generate"](3, seed=1, generator=names["G_mt"])
    patch = np.asarray(Image.open(names["patch_png"]).convert("RGB"))  # what malaria_test.py will read
    x = torch.from_numpy(patch.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with eval_mode(names["D_mt"]):
        score, probs = names["D_mt"](x.to(device))
    return {"generate_mt_shape": list(a.shape), "data": str(names["DATA_PATH"]), "profile": names["env"].profile,
            "epochs_mt": len(history_mt["epoch_end"]), "iters_mt": len(history_mt["loss_G"]),
            "val_f1_epochs": len(history_mt["val/f1"]), "train_loss_epochs": len(history_mt["train/loss"]),
            "n_train": len(names["x_train"]), "n_val": len(names["x_val"]),
            "models": {k: str(p) for k, (_, p) in names["saved"].items()}, "patch": str(names["patch_png"]),
            "probs": probs[0].tolist(), "score": score.item(), "experiments": [r.name for r in names["results"].runs]}


def graded_report(names: Mapping[str, Any], lab: str) -> dict[str, str]:
    """Every check the grader registers for ``lab`` (``GRADED``), called on the notebook's names:
    ``{check id: "passed" or what it raised}``."""
    out = {}
    for record in lab_named(lab).checks_module().GRADED:
        try:
            record.call(Defined(names))
            out[record.id] = "passed"
        except Exception as err:  # noqa: BLE001 - the caller asserts on it
            out[record.id] = f"{type(err).__name__}: {err}"
    return out


def print_probe_result(names: dict, lab: str) -> dict:
    """What the notebook tests assert on: the contract, the graded checks, the run's length, facts of the lab."""
    history = names["history"]
    result = {"contract": contract_report(names, lab), "graded": graded_report(names, lab),
              "epochs": len(history["epoch_end"]),
              "iters": len(history["loss_G"]), "history_keys": sorted(history),
              "untrained_refused": untrained_is_refused(names, lab)}
    generate = names["generate"]
    if lab == "vanilla":
        result["ema_updates"] = int(names["G_ema"].num_updates)
    if lab == "cwgan":
        result["acc_epochs"] = len(history["conditional_accuracy"])
        result["eval_keys"] = sorted(k for k in names["report"] if "conditional" in k)
    if lab == "fc":
        result["runs"] = {name: run.epochs for name, run in names["runs"].items()}
        result["measured"] = sorted(f"{run}@{epoch}" for run, epoch in names["measurements"])
    if lab == "iclevr":
        result["runs"] = {name: run.epochs for name, run in names["runs"].items()}
        result["measured"] = sorted(names["measurements"])
        result["acc_epochs"] = len(history["accuracy"])
    if lab in ("vanilla", "cwgan", "fc", "iclevr"):
        result["error_names_argument"] = error_names_argument(names, lab)
        extra = {"cwgan": (1,), "iclevr": (["red cube"],)}.get(lab, ())
        result["numpy_count"] = list(generate(np.int64(2), *extra).shape)
    else:
        result.update(_malaria_facts(names))
    print(PROBE_MARK + json.dumps(result))
    return result


def peak_memory(device: torch.device) -> dict[str, float | None]:
    """Peak memory of this process so far, in MiB: ``rss_mb`` (resident set, the CPU's figure; None where
    the ``resource`` module is missing) and ``cuda_mb`` (CUDA's peak allocated on ``device``, else None)."""
    import sys

    rss = None
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        rss = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10
    except ImportError:  # Windows
        pass
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"rss_mb": rss, "cuda_mb": cuda}


def _finite(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (undefined scores; JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None


def macro_f1(f1_per_stage: list[float]) -> float | None:
    """Mean F1 over the stages whose F1 is defined (a stage neither present nor predicted has none), as
    :func:`helpers.malaria.metrics.macro_average` computes it; None (not NaN, for JSON) when none is defined."""
    from helpers.malaria.metrics import macro_average

    return _finite(macro_average([v for v in f1_per_stage if v is not None]))


def _malaria_bench(names: Mapping[str, Any]) -> tuple[dict, dict]:
    """Lab 3's Task 2 run (``G_mt`` against the multi-task ``D_mt``): its history with the validation
    macro-F1 per epoch added, and final scores computed here: the head on all validation and training
    patches, the feature FD of ``G_mt``'s patches against real ones beside real against real."""
    from helpers.malaria.data import STAGES
    from helpers.malaria.metrics import feature_frechet_distance, multilabel_metrics
    from helpers.sampling import eval_mode

    history = dict(names["history_mt"])
    history["val_macro_f1"] = [macro_f1(list(f1s)) for f1s in zip(*(history[f"val/{s}/f1"] for s in STAGES))]
    D_mt, device = names["D_mt"], names["device"]
    scores = {}
    for split in ("val", "train"):
        with torch.no_grad(), eval_mode(D_mt):
            logits = torch.cat([D_mt.classify_logits(x.to(device)) for x in names[f"x_{split}"].split(512)])
        scores[split] = multilabel_metrics(logits, names[f"y_{split}"])
    real = torch.cat([names["x_train"], names["x_val"]]).cpu()
    h = len(real) // 2
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    real_a, real_b = real[perm[:h]], real[perm[h:2 * h]]
    fake = torch.from_numpy(names["generate"](h, seed=2024, generator=names["G_mt"])) * 2 - 1
    val, train = scores["val"], scores["train"]
    metrics = {
        "val_macro_f1": macro_f1([val[f"{s}/f1"] for s in STAGES]),
        "val_f1_per_stage": {s: _finite(val[f"{s}/f1"]) for s in STAGES},
        "val_support_per_stage": {s: int(val[f"{s}/support"]) for s in STAGES},
        "val_f1_micro": _finite(val["f1"]), "val_exact_match": _finite(val["exact_match"]),
        "val_accuracy": _finite(val["accuracy"]), "val_loss": _finite(val["loss"]),
        "train_macro_f1": macro_f1([train[f"{s}/f1"] for s in STAGES]),
        "num_val_patches": len(names["x_val"]), "num_train_patches": len(names["x_train"]),
        "feature_frechet_distance": feature_frechet_distance(fake, real_a),
        "real_floor": {"feature_frechet_distance": feature_frechet_distance(real_b, real_a)},
        "note": f"macro-F1: mean of the per-stage F1 over the stages whose F1 is defined; feature FD on "
                f"helpers.malaria.metrics.patch_features, {h} patches each (real_floor: two halves of the real patches).",
    }
    return history, metrics


def print_bench_result(names: Mapping[str, Any], lab: str) -> dict:
    """The benchmark's measurement of a trained lab notebook: sample quality, speed, the contract."""
    from helpers.metrics import evaluate_samples

    env, cfg, history, generate, device = (names[k] for k in ("env", "cfg", "history", "generate", "device"))
    if lab in ("vanilla", "fc"):  # fc: the baseline run (its G, history and config)
        n = {"smoke": 200, "quick": 2000, "full": 5000}[env.profile]
        x = torch.from_numpy(generate(n, seed=2024)).unsqueeze(1) * 2 - 1
        metrics = evaluate_samples(x.to(device), dataset="mnist")
        images_per_step, key = cfg.batch_size, "recognised"
    elif lab == "cwgan":
        k = {"smoke": 20, "quick": 200, "full": 1000}[env.profile]
        requested = torch.arange(10).repeat_interleave(k)
        x = np.concatenate([generate(k, c, seed=3000 + c) for c in range(10)])
        metrics = evaluate_samples(torch.from_numpy(x).unsqueeze(1).to(device) * 2 - 1, dataset="fashion_mnist",
                                   requested=requested)
        images_per_step, key = cfg.batch_size * cfg.n_critic, "conditional_accuracy"
    elif lab == "malaria":
        history, metrics = _malaria_bench(names)  # Task 2: the multi-task head carries the target metric
        images_per_step, key = cfg.batch_size, "val_macro_f1"
    elif lab == "iclevr":  # the SAGAN run's G (generate's), with the comparison runs and the rendered floor beside it
        runs = {name: names["measure"](run) for name, run in names["runs"].items()}
        metrics = {**runs["sagan"], "runs": runs, "real_floor": names["floor"]()}
        images_per_step, key = cfg.batch_size, "accuracy"
    else:
        raise ValueError(f"the benchmark measures the vanilla, fc, cwgan, malaria and iclevr labs, not {lab!r}")
    result = {"metrics": metrics, "epoch_end": history["epoch_end"], "epoch_seconds": history["epoch_seconds"],
              "images_per_step": images_per_step, "per_epoch": {key: history.get(key, [])}, "config": asdict(cfg),
              "contract": contract_report(names, lab), "peak_memory": peak_memory(device),
              "step_flops": (history.get("step_flops") or [None])[0]}
    if lab == "malaria":
        result["task1_train_seconds"] = float(sum(names["history"]["epoch_seconds"]))
    if lab == "iclevr":
        result["all_runs_train_seconds"] = float(sum(sum(run.history["epoch_seconds"]) for run in names["runs"].values()))
    print(BENCH_MARK + json.dumps(result))
    return result
