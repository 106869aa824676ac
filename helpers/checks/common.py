"""Instant checks, called in the cell right after each TODO.

A check that fails raises :class:`CheckFailed` saying which quantity differed, by how much,
and a hint; it never just prints. Expected values come from ``helpers/checks/answers/*.json``
(generated once from the solution notebooks and committed), not from reference code that a
student could read and copy.
"""

from __future__ import annotations

import inspect
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

CHECK_DATA = Path(__file__).resolve().parent / "answers"


class CheckFailed(AssertionError):
    """Your code does not do what the TODO asks; the message says what differed."""


def _ok(name: str) -> None:
    print(f"✓ {name}: passed")


def _fail(what: str, hint: str) -> None:
    raise CheckFailed(f"{what}\nHint: {hint}")


@lru_cache(maxsize=None)
def expected(lab: str) -> dict:
    """The committed expected values of one lab's checks."""
    path = CHECK_DATA / f"{lab}.json"
    if not path.is_file():
        raise FileNotFoundError(f"Missing {path}: the course files are incomplete; fetch the repository again.")
    return json.loads(path.read_text())


def _compare(name: str, got: torch.Tensor | float, want: float, hint: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    if torch.is_tensor(got):
        if got.numel() != 1:
            _fail(f"{name} should be a single number (a scalar tensor), got shape {tuple(got.shape)}.",
                  "average over the batch (e.g. .mean()) instead of returning one value per image.")
        got = float(got.detach())
    if not np.isfinite(got) or abs(got - want) > atol + rtol * abs(want):
        _fail(f"{name} is {got:.6f} but should be {want:.6f} (off by {got - want:+.6f}).", hint)


def _fixed_weights(model: nn.Module) -> nn.Module:
    """Overwrite every parameter and buffer with pseudo-random values derived from its name, eval mode.

    The same names and shapes always get the same values, so two correct models give the same outputs
    (the labs whose checks compare outputs under fixed weights: malaria, iclevr).
    """
    import zlib

    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            continue  # BatchNorm's num_batches_tracked
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        v = torch.randn(t.shape, generator=gen, dtype=torch.float64)
        if name.endswith("running_var"):
            v = 1.0 + 0.5 * v.abs()
        elif t.dim() == 1 and name.endswith("weight"):  # BatchNorm scale
            v = 1.0 + 0.1 * v
        elif t.dim() == 1:  # biases, BatchNorm shift and running mean
            v = 0.1 * v
        else:  # conv / linear weights: unit-variance outputs
            v = v / np.sqrt(max(1, t[0].numel()))
        t.copy_(v.to(t.dtype))
    return model.eval()


def _fixed_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) * 2 - 1


def _compare_values(name: str, got: torch.Tensor, want: list, hint: str, atol: float = 1e-4) -> None:
    got_t = got.detach().double().flatten().cpu()
    want_t = torch.tensor(want, dtype=torch.float64).flatten()
    if got_t.shape != want_t.shape:
        _fail(f"{name} has {got_t.numel()} values, expected {want_t.numel()}.", hint)
    diff = (got_t - want_t).abs().max().item()
    if not np.isfinite(diff) or diff > atol + 1e-4 * want_t.abs().max().item():
        _fail(f"{name} differs from the expected values by up to {diff:.4g} "
              f"(got {[round(v, 4) for v in got_t[:4].tolist()]}..., expected {[round(v, 4) for v in want_t[:4].tolist()]}...).",
              hint)


def _call_as_declared(fn: Callable, name: str, **arguments: Any) -> Any:
    """Call a student's function the way its TODO declares it: every argument by its name.

    ``arguments`` lists the TODO's parameters in the TODO's order (``logits_real=..., logits_fake=...``).
    A function whose parameters are renamed or swapped fails here with the signature the TODO asks for,
    instead of silently computing the loss of swapped inputs (the training code calls it positionally).

    Args:
        fn: the student's function.
        name: its name in the notebook, for the message.
        **arguments: the TODO's parameter names, in order, with the values to pass.

    Returns:
        What ``fn(**arguments)`` returns.
    """
    want = list(arguments)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: just call it
        return fn(**arguments)
    # The TODO's parameters, in its order; parameters the check leaves to their defaults may sit between them.
    named = [p.name for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in want]
    unknown_required = [p.name for p in params.values() if p.name not in want and p.default is p.empty
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if named != want or unknown_required:
        _fail(f"{name} is declared as {name}({', '.join(params)}), but the TODO asks for {name}({', '.join(want)}).",
              "keep the parameter names and their order from the TODO's def line; the training code calls "
              f"{name} with the arguments in that order.")
    return fn(**arguments)


def _carries_grad(*values: object) -> bool:
    """True when every value is a tensor still attached to the autograd graph."""
    return all(torch.is_tensor(v) and v.requires_grad for v in values)


def _fixed_logits(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed logits every loss check uses (plain numbers, nothing secret).

    With ``requires_grad`` the checks can tell whether a loss still carries gradients.
    """
    real = torch.tensor([2.0, -0.5, 1.25, 0.0, 3.0, -1.5], dtype=torch.float32, requires_grad=requires_grad)
    fake = torch.tensor([-1.0, 0.75, -2.5, 0.5, -0.25, 1.5], dtype=torch.float32, requires_grad=requires_grad)
    return real, fake


def check_train_step(train_step: Callable, G: nn.Module, D: nn.Module, opt_G: torch.optim.Optimizer,
                     opt_D: torch.optim.Optimizer, *batch: torch.Tensor) -> None:
    """One call of ``train_step(*batch)``: each optimizer owns its network, the D step leaves G alone.

    Works for every lab's unrolled step (one or several D steps, then a G step). The networks, the
    optimizers and the random state are restored afterwards, so calling the check changes nothing.
    """
    for opt, net, name, net_name in ((opt_G, G, "opt_G", "G"), (opt_D, D, "opt_D", "D")):
        owned = {id(p) for group in opt.param_groups for p in group["params"]}
        if owned != {id(p) for p in net.parameters()}:
            _fail(f"{name} does not optimise exactly the parameters of {net_name}.",
                  f"build it from {net_name}.parameters() only: each step must change only the network it trains.")
    import copy

    saved = [copy.deepcopy(x.state_dict()) for x in (G, D, opt_G, opt_D)]
    modes = (G.training, D.training)
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    events: list[str] = []
    leaked: list[bool] = []

    def before_d_step(*_):
        if "G" not in events:  # the D step comes first: G's weights must have no gradient yet
            leaked.append(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters()))
        events.append("D")

    hooks = [opt_D.register_step_pre_hook(before_d_step),
             opt_G.register_step_pre_hook(lambda *_: events.append("G"))]
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    detach_hint = ("score the fakes with D(x_fake.detach()) in the D step, so that loss_D.backward() stops at the "
                   "fakes and never reaches G's weights.")
    try:
        try:
            train_step(*batch)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - explain the likely cause
            if any(leaked):
                _fail(f"the D step computed gradients for G's weights, then train_step failed: {type(err).__name__}: {err}",
                      detach_hint)
            _fail(f"train_step failed: {type(err).__name__}: {err}", "follow the two steps of the TODO in order.")
    finally:
        for hook in hooks:
            hook.remove()
        for obj, state in zip((G, D, opt_G, opt_D), saved):
            obj.load_state_dict(state)
        G.train(modes[0])
        D.train(modes[1])
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    if "D" not in events or "G" not in events:
        missing = " and ".join(n for n, k in (("opt_D.step()", "D"), ("opt_G.step()", "G")) if k not in events)
        _fail(f"train_step never called {missing}.", "each step ends with zero_grad, backward, then the optimizer's step().")
    if any(leaked):
        _fail("the D step computed gradients for G's weights (loss_D reached G).", detach_hint)
    _ok("train step")


