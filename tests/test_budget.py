"""The time budget of fit (BUDGET_MIN): epochs chosen from the first steps' times, resumed across sessions.

Every test runs on a fake clock that only the training steps (and, where said, the evaluation at the
end of an epoch) move forward, so the chosen epoch counts and the printed lines are exact; nothing here
is timed for real.
"""

import math

import pytest
import torch
from torch import nn

from helpers.checkpoints import CheckpointManager, atomic_save, safe_load
from helpers.data import TensorBatcher
from helpers.training import MEASURE_STEPS, TimeBudget, check_budget_minutes, fit


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _train(clock, budget_min, folder=None, first_step=5.0, step=1.0, epoch_end_seconds=0.0, crash_at_epoch=None,
           num_epochs=3):
    """A tiny regression trained by fit on ``clock``: 10 steps per epoch (80 points, batches of 8).

    The session's first step takes ``first_step`` seconds (the warm-up), every other ``step``; the
    evaluation after each epoch ``epoch_end_seconds`` (or ``{epoch: seconds}``). ``crash_at_epoch``: the
    runtime disconnects in that epoch's evaluation, after the previous epoch's checkpoint.

    Returns:
        The history and the number of train_step calls.
    """
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(80, 3, generator=torch.Generator().manual_seed(1))
    batches = TensorBatcher((x, x.sum(1, keepdim=True)), batch_size=8)
    calls = []

    def train_step(xb, yb):
        clock.advance(first_step if not calls else step)
        calls.append(1)
        loss = ((model(xb) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    def on_epoch_end(epoch, history):
        if epoch == crash_at_epoch:
            raise KeyboardInterrupt  # the Colab disconnect
        clock.advance(epoch_end_seconds.get(epoch, 0.0) if isinstance(epoch_end_seconds, dict) else epoch_end_seconds)

    history = fit(train_step, batches, num_epochs, {"M": model}, {"M": opt}, folder, on_epoch_end=on_epoch_end,
                  budget_min=budget_min, clock=clock)
    return history, len(calls)


def _lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Budget", "Nothing", "Resuming"))]


# ----------------------------------------------------------------------------- choosing the epochs
@pytest.mark.parametrize("minutes, step, epochs, estimate", [
    # first epoch 5 + 9 x 1 = 14 s, then 10 s each: 14 + 4 x 10 = 54 <= 60 < 64
    (1, 1.0, 5, "about 5 epochs of ~10 s each fit in 1 minute"),
    # 5 + 9 x 0.5 = 9.5 s, then 5 s each: 9.5 + 10 x 5 = 59.5 <= 60
    (1, 0.5, 11, "about 11 epochs of ~5.0 s each fit in 1 minute"),
    # 5 + 9 x 2 = 23 s, then 20 s each: 23 + 4 x 20 = 103 <= 120 < 123
    (2, 2.0, 5, "about 5 epochs of ~20 s each fit in 2 minutes"),
])
def test_the_epoch_count_is_what_fits_at_the_timed_step_speed(capsys, minutes, step, epochs, estimate):
    history, steps = _train(FakeClock(), minutes, step=step)
    assert len(history["epoch_end"]) == epochs and steps == 10 * epochs  # not the profile's num_epochs=3
    lines = _lines(capsys)
    assert lines[0] == (f"Budget: {minutes} minute{'s' if minutes > 1 else ''} of training; the number of epochs is "
                        f"chosen from the first steps' times (num_epochs=3 is not used).")
    assert lines[1].startswith(f"Budget: {estimate} (timed here: first step 5.00 s with its warm-up, then {step:.3f} s "
                               f"per step, 10 steps per epoch)")
    assert len(lines) == 3  # the plan held: no re-estimate, no stop


def test_the_final_report_gives_the_real_time_against_the_budget(capsys):
    _train(FakeClock(), 1)
    assert _lines(capsys)[-1] == "Budget: 5 epochs in 54 s this session (5 in all); 54 s of the 1 minute used (90%)."


def test_warm_up_is_spent_time_but_not_the_speed_of_later_steps(capsys):
    """A 30 s first step (compilation) leaves 30 s: 39 s for the first epoch, then 2 x 10 s."""
    history, _ = _train(FakeClock(), 1, first_step=30.0)
    assert len(history["epoch_end"]) == 3  # 6 if the warm-up were ignored, 1 if it set the speed of every step
    assert history["epoch_seconds"] == [39.0, 10.0, 10.0]
    lines = _lines(capsys)
    assert "about 3 epochs of ~10 s each fit in 1 minute" in lines[1]
    assert lines[-1].endswith("59 s of the 1 minute used (98%).")


def test_evaluation_after_each_epoch_corrects_the_count(capsys):
    """5 s of on_epoch_end per epoch: the first steps promise 5 epochs, epoch 1's real 19 s leave room for 2 more."""
    history, _ = _train(FakeClock(), 1, epoch_end_seconds=5.0)
    assert len(history["epoch_end"]) == 3
    lines = _lines(capsys)
    assert "about 5 epochs of ~10 s each" in lines[1]
    assert lines[2] == ("Budget: re-estimated after epoch 1 (~15 s per epoch with its evaluation and checkpoint): "
                        "3 epochs in all.")
    assert lines[-1].endswith("49 s of the 1 minute used (82%).")


def test_a_slower_epoch_stops_training_early_and_says_why(capsys):
    """The evaluation after epoch 2 takes 20 s: 14 + 30 = 44 s, 16 s left, less than that last epoch: stop."""
    history, _ = _train(FakeClock(), 1, epoch_end_seconds={2: 20.0})
    assert len(history["epoch_end"]) == 2  # the first steps had promised 5
    lines = _lines(capsys)
    assert "about 5 epochs of ~10 s each" in lines[1]
    assert lines[2] == ("Budget: stopping after epoch 2: 16 s of the 1 minute left, less than an epoch here (~30 s "
                        "with its evaluation and checkpoint).")
    assert lines[-1] == "Budget: 2 epochs in 44 s this session (2 in all); 44 s of the 1 minute used (73%)."


def test_a_runtime_that_slows_down_is_planned_at_its_last_epoch_speed(capsys):
    """From epoch 2 on, the evaluation takes 6 s: 14, 16, 16 s. At 30 s the mean (13 s) would allow two more
    epochs, 62 s in all; the last epoch's 16 s allow one, 46 s."""
    history, _ = _train(FakeClock(), 1, epoch_end_seconds={2: 6.0, 3: 6.0, 4: 6.0})
    assert len(history["epoch_end"]) == 3
    lines = _lines(capsys)
    assert lines[-1] == "Budget: 3 epochs in 46 s this session (3 in all); 46 s of the 1 minute used (77%)."


def test_a_budget_smaller_than_one_epoch_trains_one_and_says_what_to_do(capsys):
    """10 s steps: one epoch is 5 + 9 x 10 = 95 s, more than the minute."""
    history, steps = _train(FakeClock(), 1, step=10.0)
    assert len(history["epoch_end"]) == 1 and steps == 10
    lines = _lines(capsys)
    assert lines[1].startswith("Budget: fewer than one epoch fits: the 1 minute is used up after about 63% of an epoch "
                               "of ~1 min 35 s")
    assert "Training 1 epoch anyway, over the budget. To stay within it, raise BUDGET_MIN to at least 2" in lines[1]
    assert lines[-1] == ("Budget: 1 epoch in 1 min 35 s this session (1 in all); 1 min 35 s of the 1 minute used "
                         "(158%). Over the budget by 35 s: at least one epoch is trained, and one took more than "
                         "the budget had left.")


def test_an_epoch_shorter_than_the_timed_steps_is_planned_from_all_its_steps(capsys):
    """4 steps per epoch (fewer than MEASURE_STEPS): the first step and the 3 others are the measurement."""
    assert MEASURE_STEPS > 4
    clock = FakeClock()
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = []

    def train_step(xb):
        clock.advance(3.0 if not calls else 1.0)
        calls.append(1)
        return {"loss": model(xb).pow(2).mean().detach()}

    history = fit(train_step, TensorBatcher((torch.randn(32, 3),), batch_size=8), 1, {"M": model}, {"M": opt}, None,
                  budget_min=0.5, clock=clock)
    assert len(history["epoch_end"]) == 7  # the first epoch 3 + 3 x 1 = 6 s, then 4 s each: 6 + 6 x 4 = 30
    assert "about 7 epochs of ~4.0 s each fit in 0.5 minutes" in _lines(capsys)[1]


# ----------------------------------------------------------------------------- resume after a disconnect
def test_a_resumed_run_trains_what_the_rest_of_the_budget_allows(tmp_path, capsys):
    clock = FakeClock()
    with pytest.raises(KeyboardInterrupt):
        _train(clock, 1, folder=tmp_path, crash_at_epoch=3)  # epochs 1 and 2 saved: 14 + 10 s
    ckpt = safe_load(tmp_path / "last.pt")  # weights_only loading, as fit does
    assert ckpt["epoch"] == 2 and ckpt["extra"]["train_seconds"] == 24.0
    assert torch.load(tmp_path / "last.pt", weights_only=True)["extra"]["train_seconds"] == 24.0
    capsys.readouterr()

    clock.advance(600.0)  # the lost epoch 3, the reconnect and any evaluation cells: not training time
    history, steps = _train(clock, 1, folder=tmp_path)  # a new runtime: new networks, a new warm-up
    assert len(history["epoch_end"]) == 5 and steps == 30  # 36 s left: 14 + 10 + 10 = 34
    lines = _lines(capsys)
    assert lines[0] == f"Resuming from {tmp_path / 'last.pt'} (2 epochs done in 24 s of training)."
    assert lines[2].startswith("Budget: 24 s of 1 minute already spent in earlier sessions; about 3 more epochs of "
                               "~10 s each fit in the 36 s left, 5 in all")
    assert lines[-1] == ("Budget: 3 epochs in 34 s this session (5 in all); 58 s of the 1 minute used "
                         "(97%, 24 s of it in earlier sessions).")
    assert safe_load(tmp_path / "last.pt")["extra"]["train_seconds"] == 58.0

    # A budget already used up trains nothing and says how to train more.
    history, steps = _train(clock, 0.5, folder=tmp_path)
    assert steps == 0 and len(history["epoch_end"]) == 5
    assert _lines(capsys)[-1].startswith("Nothing to train: the budget of 0.5 minutes is used up (58 s spent over "
                                         "5 epochs). Raise BUDGET_MIN to train more")


def test_a_checkpoint_without_saved_seconds_counts_its_epochs_times(tmp_path, capsys):
    """Checkpoints written before the seconds were saved: the epochs' own times are what was spent."""
    clock = FakeClock()
    _train(clock, None, folder=tmp_path, num_epochs=2)  # no budget: 14 + 10 s
    manager = CheckpointManager(tmp_path)
    ckpt = manager.load()
    assert ckpt["extra"]["train_seconds"] == 24.0  # saved without a budget too
    del ckpt["extra"]["train_seconds"]
    atomic_save(ckpt, manager.last_path)
    capsys.readouterr()
    history, _ = _train(clock, 1, folder=tmp_path)
    assert len(history["epoch_end"]) == 5
    assert "(2 epochs done in 24 s of training)" in _lines(capsys)[0]


# ----------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("value, error, says", [
    (-5, ValueError, "must be a positive number of minutes, got -5"),
    (0, ValueError, "must be a positive number of minutes, got 0"),
    (float("nan"), ValueError, "got nan"),
    (float("inf"), ValueError, "got inf"),
    ("30", TypeError, "got '30' (str). Write the number without quotes: BUDGET_MIN = 30."),
    ("half an hour", TypeError, "got 'half an hour' (str)"),
    (True, TypeError, "got True (bool)"),
    ([30], TypeError, "got [30] (list)"),
])
def test_bad_budgets_stop_before_anything_is_trained_with_what_to_write(tmp_path, value, error, says):
    with pytest.raises(error) as info:
        check_budget_minutes(value)
    message = str(info.value)
    assert says in message
    assert "BUDGET_MIN = 30" in message and "None to let the profile choose the number of epochs" in message
    folder = tmp_path / "ckpt"
    with pytest.raises(error):
        _train(FakeClock(), value, folder=folder)
    assert not folder.exists()  # nothing loaded, created or trained


def test_a_good_budget_is_any_positive_number():
    assert check_budget_minutes(30) == 30.0 and check_budget_minutes(0.25) == 0.25
    assert check_budget_minutes(torch.tensor(2.0).item()) == 2.0
    import numpy as np

    assert check_budget_minutes(np.float32(1.5)) == 1.5 and check_budget_minutes(np.int64(3)) == 3.0


def test_time_budget_counts_earlier_sessions_and_this_one():
    clock = FakeClock()
    budget = TimeBudget(2, spent_seconds=30.0, clock=clock)
    clock.advance(15.0)
    assert budget.spent() == 45.0 and budget.left() == 75.0 and budget.session_seconds() == 15.0
    # 15 s spent so far in this session's first epoch, after its first 10 of 20 steps at 1 s (first 6 s):
    # 10 s more for this epoch leaves 65 s, three more epochs of 20 s
    assert budget.plan(epochs_done=4, steps_done=10, steps_per_epoch=20, first_step_seconds=6.0, step_seconds=1.0) == 8
    with pytest.raises(ValueError, match="spent_seconds"):
        TimeBudget(2, spent_seconds=-1.0, clock=clock)
    assert math.isclose(TimeBudget(0.5, clock=clock).total_seconds, 30.0)


# ----------------------------------------------------------------------------- the counted FLOPs of one step
def _counted_steps(monkeypatch, clock: FakeClock) -> list[int]:
    """The 0-based train_step calls that ran under fit's FLOP counter, read from the fake clock
    (_train's first step starts at 1000 s and takes 5 s, every later one 1 s)."""
    import helpers.training as training

    counted, real = [], training.count_step_flops

    def spy(train_step, batch):
        counted.append(0 if clock.now == 1000.0 else int(clock.now - 1005.0) + 1)
        return real(train_step, batch)

    monkeypatch.setattr(training, "count_step_flops", spy)
    return counted


def test_one_step_is_counted_once_and_by_hand(monkeypatch):
    """nn.Linear(3, 1) on batches of 8: forward 2*8*3 = 48 FLOPs (the bias add is not a product), the weight's
    gradient another 48; the input needs no gradient. The second step is counted (the first may be a warm-up)."""
    clock = FakeClock()
    counted = _counted_steps(monkeypatch, clock)
    history, steps = _train(clock, None, num_epochs=2)
    assert history["step_flops"] == [96.0] and steps == 20 and counted == [1]


def test_a_budgeted_session_counts_the_first_step_after_its_timed_ones(monkeypatch):
    clock = FakeClock()
    counted = _counted_steps(monkeypatch, clock)
    history, steps = _train(clock, 1)
    # An epoch here is 10 steps, all of them timed: the count waits for the second step of epoch 2.
    assert MEASURE_STEPS == 10 and counted == [11] and history["step_flops"] == [96.0]
    assert steps == 50  # the plan of the run without a count (5 epochs)


def test_a_resumed_run_keeps_its_count(tmp_path, monkeypatch):
    clock = FakeClock()
    counted = _counted_steps(monkeypatch, clock)
    _train(clock, None, folder=str(tmp_path), num_epochs=1)
    history, _ = _train(FakeClock(), None, folder=str(tmp_path), num_epochs=2)
    assert history["step_flops"] == [96.0] and len(counted) == 1  # from the checkpoint, not counted again


def test_a_step_with_a_gradient_penalty_is_counted_and_trains_as_without_the_count():
    """torch.autograd.grad with create_graph (the cWGAN-GP lab's penalty) inside the counted step: FlopCounterMode's
    module hooks fail there; the count must not. nn.Linear(3, 1), batch 8: five products of 2 * 8 * 3 = 48 FLOPs each,
    the forward, the penalty's input gradient, then in backward the weight's gradient from the score, the input's
    gradient (the input requires it) and the weight's gradient through the penalty."""
    from helpers.training import count_step_flops

    def make():
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        return model, torch.optim.SGD(model.parameters(), lr=0.1)

    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))

    def step_of(model, opt):
        def train_step(xb):
            xb = xb.clone().requires_grad_(True)
            score = model(xb)
            grad, = torch.autograd.grad(score.sum(), xb, create_graph=True)
            loss = score.mean() + ((grad.norm(dim=1) - 1) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss.detach()}
        return train_step

    counted_model, counted_opt = make()
    metrics, flops = count_step_flops(step_of(counted_model, counted_opt), (x,))
    plain_model, plain_opt = make()
    plain = step_of(plain_model, plain_opt)(x)
    assert torch.equal(metrics["loss"], plain["loss"]) and torch.equal(counted_model.weight, plain_model.weight)
    assert flops == 5 * 48
