"""The one generate contract: its data, its checker (one item per requirement) and the notebook wrapper.

Tiny seeded stand-ins for a lab's generate: a correct one, and one switch per mistake. Every mistake
fails exactly the item that says so, with a message that names it; the in-notebook checks raise
CheckFailed at the first failing item.
"""

import numpy as np
import pytest
import torch
from torch import nn

from helpers.checks import CheckFailed
from helpers.checks.contract import (BAD_CLASSES, BAD_COUNTS, CWGAN, FC, ICLEVR, MALARIA, VANILLA, check_contract,
                                     contract_items)
from helpers.checks.cwgan import check_generate_conditional
from helpers.checks.vanilla import check_generate
from helpers.course.labs import LABS
from helpers.data import FASHION_CLASSES
from helpers.sampling import check_count, eval_mode, seeded_noise, to_unit_images

torch.set_num_threads(1)


class TinyG(nn.Module):
    """z (B, 8) [+ class] -> images (B, C, S, S) in [-1, 1]; BatchNorm so that the mode matters."""

    def __init__(self, channels=1, size=28, classes=0):
        super().__init__()
        self.shape = (channels, size, size)
        self.net = nn.Sequential(nn.Linear(8 + classes, channels * size * size), nn.BatchNorm1d(channels * size * size),
                                 nn.Tanh())
        self.classes = classes

    def forward(self, z, y=None):
        if self.classes:
            z = torch.cat([z, nn.functional.one_hot(y, self.classes).float()], 1)
        return self.net(z).view(-1, *self.shape)


G = TinyG()
G_cond = TinyG(classes=10)
G_rgb = TinyG(channels=3, size=16)


def make_generate(model=G, *, scale=True, dtype=np.float32, use_seed=True, validate=True, keep_mode=True,
                  channel=False):
    def generate(n, seed=None):
        if validate:
            n = check_count(n)
        if keep_mode:
            with eval_mode(model):
                x = model(seeded_noise(n, 8, seed if use_seed else 0, "cpu"))
        else:
            model.eval()
            with torch.no_grad():
                x = model(seeded_noise(n, 8, seed if use_seed else 0, "cpu"))
        out = to_unit_images(x) if scale else x.detach().numpy()[:, 0]
        if channel and out.ndim == 3:
            out = out[:, None]
        return out.astype(dtype)
    return generate


def class_index(c):
    if isinstance(c, str):
        for i, name in enumerate(FASHION_CLASSES):
            if c.strip().casefold() == name.casefold():
                return i
        raise ValueError(f"Unknown class {c!r}. Valid classes: {', '.join(FASHION_CLASSES)}")
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
        raise TypeError(f"c must be an int or a str, got {c!r}")
    if not 0 <= c < 10:
        raise ValueError(f"Class {c} out of range. Valid classes: {', '.join(FASHION_CLASSES)}")
    return int(c)


def make_generate_conditional(*, by_name=True, use_class=True, validate_class=True, use_seed=True):
    def generate(n, c, seed=None):
        n = check_count(n)
        if validate_class:
            c = class_index(c) if by_name or not isinstance(c, str) else int(c)
        elif isinstance(c, str):
            c = class_index(c)
        with eval_mode(G_cond):
            y = torch.full((n,), int(c) if use_class else 0, dtype=torch.int64)
            x = G_cond(seeded_noise(n, 8, seed if use_seed else 0, "cpu"), y)
        return to_unit_images(x)
    return generate


def by_id(items):
    return {i.id: i for i in items}


def test_the_registry_holds_one_contract_per_lab():
    assert [lab.contract for lab in LABS] == [VANILLA, CWGAN, MALARIA, FC, ICLEVR]
    assert ICLEVR.multi_label and ICLEVR.image_shape == (3, 64, 64) and ICLEVR.copies_dataset is None
    assert FC.model == "G" and FC.image_shape == (28, 28) and FC.copies_dataset == "mnist" and not FC.conditional
    assert VANILLA.model == "G_ema" and VANILLA.copies_dataset == "mnist" and not VANILLA.conditional
    assert CWGAN.classes == FASHION_CLASSES and CWGAN.copies_dataset == "fashion_mnist"
    assert MALARIA.image_shape is None and MALARIA.copies_dataset is None  # (3, S, S) comes from the notebook
    assert [bad for bad, _ in BAD_COUNTS] == [0, -3, 2.5, "4"]
    assert ("Sandals", ValueError) in BAD_CLASSES and (True, TypeError) in BAD_CLASSES


def test_a_correct_generate_passes_every_item():
    items = contract_items(make_generate(), VANILLA, model=G)
    assert [i.id for i in items] == ["array", "shape_dtype", "range", "same_seed", "other_seed", "bad_count_0",
                                     "bad_count_-3", "bad_count_2.5", "bad_count_'4'", "mode_restored"]
    assert all(i.ok and i.message == "" for i in items), [i for i in items if not i.ok]
    record = items[0].to_dict()
    assert set(record) == {"id", "requirement", "status", "message", "hint", "ok"} and record["ok"] is True


@pytest.mark.parametrize("mistake, item, text", [
    (dict(scale=False), "range", "expected [0, 1]"),
    (dict(dtype=np.float64), "shape_dtype", "dtype float64"),
    (dict(channel=True), "shape_dtype", "shape (5, 1, 28, 28)"),
    (dict(use_seed=False), "other_seed", "the seed is ignored"),
    (dict(validate=False), "bad_count_0", "did not raise ValueError"),
    (dict(keep_mode=False), "mode_restored", "left G_ema in eval mode"),
])
def test_each_mistake_fails_its_own_item(mistake, item, text):
    items = by_id(contract_items(make_generate(**mistake), VANILLA, model=G))
    assert items[item].status == "failed" and text in items[item].message, items[item]
    assert items[item].hint
    G.train()


def test_not_an_array_and_nondeterminism():
    items = contract_items(lambda n, seed=None: torch.zeros(n, 28, 28), VANILLA)
    assert items[0].status == "failed" and "numpy array" in items[0].message
    assert {i.status for i in items[1:]} == {"not run"}  # nothing to test without a sample
    rng = np.random.default_rng(0)
    noisy = by_id(contract_items(lambda n, seed=None: rng.random((check_count(n), 28, 28), dtype=np.float32),
                                 VANILLA))
    assert noisy["same_seed"].status == "failed" and "different images" in noisy["same_seed"].message


def test_not_implemented_is_its_own_status_and_the_wrapper_raises_it_again():
    def generate(n, seed=None):
        raise NotImplementedError()
    items = contract_items(generate, VANILLA)
    assert items[0].status == "not implemented"
    with pytest.raises(NotImplementedError):
        check_generate(generate)


def test_the_notebook_check_raises_at_the_first_failing_item(capsys):
    check_generate(make_generate(), shape=(28, 28), model=G)
    assert "✓ generate: passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed) as info:
        check_generate(make_generate(scale=False, use_seed=False))
    assert "expected [0, 1]" in str(info.value) and "Hint:" in str(info.value)  # the first failure, not the seed
    with pytest.raises(CheckFailed, match="not a function"):
        check_contract(None, VANILLA)


def test_malaria_shape_comes_from_the_call():
    generate = make_generate(G_rgb)
    assert all(i.ok for i in contract_items(generate, MALARIA, shape=(3, 16, 16)))
    check_generate(generate, shape=(3, 16, 16))
    with pytest.raises(CheckFailed, match=r"expected \(5, 3, 32, 32\) float32"):
        check_generate(generate, shape=(3, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        contract_items(generate, MALARIA)


def test_conditional_contract(capsys):
    good = contract_items(make_generate_conditional(), CWGAN, model=G_cond)
    assert all(i.ok for i in good), [i for i in good if not i.ok]
    ids = [i.id for i in good]
    assert ids[:10] == [f"class_{c}" for c in range(10)]
    assert {"same_seed", "other_seed", "other_class", "bad_class_'Sandals'", "bad_count_2.5", "mode_restored"} <= set(ids)
    check_generate_conditional(make_generate_conditional(), FASHION_CLASSES, model=G_cond)
    assert "✓ generate(n, c): passed" in capsys.readouterr().out

    items = by_id(contract_items(make_generate_conditional(by_name=False), CWGAN))
    assert items["class_0"].status == "failed" and "generate(3, 'T-shirt/top', seed=0)" in items["class_0"].message
    items = by_id(contract_items(make_generate_conditional(use_class=False), CWGAN))
    assert "class 1 and class 8" in items["other_class"].message
    items = by_id(contract_items(make_generate_conditional(validate_class=False), CWGAN))
    assert "generate(2, 10) raised RuntimeError, expected ValueError" in items["bad_class_10"].message
    assert "did not raise TypeError" in items["bad_class_1.0"].message
    with pytest.raises(CheckFailed, match=r"generate\(2, 10\) raised RuntimeError"):
        check_generate_conditional(make_generate_conditional(validate_class=False), FASHION_CLASSES)


def test_copies_are_scored_with_the_function_given():
    seen = {}

    def copy_share(images, dataset):
        seen.update(shape=images.shape, dataset=dataset)
        return {"share": 0.9, "threshold": 1.0, "n": len(images), "passed": False, "detail": "90% copies"}

    items = by_id(contract_items(make_generate(), VANILLA, copies=True, copy_share=copy_share))
    assert seen == {"shape": (200, 28, 28), "dataset": "mnist"}
    assert items["not_copies"].status == "failed" and "copies of training images" in items["not_copies"].message
    ok = lambda images, dataset: {"share": 0.0, "threshold": 1.0, "n": len(images), "passed": True, "detail": ""}  # noqa: E731
    assert by_id(contract_items(make_generate_conditional(), CWGAN, copies=True, copy_share=ok))["not_copies"].ok
