"""Train the i-CLEVR evaluator on the rendered stand-in, reproducibly, on the CPU.

    python -m helpers.iclevr.train_evaluator            # writes helpers/weights/iclevr_evaluator.{pt,json}
    python -m helpers.iclevr.train_evaluator --no-save  # train and report only

Trains on the rendered ``train.json`` entries (:func:`helpers.iclevr.data.load_iclevr`) except a held-out
tenth of the *scenes* (all of ``_0``, ``_1``, ``_2`` of a scene on the same side, so no scene is seen in
training and judged in the held-out set). Augmentation, so that generated images are judged fairly:
horizontal flips, a little pixel noise, and for a third of the images a round trip through 32 x 32
(generators at 32 px are upsampled bilinearly to 64 px).

The record beside the weights holds the held-out per-object accuracy (the course's metric) and exact
match, and the **real-data floor**: the accuracy on freshly rendered images of the ``test.json`` and
``new_test.json`` conditions (several seeds, at 64 and 32 px), what a perfect generator would score.
Same seed, thread count and torch version give the same weights (seeded batch order and augmentation,
deterministic algorithms).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import time
import zlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from helpers.checkpoints import atomic_save
from helpers.iclevr.data import (
    RENDERER_VERSION,
    TEST_SETS,
    load_iclevr,
    load_test_conditions,
    load_train_entries,
    render_reference,
)
from helpers.iclevr.evaluator import RECORD_PATH, WEIGHTS_PATH, IclevrEvaluator, per_object_accuracy, predict
from helpers.iclevr.render import scene_seed


@dataclass
class EvaluatorTrainConfig:
    seed: int = 0                 # seeds the initial weights, the batch order and the augmentation
    num_epochs: int = 10          # passes over the ~16,200 training images (cube vs cylinder is learnt last)
    batch_size: int = 64          # images per step
    lr: float = 8e-3              # AdamW's peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4    # AdamW's decoupled weight decay
    heldout_every: int = 10       # a scene is held out when its seed % heldout_every == 0 (about a tenth)
    floor_seeds: int = 5          # rendered copies of each test file's 32 conditions for the real-data floor
    num_threads: int = 1          # fixed: a different thread count can change float summation order


def command_for(cfg: EvaluatorTrainConfig) -> str:
    """The shell command that reproduces ``cfg``, every setting spelled out."""
    return (f"python -m helpers.iclevr.train_evaluator --seed {cfg.seed} --num-epochs {cfg.num_epochs} "
            f"--batch-size {cfg.batch_size} --lr {cfg.lr} --weight-decay {cfg.weight_decay} "
            f"--heldout-every {cfg.heldout_every} --floor-seeds {cfg.floor_seeds} --num-threads {cfg.num_threads}")


def heldout_mask(names: list[str], every: int) -> torch.Tensor:
    """True for the entries of held-out scenes (by the scene's seed, so a scene's _0/_1/_2 go together)."""
    return torch.tensor([scene_seed(name) % every == 0 for name in names])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flips, a round trip through 32 x 32 for a third, pixel noise; ``x`` float in [0, 1], (B, 3, 64, 64)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    small = torch.rand(b, generator=generator) < 1 / 3
    if small.any():
        down = F.interpolate(x[small], size=(32, 32), mode="area")
        x[small] = F.interpolate(down, size=(64, 64), mode="bilinear", align_corners=False)
    sigma = 0.03 * torch.rand(b, 1, 1, 1, generator=generator)
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def exact_match(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of images whose top-k outputs (k = objects asked for) are exactly the objects asked for."""
    hits = torch.zeros(len(y), dtype=torch.bool)
    for k in (1, 2, 3):
        rows = y.sum(dim=1) == k
        if rows.any():
            top = logits[rows].topk(k, dim=1).indices
            hits[rows] = y[rows].gather(1, top).sum(dim=1) == k
    return hits.float().mean().item()


def real_data_floor(model: IclevrEvaluator, num_seeds: int) -> dict:
    """Accuracy on rendered images of each test file's conditions: mean, min and max over ``num_seeds`` seeds."""
    floor = {}
    for name in TEST_SETS:
        conditions = load_test_conditions(name)
        for size in (64, 32):
            accs = [per_object_accuracy(predict(render_reference(conditions, seed=s, size=size).float() / 255, model),
                                        conditions) for s in range(num_seeds)]
            floor[f"{name}_{size}px"] = {"mean": round(sum(accs) / len(accs), 4), "min": round(min(accs), 4),
                                         "max": round(max(accs), 4), "seeds": list(range(num_seeds))}
    return floor


def train_evaluator(cfg: EvaluatorTrainConfig, verbose: bool = True) -> tuple[IclevrEvaluator, dict]:
    """Train the evaluator from ``cfg``; returns the model (eval mode) and its JSON-ready record."""
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    names = [name for name, _ in load_train_entries()]
    x_all, y_all = load_iclevr()                                  # (18009, 3, 64, 64) uint8, (18009, 24)
    held = heldout_mask(names, cfg.heldout_every)
    x_train, y_train, x_held, y_held = x_all[~held], y_all[~held], x_all[held], y_all[held]
    if verbose:
        print(f"{len(x_train):,} training and {len(x_held):,} held-out images "
              f"({int(held.sum()) // 3:,} held-out scenes)", flush=True)

    model = IclevrEvaluator()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(x_train) // cfg.batch_size               # the last partial batch is dropped, on purpose
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.num_epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()
    for epoch in range(cfg.num_epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size: (step + 1) * cfg.batch_size]
            x = augment(x_train[idx].float() / 255, gen)           # (B, 3, 64, 64) in [0, 1]
            loss = F.binary_cross_entropy_with_logits(model(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        model.eval()
        logits = predict(x_held.float() / 255, model)
        acc, exact = per_object_accuracy(logits, y_held), exact_match(logits, y_held)
        if verbose:
            print(f"epoch {epoch + 1}/{cfg.num_epochs}  train loss {loss_sum / steps_per_epoch:.4f}  held-out "
                  f"per-object accuracy {acc:.4f}  exact match {exact:.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    train_seconds = time.perf_counter() - start
    model.eval()
    small = F.interpolate(x_held.float() / 255, size=(32, 32), mode="area")
    acc_32 = per_object_accuracy(predict(small, model), y_held)
    floor = real_data_floor(model, cfg.floor_seeds)
    record = {
        "dataset": "i-CLEVR stand-in (helpers.iclevr.render), train.json entries",
        "renderer_version": RENDERER_VERSION,
        "heldout_per_object_accuracy": round(acc, 6),
        "heldout_exact_match": round(exact, 6),
        "heldout_per_object_accuracy_32px": round(acc_32, 6),
        "num_train_images": int(len(x_train)),
        "num_heldout_images": int(len(x_held)),
        "floor": floor,
        "config": asdict(cfg),
        "command": command_for(cfg),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": platform.machine(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "train_seconds": round(train_seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return model, record


def save_evaluator(model: IclevrEvaluator, record: dict) -> None:
    """Write the weights and, beside them, the record with the weights' SHA-256 (both atomically)."""
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_save(state_dict, WEIGHTS_PATH)
    record = dict(record, weights_file=WEIGHTS_PATH.name,
                  weights_sha256=hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest())
    tmp = RECORD_PATH.with_name(RECORD_PATH.name + f".{zlib.crc32(os.urandom(4))}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, RECORD_PATH)


def main(argv: list[str] | None = None) -> None:
    d = EvaluatorTrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--num-epochs", type=int, default=d.num_epochs)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--heldout-every", type=int, default=d.heldout_every)
    parser.add_argument("--floor-seeds", type=int, default=d.floor_seeds)
    parser.add_argument("--num-threads", type=int, default=d.num_threads)
    parser.add_argument("--no-save", action="store_true", help="train and report, leave the committed weights alone")
    args = parser.parse_args(argv)
    cfg = EvaluatorTrainConfig(seed=args.seed, num_epochs=args.num_epochs, batch_size=args.batch_size, lr=args.lr,
                               weight_decay=args.weight_decay, heldout_every=args.heldout_every,
                               floor_seeds=args.floor_seeds, num_threads=args.num_threads)
    model, record = train_evaluator(cfg)
    print(json.dumps({k: v for k, v in record.items() if k != "config"}, indent=2))
    if not args.no_save:
        save_evaluator(model, record)
        print(f"Saved {WEIGHTS_PATH} ({WEIGHTS_PATH.stat().st_size / 1024:.0f} KB) and {RECORD_PATH}")


if __name__ == "__main__":
    main()
