"""The epoch/iteration loop every lab shares: progress bars, logging, checkpoints, resume.

The loop knows nothing about which GAN it trains. A notebook writes ``train_step(*batch)``
(the D step and the G step, the part students implement) that returns a dict of detached
scalar tensors, and hands it to :func:`fit`, which

* resumes from ``last.pt`` in ``path_to_checkpoint`` when one exists (a re-run cell after a
  Colab disconnect continues instead of starting over);
* shows ``tqdm`` bars for epochs and iterations with the current losses;
* logs every metric per iteration into ``history`` (floats, saved in every checkpoint);
* calls ``on_epoch_end(epoch, history)`` (sample grids) and saves a checkpoint per epoch;
* stops with a clear error, and without overwriting the last good checkpoint, when a loss
  becomes NaN or infinite.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, is_dataclass
from typing import Any, Callable, Iterable, Mapping

import torch
from tqdm.auto import tqdm

from helpers.checkpoints import CheckpointManager, restore, unwrap
from helpers.env import flush_writes, shown_path
from helpers.sampling import mark_trained

StepFn = Callable[..., Mapping[str, torch.Tensor | float]]


class EMA(torch.nn.Module):
    """An exponential moving average of a model's weights, to sample from (Polyak averaging in time).

    After every optimizer step, ``update(model)`` moves each averaged weight a step towards the
    model's: ``w_ema <- d * w_ema + (1 - d) * w`` with ``d = min(decay, (1 + n) / (10 + n))`` after
    ``n`` updates (a short warm-up, so early averages do not remember the random initial weights).
    Buffers (BatchNorm running statistics) are copied as they are. A GAN generator oscillates
    around a good solution as it chases the discriminator; its average is smoother, with fewer
    artifacts (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019).

    The average is a module: call it like the model, save it in a checkpoint like any other
    (the update count travels in its state dict), and train only the original.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}; 0.999 averages over about 1000 steps.")
        self.decay = float(decay)
        self.module = copy.deepcopy(unwrap(model)).requires_grad_(False)
        self.num_updates = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One averaging step towards ``model``'s current weights (call it after ``opt.step()``)."""
        model = unwrap(model)
        own, new = list(self.module.parameters()), list(model.parameters())
        if len(own) != len(new) or any(a.shape != b.shape for a, b in zip(own, new)):
            raise ValueError("EMA.update got a model of another architecture than the one it averages.")
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        torch._foreach_lerp_(own, new, 1.0 - d)
        for a, b in zip(self.module.buffers(), model.buffers()):
            a.copy_(b)

    def get_extra_state(self) -> dict[str, int]:
        return {"num_updates": self.num_updates}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.num_updates = int(state["num_updates"])


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if is_dataclass(config):
        config = asdict(config)
    # Only plain values go into a checkpoint (weights_only loading refuses the rest).
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list, tuple)) else str(v))
            for k, v in dict(config).items()}


def fit(
    train_step: StepFn,
    batches: Iterable[tuple[torch.Tensor, ...]],
    num_epochs: int,
    models: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    path_to_checkpoint: str | None,
    config: Any = None,
    on_epoch_end: Callable[[int, dict[str, list[float]]], None] | None = None,
    score: Callable[[dict[str, list[float]]], float] | None = None,
    steps_per_epoch: int | None = None,
    after_step: Callable[[], None] | None = None,
    log_every: int = 10,
    desc: str = "training",
) -> dict[str, list[float]]:
    """Train for ``num_epochs`` epochs (counting those already in the checkpoint).

    Args:
        train_step: called as ``train_step(*batch)``; returns ``{metric: scalar}``.
        batches: re-iterable source of batches, e.g. a :class:`helpers.data.TensorBatcher`.
        num_epochs: total epochs; a resumed run trains only the missing ones.
        models: named modules to save and restore, e.g. ``{"G": G, "D": D}``.
        optimizers: named optimizers to save and restore.
        path_to_checkpoint: folder for ``last.pt``/``best.pt``; ``None`` disables checkpoints.
        config: dataclass or dict stored in every checkpoint.
        on_epoch_end: called after every epoch with the 1-based epoch number and the history.
        score: lower-is-better number computed from the history after each epoch; the epoch
            with the lowest score is kept as ``best.pt``.
        steps_per_epoch: stop each epoch after this many iterations (smoke runs).
        after_step: called with no arguments after every ``train_step``, e.g. ``lambda: G_ema.update(G)``.
        log_every: refresh the progress bar's numbers every this many iterations (reading a
            GPU value forces a synchronisation, so not every step).
        desc: label of the epoch bar.

    Returns:
        The history: ``{metric: [value per iteration]}``, including resumed epochs, plus
        ``"epoch_end"``, the iteration count at the end of each epoch.
    """
    if not isinstance(num_epochs, int) or num_epochs < 0:
        raise ValueError(f"num_epochs must be a non-negative integer, got {num_epochs!r}.")
    manager = CheckpointManager(path_to_checkpoint) if path_to_checkpoint is not None else None
    history: dict[str, list[float]] = {"epoch_end": []}
    start_epoch = 0
    if manager is not None and manager.exists():
        ckpt = manager.load()
        restore(ckpt, models, optimizers, path=manager.last_path)
        history = {k: list(v) for k, v in ckpt["history"].items()}
        history.setdefault("epoch_end", [])
        start_epoch = int(ckpt["epoch"])
        print(f"Resuming from {shown_path(manager.last_path)} (epoch {start_epoch} of {num_epochs} done).")
        for m in models.values():
            mark_trained(m)
    if start_epoch >= num_epochs:
        print(f"Nothing to train: the checkpoint already has {start_epoch} epochs. Move "
              f"{shown_path(manager.last_path) if manager else 'it'} away (or raise num_epochs) to train more.")
        return history

    config_dict = _config_dict(config)
    for m in models.values():
        m.train()
    epoch_bar = tqdm(range(start_epoch, num_epochs), desc=desc, initial=start_epoch, total=num_epochs)
    for epoch in epoch_bar:
        started = time.perf_counter()
        pending: dict[str, list[torch.Tensor | float]] = {}
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        if steps_per_epoch is not None and total is not None:
            total = min(total, steps_per_epoch)
        bar = tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{num_epochs}", leave=False)
        for it, batch in enumerate(bar):
            if steps_per_epoch is not None and it >= steps_per_epoch:
                break
            metrics = train_step(*batch)
            if after_step is not None:
                after_step()
            for k, v in metrics.items():
                pending.setdefault(k, []).append(v.detach() if torch.is_tensor(v) else v)
            if it % log_every == 0:
                shown = {k: float(v[-1]) for k, v in pending.items()}
                _check_finite(shown, epoch, it)
                bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
        bar.close()
        # One synchronisation per epoch: move the logged scalars to floats.
        for k, vals in pending.items():
            floats = torch.stack([torch.as_tensor(v, dtype=torch.float32).cpu() for v in vals]).tolist()
            bad = next((f for f in floats if not math.isfinite(f)), None)
            if bad is not None:
                _check_finite({k: bad}, epoch, None)
            history.setdefault(k, []).extend(floats)
        n_iter = len(next(iter(pending.values()), []))
        history["epoch_end"].append((history["epoch_end"][-1] if history["epoch_end"] else 0) + n_iter)
        history.setdefault("epoch_seconds", []).append(time.perf_counter() - started)
        for m in models.values():
            mark_trained(m)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)
            for m in models.values():
                m.train()
        if manager is not None:
            state = manager.state(epoch + 1, models, optimizers, history, config_dict)
            manager.save(state, score(history) if score is not None else None)
        epoch_bar.set_postfix({k: f"{history[k][-1]:.3f}" for k in pending if k in history})
    epoch_bar.close()
    if manager is not None:
        flush_writes()
        print(f"Checkpoints: {shown_path(manager.last_path)} (latest), {shown_path(manager.best_path)} (best).")
    return history


def _check_finite(values: Mapping[str, float], epoch: int, it: int | None) -> None:
    for k, v in values.items():
        if not math.isfinite(v):
            where = f"epoch {epoch + 1}" + (f", iteration {it}" if it is not None else "")
            raise TrainingDiverged(
                f"Training diverged at {where}: {k} is {v}. The last good checkpoint is kept. "
                f"Lower the learning rate, check the loss functions, then run the cell again."
            )
