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
  becomes NaN or infinite;
* with a time budget (``budget_min``, a notebook's ``BUDGET_MIN``), chooses the number of epochs
  itself: it times the first steps on the runtime at hand (:class:`TimeBudget`), prints how many
  epochs fit, and at the end what the training really took against the budget. The seconds spent
  are saved in every checkpoint, so after a disconnect the rest of the budget decides how many
  more epochs to train.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import asdict, is_dataclass
from typing import Any, Callable, Iterable, Mapping

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry
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


# ----------------------------------------------------------------------------- time budget
MEASURE_STEPS = 10  # a budgeted session times its first 10 steps: the first (warm-up), then 9 at full speed
_BUDGET_HINT = ("Set BUDGET_MIN in the parameters cell to the minutes training may take (e.g. BUDGET_MIN = 30), "
                "or to None to let the profile choose the number of epochs.")


def check_budget_minutes(minutes: Any) -> float:
    """``minutes`` as a float, or an error that says what to write instead.

    Args:
        minutes: a training time budget in minutes (``BUDGET_MIN`` in a notebook's parameters cell).

    Returns:
        The budget in minutes, a positive finite float.

    Raises:
        TypeError: not a number (a string, a bool, ``None``...).
        ValueError: zero, negative, NaN or infinite.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, numbers.Real):
        unquote = ""
        if isinstance(minutes, str):
            try:
                unquote = f" Write the number without quotes: BUDGET_MIN = {float(minutes):g}."
            except ValueError:
                pass
        raise TypeError(f"The time budget must be a number of minutes, got {minutes!r} "
                        f"({type(minutes).__name__}).{unquote} {_BUDGET_HINT}")
    value = float(minutes)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"The time budget must be a positive number of minutes, got {minutes!r}. {_BUDGET_HINT}")
    return value


def _duration(seconds: float) -> str:
    """``seconds`` as a person reads it: "4.2 s", "38 s", "3 min 5 s", "1 h 12 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m} min" if m else f"{h} h"


def _minutes(minutes: float) -> str:
    return f"{minutes:g} minute" + ("" if minutes == 1 else "s")


class TimeBudget:
    """A training time budget: how many epochs fit, measured on the runtime at hand.

    The budget covers every session of one training run: ``spent_seconds`` is what earlier sessions
    used (:func:`fit` reads it from the checkpoint), and this session's clock runs from ``started``.
    :func:`fit` times the session's first steps, the first one with its warm-up (``torch.compile``,
    cuDNN autotuning, first allocations: seconds spent like any others), then :meth:`plan` chooses how
    many epochs fit; after every epoch :meth:`replan` corrects the count with the epoch's real time,
    its evaluation (``on_epoch_end``) and checkpoint included.

    Args:
        minutes: the budget, all sessions together (``BUDGET_MIN``); see :func:`check_budget_minutes`.
        spent_seconds: what earlier sessions of this run spent (0 for a new run).
        clock: seconds from any fixed point, never going back: ``time.perf_counter``; tests pass a fake one.
        started: the clock's reading when this session began; default now.
    """

    def __init__(self, minutes: float, spent_seconds: float = 0.0, clock: Callable[[], float] = time.perf_counter,
                 started: float | None = None) -> None:
        self.minutes = check_budget_minutes(minutes)
        if not (isinstance(spent_seconds, numbers.Real) and math.isfinite(spent_seconds) and spent_seconds >= 0):
            raise ValueError(f"spent_seconds must be a non-negative number of seconds, got {spent_seconds!r}.")
        self.spent_before = float(spent_seconds)
        self.clock = clock
        self.started = clock() if started is None else float(started)
        self.seconds_per_epoch: float | None = None   # the current estimate of one epoch, warm-up excluded
        self.warmup_extra = 0.0                       # how much longer the first step took than the others
        self.short = False                            # fewer than one epoch fitted; one is trained anyway
        self.announced = 0                            # the epoch count last printed

    @property
    def total_seconds(self) -> float:
        return 60.0 * self.minutes

    def session_seconds(self) -> float:
        """Seconds since this session began."""
        return self.clock() - self.started

    def spent(self) -> float:
        """Seconds spent by this run, earlier sessions included."""
        return self.spent_before + self.session_seconds()

    def left(self) -> float:
        """Seconds of the budget left (negative when it is overrun)."""
        return self.total_seconds - self.spent()

    def plan(self, epochs_done: int, steps_done: int, steps_per_epoch: int, first_step_seconds: float,
             step_seconds: float) -> int:
        """The number of epochs to reach, chosen from the first steps' times of this session; prints it.

        Called in the session's first epoch (epoch ``epochs_done + 1``) after ``steps_done`` of its
        ``steps_per_epoch`` steps. The rest of this epoch and every later one are estimated at
        ``step_seconds`` per step; the warm-up is already on the clock. When even this epoch does not
        fit, it is still trained (a run needs at least one), and the message says how much budget one
        epoch needs.

        Args:
            epochs_done: epochs finished before this session (from the checkpoint).
            steps_done: steps of the current epoch timed so far (at least 1).
            steps_per_epoch: steps of a whole epoch.
            first_step_seconds: the first step of this session, warm-up included.
            step_seconds: the mean time of the later timed steps (the first step's time when only one was timed).

        Returns:
            The total number of epochs (earlier sessions included) to train to.
        """
        step_seconds = max(float(step_seconds), 1e-6)  # a clock too coarse to see a step: still finite
        self.seconds_per_epoch = step_seconds * steps_per_epoch
        self.warmup_extra = max(0.0, first_step_seconds - step_seconds)
        rest_of_epoch = step_seconds * max(0, steps_per_epoch - steps_done)
        left_after_this_epoch = self.left() - rest_of_epoch
        more = math.floor(left_after_this_epoch / self.seconds_per_epoch) if left_after_this_epoch > 0 else 0
        total = epochs_done + 1 + more
        self.announced = total
        each = _duration(self.seconds_per_epoch)
        timed = (f"timed here: first step {first_step_seconds:.2f} s with its warm-up, then {step_seconds:.3f} s "
                 f"per step, {steps_per_epoch} steps per epoch")
        if left_after_this_epoch < 0:
            self.short = True
            first_epoch = self.session_seconds() + rest_of_epoch
            needed = math.ceil((self.spent_before + first_epoch) / 60 * 1.2)  # with a margin for evaluation
            share = (self.total_seconds - self.spent_before) / first_epoch
            print(f"Budget: fewer than one epoch fits: the {_minutes(self.minutes)} "
                  f"{'are' if self.minutes != 1 else 'is'} used up after about {share:.0%} of an epoch of "
                  f"~{_duration(first_epoch)} "
                  f"({timed}). Training 1 epoch anyway, over the budget. To stay within it, raise BUDGET_MIN to "
                  f"at least {needed}, or use a faster runtime (a GPU) or a smaller profile.")
        elif self.spent_before > 0:
            left_at_start = self.total_seconds - self.spent_before
            print(f"Budget: {_duration(self.spent_before)} of {_minutes(self.minutes)} already spent in earlier "
                  f"sessions; about {1 + more} more epochs of ~{each} each fit in the {_duration(left_at_start)} "
                  f"left, {total} in all ({timed}).")
        else:
            print(f"Budget: about {total} epochs of ~{each} each fit in {_minutes(self.minutes)} ({timed}).")
        return total

    def replan(self, epochs_done: int, epochs_this_session: int, epoch_seconds_this_session: float,
               last_epoch_seconds: float, planned: int) -> int:
        """The number of epochs to reach, corrected after an epoch with the real times.

        An epoch is expected to take the mean of this session's epochs or, when it was slower, the
        last one (a runtime that slows down must not overrun the budget). Prints the first correction,
        later ones only when the count moves by more than a tenth, and a stop earlier than planned.

        Args:
            epochs_done: epochs finished, earlier sessions included.
            epochs_this_session: of those, how many this session trained (at least 1).
            epoch_seconds_this_session: wall time from the start of this session's first epoch to
                now: training, evaluation and checkpoints of ``epochs_this_session`` epochs.
            last_epoch_seconds: the same for the epoch just finished.
            planned: the count chosen so far.

        Returns:
            The total number of epochs to train to; ``epochs_done`` means stop now.
        """
        warmup = self.warmup_extra if epochs_this_session == 1 else 0.0  # only the session's first epoch had it
        mean = max(epoch_seconds_this_session - self.warmup_extra, 1e-6) / epochs_this_session
        per_epoch = max(mean, last_epoch_seconds - warmup)
        self.seconds_per_epoch = per_epoch
        left = self.left()
        total = epochs_done + (math.floor(left / per_epoch) if left > 0 else 0)
        if total == epochs_done and planned > epochs_done:
            print(f"Budget: stopping after epoch {epochs_done}: {_duration(max(left, 0.0))} of the "
                  f"{_minutes(self.minutes)} left, less than an epoch here (~{_duration(per_epoch)} with its "
                  f"evaluation and checkpoint).")
        elif total != planned and total > epochs_done and (
                epochs_this_session == 1 or abs(total - self.announced) > max(1, self.announced // 10)):
            print(f"Budget: re-estimated after epoch {epochs_done} (~{_duration(per_epoch)} per epoch with its "
                  f"evaluation and checkpoint): {total} epochs in all.")
            self.announced = total
        return total

    def report(self, epochs_this_session: int, epochs_done: int) -> str:
        """What the training really took against the budget, for the end of :func:`fit`."""
        spent = self.spent()
        earlier = f", {_duration(self.spent_before)} of it in earlier sessions" if self.spent_before > 0 else ""
        line = (f"Budget: {epochs_this_session} epoch{'' if epochs_this_session == 1 else 's'} in "
                f"{_duration(self.session_seconds())} this session ({epochs_done} in all); "
                f"{_duration(spent)} of the {_minutes(self.minutes)} used ({spent / self.total_seconds:.0%}{earlier}).")
        if spent > self.total_seconds:
            why = ("at least one epoch is trained, and one took more than the budget had left" if self.short
                   else "the epochs took longer than the first steps and epochs suggested")
            line += f" Over the budget by {_duration(spent - self.total_seconds)}: {why}."
        return line


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
    budget_min: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Train for ``num_epochs`` epochs (counting those already in the checkpoint), or for a time budget.

    Args:
        train_step: called as ``train_step(*batch)``; returns ``{metric: scalar}``.
        batches: re-iterable source of batches, e.g. a :class:`helpers.data.TensorBatcher`.
        num_epochs: total epochs; a resumed run trains only the missing ones. Not used with a budget.
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
        budget_min: minutes of training, all sessions of this run together (a notebook's
            ``BUDGET_MIN``); ``None``: train ``num_epochs``. The session times its first
            :data:`MEASURE_STEPS` steps (warm-up included), trains the epochs that fit (at least one)
            and corrects the count after every epoch with its real time, ``on_epoch_end`` and the
            checkpoint included. Resumed, it trains what the rest of the budget allows: the seconds
            spent are in every checkpoint (``extra["train_seconds"]``; an epoch cut off by a
            disconnect is lost and not counted). See :class:`TimeBudget`.
        clock: seconds from a fixed point (``time.perf_counter``); tests pass a fake clock.

    Returns:
        The history: ``{metric: [value per iteration]}``, including resumed epochs, plus
        ``"epoch_end"``, the iteration count at the end of each epoch, ``"epoch_seconds"``,
        each epoch's training time (without ``on_epoch_end`` and the checkpoint), and ``"step_flops"``:
        ``[the floating-point operations of one train_step]``, counted once (:func:`count_step_flops`).
    """
    if budget_min is None and (not isinstance(num_epochs, int) or num_epochs < 0):
        raise ValueError(f"num_epochs must be a non-negative integer, got {num_epochs!r}.")
    if budget_min is not None:
        check_budget_minutes(budget_min)  # a bad value stops before anything is loaded or trained
    session_started = clock()
    manager = CheckpointManager(path_to_checkpoint) if path_to_checkpoint is not None else None
    history: dict[str, list[float]] = {"epoch_end": []}
    start_epoch = 0
    spent_before = 0.0  # training seconds of earlier sessions of this run
    if manager is not None and manager.exists():
        ckpt = manager.load()
        restore(ckpt, models, optimizers, path=manager.last_path)
        history = {k: list(v) for k, v in ckpt["history"].items()}
        history.setdefault("epoch_end", [])
        start_epoch = int(ckpt["epoch"])
        # Checkpoints written before the seconds were saved: the epochs' own times are the best guess.
        spent_before = float(ckpt.get("extra", {}).get("train_seconds", sum(history.get("epoch_seconds", []))))
        done = f"epoch {start_epoch} of {num_epochs} done" if budget_min is None else \
            f"{start_epoch} epoch{'' if start_epoch == 1 else 's'} done in {_duration(spent_before)} of training"
        print(f"Resuming from {shown_path(manager.last_path)} ({done}).")
        for m in models.values():
            mark_trained(m)
    budget = None
    if budget_min is not None:
        budget = TimeBudget(budget_min, spent_before, clock, started=session_started)
        if budget.left() <= 0:
            print(f"Nothing to train: the budget of {_minutes(budget.minutes)} is used up ({_duration(spent_before)} "
                  f"spent over {start_epoch} epochs). Raise BUDGET_MIN to train more, or move "
                  f"{shown_path(manager.last_path) if manager else 'the checkpoint'} away to start again.")
            return history
        print(f"Budget: {_minutes(budget.minutes)} of training; the number of epochs is chosen from the first "
              f"steps' times (num_epochs={num_epochs} is not used).")
        target = start_epoch + 1  # the first steps decide; until then, this epoch
    elif start_epoch >= num_epochs:
        print(f"Nothing to train: the checkpoint already has {start_epoch} epochs. Move "
              f"{shown_path(manager.last_path) if manager else 'it'} away (or raise num_epochs) to train more.")
        return history
    else:
        target = num_epochs

    config_dict = _config_dict(config)
    for m in models.values():
        m.train()
    epoch_bar = tqdm(desc=desc, initial=start_epoch, total=target)
    epoch = start_epoch
    first_epoch_started: float | None = None
    planned = budget is None
    while epoch < target:
        started = clock()
        if first_epoch_started is None:
            first_epoch_started = started
        pending: dict[str, list[torch.Tensor | float]] = {}
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        if steps_per_epoch is not None:
            total = steps_per_epoch if total is None else min(total, steps_per_epoch)
        # A budgeted session times its first steps, waiting for the GPU before it reads the clock.
        measure = min(MEASURE_STEPS, total) if not planned and total else None
        # One step's FLOPs are counted once per run: the second step (after any warm-up), or in a budgeted
        # session the first step after the timed ones, so the counting's own overhead is never timed.
        flops_step = 1 if planned else (measure if measure is not None else -1)
        first_step = 0.0
        bar = tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{target}", leave=False)
        for it, batch in enumerate(bar):
            if steps_per_epoch is not None and it >= steps_per_epoch:
                break
            if it == flops_step and "step_flops" not in history:
                metrics, flops = count_step_flops(train_step, batch)
                history["step_flops"] = [float(flops)]
            else:
                metrics = train_step(*batch)
            if after_step is not None:
                after_step()
            if not planned and it == 0:
                _wait_for_device(models)
                first_step = clock() - started
            if not planned and measure is not None and it + 1 == measure:
                _wait_for_device(models)
                later = (clock() - started - first_step) / (measure - 1) if measure > 1 else first_step
                target = budget.plan(epoch, measure, total, first_step, later)
                planned = True
                epoch_bar.total = target
                epoch_bar.refresh()
                bar.set_description(f"epoch {epoch + 1}/{target}")
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
        if not planned:  # batches without a length: the whole first epoch was the measurement
            if n_iter == 0:
                raise ValueError("The batches gave no batch in the first epoch: there is nothing to train or to time.")
            later = (clock() - started - first_step) / (n_iter - 1) if n_iter > 1 else first_step
            target = budget.plan(epoch, n_iter, n_iter, first_step, later)
            planned = True
        history["epoch_end"].append((history["epoch_end"][-1] if history["epoch_end"] else 0) + n_iter)
        history.setdefault("epoch_seconds", []).append(clock() - started)
        for m in models.values():
            mark_trained(m)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)
            for m in models.values():
                m.train()
        if manager is not None:
            state = manager.state(epoch + 1, models, optimizers, history, config_dict,
                                  extra={"train_seconds": spent_before + clock() - session_started})
            manager.save(state, score(history) if score is not None else None)
        epoch += 1
        if budget is not None:
            now = clock()
            target = budget.replan(epoch, epoch - start_epoch, now - first_epoch_started, now - started, target)
            epoch_bar.total = max(target, epoch)
        epoch_bar.update(1)
        epoch_bar.set_postfix({k: f"{history[k][-1]:.3f}" for k in pending if k in history})
    epoch_bar.close()
    if budget is not None:
        print(budget.report(epoch - start_epoch, epoch))
    if manager is not None:
        flush_writes()
        print(f"Checkpoints: {shown_path(manager.last_path)} (latest), {shown_path(manager.best_path)} (best).")
    return history


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of every operation torch has a formula for (``torch.utils.flop_counter.flop_registry``).

    Not ``FlopCounterMode`` itself: its per-module breakdown hooks every module's backward, which
    ``torch.autograd.grad`` refuses inside a gradient penalty (the cWGAN-GP lab's step) with "A leaf node was
    passed to _will_engine_execute_node"; the total needs no hooks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_step_flops(train_step: StepFn, batch: tuple[torch.Tensor, ...]) -> tuple[dict[str, Any], int]:
    """Run ``train_step(*batch)`` once while counting its floating-point operations.

    Args:
        train_step: the training step, as :func:`fit` calls it.
        batch: one batch.

    Returns:
        (what the step returned, the floating-point operations it ran: forward and backward matrix
        products and convolutions, double backward included, 2 per multiply-add, with torch's own formulas;
        element-wise work such as activations, normalisation and the optimizer's update is not counted).
    """
    counter = _FlopCount()
    with counter:
        metrics = train_step(*batch)
    return metrics, counter.total


def _wait_for_device(models: Mapping[str, torch.nn.Module]) -> None:
    """Let queued GPU work finish before the clock is read (CUDA and MPS run asynchronously)."""
    kinds = {p.device.type for p in (next(m.parameters(), None) for m in models.values()) if p is not None}
    if "cuda" in kinds:
        torch.cuda.synchronize()
    if "mps" in kinds:
        torch.mps.synchronize()


def _check_finite(values: Mapping[str, float], epoch: int, it: int | None) -> None:
    for k, v in values.items():
        if not math.isfinite(v):
            where = f"epoch {epoch + 1}" + (f", iteration {it}" if it is not None else "")
            raise TrainingDiverged(
                f"Training diverged at {where}: {k} is {v}. The last good checkpoint is kept. "
                f"Lower the learning rate, check the loss functions, then run the cell again."
            )
