"""Grade the trained model, not only the code: rebuild a submission's networks from its checkpoint.

    python -m helpers.course.grade_checkpoint SUBMISSION.ipynb last.pt --lab vanilla|cwgan [--samples N]

(``python -m helpers.course.grade SUBMISSION.ipynb --checkpoint last.pt`` calls this for you.)

In a fresh process: the submission's own imports, functions and classes are loaded (nothing else of
the notebook runs), its ``Config`` is rebuilt from the config saved in the checkpoint, its networks
are built from that config and loaded from the checkpoint (``weights_only=True``), and its own
``generate`` is called with fixed seeds. The samples are scored by :func:`helpers.course.scoring.score_samples`
(the project's classifiers, one named set of thresholds, beside the real-data floor), copies included.

The result travels back as JSON to a file whose path the parent hands over on standard input before
any submission code is loaded, so the submission cannot learn it from ``sys.argv`` or the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from helpers.checkpoints import CheckpointError, restore, safe_load
from helpers.course import scoring
from helpers.course.notebook_code import load_definitions
from helpers.sampling import mark_trained
from helpers.training import EMA

DEFAULT_SAMPLES = 2000
DEFAULT_TIMEOUT = 600


class CheckpointGradeError(RuntimeError):
    """The checkpoint cannot be turned back into the submission's networks; the message says why."""


def _vanilla_networks(nb: Any, cfg: Any) -> dict[str, torch.nn.Module]:
    G = nb.Generator(cfg.latent_dim, cfg.g_width)
    return {"G": G, "D": nb.Discriminator(cfg.d_width), "G_ema": EMA(G, decay=cfg.ema_decay)}


def _cwgan_networks(nb: Any, cfg: Any) -> dict[str, torch.nn.Module]:
    G = nb.Generator(cfg.latent_dim, cfg.g_width, cfg.num_classes)
    return {"G": G, "D": nb.Critic(cfg.d_width, cfg.num_classes), "G_ema": EMA(G, decay=cfg.ema_decay)}


# lab -> how the lab's notebook builds its networks from its Config (the same calls as its cells).
NETWORKS: dict[str, Callable[[Any, Any], dict[str, torch.nn.Module]]] = {
    "vanilla": _vanilla_networks,
    "cwgan": _cwgan_networks,
}


def rebuild_config(nb: Any, saved: dict[str, Any]) -> Any:
    """The notebook's ``Config`` with the values saved in the checkpoint (unknown keys are an error)."""
    config_cls = getattr(nb, "Config", None)
    if config_cls is None or not dataclasses.is_dataclass(config_cls):
        raise CheckpointGradeError("the submission defines no dataclass `Config`, so its networks cannot be rebuilt.")
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(saved) - names)
    if unknown:
        raise CheckpointGradeError(f"the checkpoint's config has fields the submission's Config lacks: {unknown}; "
                                   "was it saved by another notebook?")
    return config_cls(**saved)


def load_trained(submission: str | os.PathLike, checkpoint: str | os.PathLike, lab: str) -> Any:
    """The submission's code as a module, with ``cfg``, ``device`` and its trained networks set on it."""
    if lab not in NETWORKS:
        raise CheckpointGradeError(f"checkpoint grading covers {sorted(NETWORKS)}, not {lab!r}.")
    try:
        ckpt = safe_load(checkpoint)
    except CheckpointError as err:
        raise CheckpointGradeError(str(err)) from None
    try:
        saved = scoring.saved_config(ckpt, checkpoint)
    except CheckpointError as err:
        raise CheckpointGradeError(str(err)) from None
    nb = load_definitions(submission, module_name=f"ganlab_submission_{lab}")
    cfg = rebuild_config(nb, saved)
    try:
        networks = NETWORKS[lab](nb, cfg)
    except Exception as err:  # noqa: BLE001 - the submission's constructors
        raise CheckpointGradeError(f"building the networks from the saved config failed: {type(err).__name__}: {err}") from None
    try:
        restore(ckpt, networks, path=checkpoint, rng=False)
    except CheckpointError as err:
        raise CheckpointGradeError(str(err)) from None
    for net in networks.values():
        mark_trained(net)
        net.eval()
    nb.cfg, nb.device = cfg, torch.device("cpu")
    for name, net in networks.items():
        setattr(nb, name, net)
    nb.__dict__["_ganlab_epoch"] = int(ckpt.get("epoch", 0))
    return nb


def grade_checkpoint(submission: str | os.PathLike, checkpoint: str | os.PathLike, lab: str,
                     samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Rebuild, sample and score in this process; every failure is reported, never raised."""
    started = time.monotonic()
    result: dict[str, Any] = {"checkpoint": str(checkpoint), "lab": lab, "status": "error", "samples": samples}
    try:
        nb = load_trained(submission, checkpoint, lab)
        result["epoch"] = nb.__dict__["_ganlab_epoch"]
        result["config"] = dataclasses.asdict(nb.cfg)
        generate = getattr(nb, "generate", None)
        if not callable(generate):
            raise CheckpointGradeError("the submission defines no function `generate`.")
        scores = scoring.score_samples(lab, generate, n=samples, seed=seed)
        result.update(scores, status="passed" if scores.get("passed") else "failed")
    except CheckpointGradeError as err:
        result["message"] = str(err)
    except Exception as err:  # noqa: BLE001 - the submission's generate may raise anything
        result["message"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()[-2000:]
    result["duration_s"] = round(time.monotonic() - started, 1)
    return result


def run(submission: str | os.PathLike, checkpoint: str | os.PathLike, lab: str, out_dir: str | os.PathLike,
        samples: int = DEFAULT_SAMPLES, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """:func:`grade_checkpoint` in a fresh process with a time limit (what the grader calls)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result_path = out_dir / f"checkpoint-{os.urandom(8).hex()}.json"
    cmd = [sys.executable, "-m", "helpers.course.grade_checkpoint", str(Path(submission).resolve()),
           str(Path(checkpoint).resolve()), "--lab", lab, "--samples", str(samples), "--result-from-stdin"]
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "MPLBACKEND": "Agg"}
    base = {"checkpoint": str(checkpoint), "lab": lab, "status": "error", "samples": samples}
    try:
        proc = subprocess.run(cmd, input=str(result_path) + "\n", text=True, capture_output=True, timeout=timeout,
                              cwd=out_dir, env=env)
    except subprocess.TimeoutExpired:
        return {**base, "message": f"scoring the checkpoint took longer than {timeout:g} s and was stopped."}
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        return {**base, "message": f"the scoring process ended (exit code {proc.returncode}) without a result: "
                                   + " | ".join(tail)}
    finally:
        result_path.unlink(missing_ok=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission")
    parser.add_argument("checkpoint")
    parser.add_argument("--lab", required=True, choices=sorted(NETWORKS))
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="samples scored (default %(default)s)")
    parser.add_argument("--result-from-stdin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    result_path = Path(sys.stdin.readline().strip()) if args.result_from_stdin else None  # before any submission code
    result = grade_checkpoint(args.submission, args.checkpoint, args.lab, samples=args.samples)
    text = json.dumps(result, indent=2, default=str)
    if result_path is None:
        print(text)
    else:
        result_path.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
