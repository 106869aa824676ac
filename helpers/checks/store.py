"""The stored answers of the instant checks, regenerated from the solution notebooks.

    python -m helpers.checks.store            # recompute and write helpers/checks/answers/<lab>.json
    python -m helpers.checks.store --check    # exit 1, naming each value, when a stored answer is stale (CI)

The checks compare a student's code with numbers, never with reference code a student could read.
Those numbers come from the solution notebooks' own functions and classes (loaded with
:func:`helpers.course.notebook_code.load_definitions`), evaluated on the same fixed inputs the checks
use. When a solution changes, this command brings the stored answers in step; ``--check`` compares
with a relative tolerance of 1e-5 (BLAS and thread counts move the last digits), so it fails only
when a solution and its stored answers really disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from helpers.checks import common, cwgan, malaria
from helpers.course.notebook_code import load_definitions
from helpers.env import shown_path

REPO_ROOT = Path(__file__).resolve().parents[2]
RTOL, ATOL = 1e-5, 1e-6


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def vanilla_answers(nb) -> dict[str, Any]:
    """BCE losses on the checks' fixed logits, and on large logits where sigmoid + BCELoss saturates."""
    real, fake = common._fixed_logits()
    big_real, big_fake = torch.tensor([40.0, -20.0, 3.0, -0.5]), torch.tensor([-120.0, 40.0, 0.5, -3.0])
    return {"losses": {
        "d_loss": _value(nb.d_loss_bce(logits_real=real, logits_fake=fake)),
        "g_loss": _value(nb.g_loss_bce(logits_fake=fake)),
        "d_loss_large": _value(nb.d_loss_bce(logits_real=big_real, logits_fake=big_fake)),
        "g_loss_large": _value(nb.g_loss_bce(logits_fake=big_fake)),
    }}


def cwgan_answers(nb) -> dict[str, Any]:
    """Wasserstein losses on fixed scores; the gradient penalty on the checks' closed-form critic."""
    real, fake = common._fixed_logits()
    critic = cwgan._FixedCritic()
    x_real, x_fake, y, epsilon = cwgan._fixed_cwgan_batch()
    gp = nb.get_gradient_regularisation(critic, x_real, x_fake, y, epsilon=epsilon)
    critic.zero_grad()
    gp.backward()
    return {
        "losses": {
            "g_loss": _value(nb.get_WLoss_generator(score_fake=fake)),
            "d_loss": _value(nb.get_WLoss_discriminator(score_fake=fake, score_real=real)),
            "d_loss_short": _value(nb.get_WLoss_discriminator(score_fake=fake[:4], score_real=real)),
        },
        "gradient_penalty": {"value": _value(gp), "grad_a": _value(critic.a.grad)},
    }


def malaria_answers(nb) -> dict[str, Any]:
    """Parameter layouts at 32 and 64 px, outputs under fixed weights, least-squares and stage losses."""
    from helpers.malaria.models import state_dict_layout

    classes = {"generator": nb.Generator, "discriminator": nb.Discriminator, "multitask": nb.MultiTaskDiscriminator}
    layouts = {f"{key}_{size}": state_dict_layout(cls(malaria._malaria_config(size)))
               for size in (32, 64) for key, cls in classes.items()}
    with torch.no_grad():
        G = common._fixed_weights(nb.Generator(malaria._malaria_config(32)))
        x = G(common._fixed_input((2, 100), 1) * 2)
        D = common._fixed_weights(nb.Discriminator(malaria._malaria_config(32)))
        score_d = D(common._fixed_input((2, 3, 32, 32), 3))
        M = common._fixed_weights(nb.MultiTaskDiscriminator(malaria._malaria_config(32)))
        x_m = common._fixed_input((2, 3, 32, 32), 5)
        score_m, logits = M.forward_logits(x_m)
        _, probs = M(x_m)
    real, fake = common._fixed_logits()
    logits_stage, targets = malaria._fixed_stage_batch()
    return {
        "layouts": layouts,
        "outputs": {
            "generator_32": {"sample": x.flatten()[:: max(1, x.numel() // 64)][:64].tolist()},
            "discriminator_32": {"score": score_d.tolist()},
            "multitask_32": {"score": score_m.tolist(), "logits": logits.tolist(), "probs": probs.tolist()},
        },
        "losses": {
            "lsgan_d": _value(nb.lsgan_d_loss(score_real=real, score_fake=fake)),
            "lsgan_g": _value(nb.lsgan_g_loss(score_fake=fake)),
            "stage_bce": _value(nb.stage_loss_bce(logits_stage=logits_stage, targets=targets)),
        },
    }


def iclevr_answers(nb) -> dict[str, Any]:
    """Self-attention and conditional batch norm under fixed weights on fixed inputs; hinge losses on fixed scores."""
    from helpers.checks import iclevr

    x = iclevr.attention_inputs()
    x_cbn, y_cbn = iclevr.cbn_inputs()
    with torch.no_grad():
        attention = iclevr.fixed_attention(nb.SelfAttention)(x)
        cbn = common._fixed_weights(nb.ConditionalBatchNorm2d(iclevr.CBN_CHANNELS, iclevr.NUM_OBJECTS))(x_cbn, y_cbn)
    real, fake = iclevr._fixed_scores()
    return {
        "attention": {"output": attention.flatten().tolist()},
        "cbn": {"output": cbn.flatten().tolist()},
        "losses": {
            "d_loss": _value(nb.d_loss_hinge(score_real=real, score_fake=fake)),
            "d_loss_short": _value(nb.d_loss_hinge(score_real=real, score_fake=fake[:3])),
            "g_loss": _value(nb.g_loss_hinge(score_fake=fake)),
        },
    }


# lab name -> (solution notebook, how its answers are computed)
ANSWERS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "vanilla": ("lab8_vanilla.ipynb", vanilla_answers),
    "cwgan": ("lab8_cwgan.ipynb", cwgan_answers),
    "malaria": ("dcgan_malaria.ipynb", malaria_answers),
    "fc": ("extra/fc_gan.ipynb", vanilla_answers),  # the same BCE losses, computed from the fc notebook's own code
    "iclevr": ("extra/cgan_iclevr.ipynb", iclevr_answers),
}


def compute(lab: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """The answers of ``lab``, computed from its solution notebook under ``root``."""
    notebook, answers = ANSWERS[lab]
    torch.manual_seed(0)
    data = answers(load_definitions(root / notebook, module_name=f"ganlab_store_{lab}"))
    return {"_note": f"Expected values for helpers.checks.{lab}, generated from the solution notebook {notebook} "
                     f"by `python -m helpers.checks.store` (do not edit by hand).", **data}


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """Where two answer trees differ: missing keys, other shapes, numbers beyond the tolerance."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{where or 'top'}: stored {type(got).__name__}, computed a mapping"]
        out = [f"{where}.{k}: missing in the stored answers" for k in want if k not in got]
        out += [f"{where}.{k}: stored but no longer computed" for k in got if k not in want]
        for k in want:
            if k in got and k != "_note":
                out += differences(got[k], want[k], f"{where}.{k}" if where else k)
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: stored {got!r:.80}, computed {want!r:.80}"]
        return [d for i, (a, b) in enumerate(zip(got, want)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(want, float) or isinstance(got, float):
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL):
            return [f"{where}: stored {got!r}, computed {want!r}"]
        return []
    return [] if got == want else [f"{where}: stored {got!r}, computed {want!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    parser.add_argument("--labs", nargs="*", default=list(ANSWERS), choices=list(ANSWERS))
    args = parser.parse_args(argv)
    stale = 0
    for lab in args.labs:
        path = common.CHECK_DATA / f"{lab}.json"
        data = compute(lab)
        if not args.check:
            path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {shown_path(path)}")
            continue
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        diffs = differences(stored, data)
        if diffs:
            stale += 1
            print(f"{shown_path(path)} is stale ({len(diffs)} values): " + "; ".join(diffs[:5]))
        else:
            print(f"{shown_path(path)}: in step with {ANSWERS[lab][0]}")
    if stale:
        print("Run `python -m helpers.checks.store` and commit helpers/checks/answers/.")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
