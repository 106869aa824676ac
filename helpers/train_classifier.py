"""Train the offline-metrics classifier for one dataset, reproducibly, on the CPU.

    python -m helpers.train_classifier --dataset mnist
    python -m helpers.train_classifier --dataset fashion_mnist

Writes ``helpers/weights/<dataset>_classifier.pt`` (a ``state_dict``) and
``helpers/weights/<dataset>_classifier.json`` (test accuracy, seed, command, versions, date).
Same seed, same thread count and same torch version give the same weights: the batch order
comes from a seeded ``torch.Generator`` and deterministic algorithms are enforced.
Takes a few minutes on a 2-core CPU. Data comes from ``$GANLAB_DATA`` (see helpers.data).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers.checkpoints import atomic_save
from helpers.classifiers import DATASETS, Classifier, classify, record_path, weights_path
from helpers.data import TensorBatcher, load_images


@dataclass
class ClassifierTrainConfig:
    dataset: str = "mnist"      # "mnist" or "fashion_mnist"
    seed: int = 0               # seeds the initial weights, dropout and the batch order
    num_epochs: int = 3         # 3 passes reach >99% (MNIST) / >90% (Fashion-MNIST)
    batch_size: int = 128       # images per step
    lr: float = 2e-3            # Adam's peak learning rate; cosine-decayed to 0 over training
    num_threads: int = 2        # fixed: a different thread count can change float summation order


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def command_for(cfg: ClassifierTrainConfig) -> str:
    """The shell command that reproduces ``cfg``, every setting spelled out."""
    return (
        f"python -m helpers.train_classifier --dataset {cfg.dataset} --seed {cfg.seed} "
        f"--num-epochs {cfg.num_epochs} --batch-size {cfg.batch_size} --lr {cfg.lr} "
        f"--num-threads {cfg.num_threads}"
    )


@torch.no_grad()
def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` classified as ``y`` (model in eval mode)."""
    model.eval()
    _, probs = classify(model, x)
    return (probs.argmax(dim=1) == y.cpu()).float().mean().item()


def train_classifier(cfg: ClassifierTrainConfig, verbose: bool = True) -> tuple[Classifier, dict]:
    """Train one classifier on the CPU from ``cfg``; returns the model and its record.

    Args:
        cfg: what to train and how.
        verbose: print the loss and accuracy once per epoch.

    Returns:
        ``(model, record)``: the model in eval mode and a JSON-ready dict.
    """
    if cfg.dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {cfg.dataset!r}; choose one of {', '.join(DATASETS)}.")
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    x_train, y_train = load_images(cfg.dataset, train=True)   # (60000, 1, 28, 28) in [-1, 1]
    x_test, y_test = load_images(cfg.dataset, train=False)    # (10000, 1, 28, 28)

    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batcher = TensorBatcher(
        (x_train, y_train), batch_size=cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    total_steps = cfg.num_epochs * len(batcher)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)

    start = time.perf_counter()
    for epoch in range(cfg.num_epochs):
        model.train()
        loss_sum, seen = 0.0, 0
        for x, y in batcher:
            logits = model(x)                     # (B, 10)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * x.shape[0]
            seen += x.shape[0]
        acc = accuracy(model, x_test, y_test)
        if verbose:
            print(f"epoch {epoch + 1}/{cfg.num_epochs}  train loss {loss_sum / seen:.4f}  "
                  f"test accuracy {acc:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - start
    model.eval()

    record = {
        "dataset": cfg.dataset,
        "test_accuracy": round(acc, 6),
        "num_test_images": int(x_test.shape[0]),
        "config": asdict(cfg),
        "command": command_for(cfg),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": platform.machine(),
        "train_seconds": round(train_seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return model, record


def save_classifier(model: Classifier, record: dict, dataset: str) -> None:
    """Write the weights and, beside them, the record with the weights' SHA-256."""
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    path = weights_path(dataset)
    atomic_save(state_dict, path)
    record = dict(record, weights_file=path.name,
                  weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    _atomic_write_bytes(record_path(dataset), (json.dumps(record, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> None:
    defaults = ClassifierTrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-epochs", type=int, default=defaults.num_epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--num-threads", type=int, default=defaults.num_threads)
    parser.add_argument("--no-save", action="store_true",
                        help="train and report, but leave the committed weights alone")
    args = parser.parse_args(argv)
    cfg = ClassifierTrainConfig(
        dataset=args.dataset, seed=args.seed, num_epochs=args.num_epochs,
        batch_size=args.batch_size, lr=args.lr, num_threads=args.num_threads,
    )
    model, record = train_classifier(cfg)
    if args.no_save:
        print(json.dumps(record, indent=2))
        return
    save_classifier(model, record, cfg.dataset)
    size_kb = weights_path(cfg.dataset).stat().st_size / 1024
    print(f"Saved {weights_path(cfg.dataset)} ({size_kb:.0f} KB) and {record_path(cfg.dataset)}; "
          f"test accuracy {record['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
