"""What every lab's ``generate`` must do, written once: the contract as data, and one checker.

    generate(n, seed=None)       vanilla, fc, malaria   float32 array (n, *image_shape) in [0, 1]
    generate(n, c, seed=None)    cwgan                  the same, all of class c (an index or a name, any case)
    generate(n, objects, seed=None)  iclevr             float32 (n, 3, 64, 64) in [0, 1]; objects: ONE condition for
                                                        all n images (1 to 3 object names, or a 24-hot vector) or a
                                                        list of n conditions; bad conditions raise ValueError

:class:`GenerateContract` holds the rules of one lab (image shape, classes, the bad arguments and the
exception each must raise, the network whose train/eval mode must survive the call, the training set
its samples must not copy). :func:`contract_items` checks a ``generate`` against it and returns one
:class:`ContractItem` per requirement; :func:`check_contract` is the same check for the notebook,
raising :class:`CheckFailed` at the first failing requirement. The in-notebook checks
(``check_generate``, ``check_generate_conditional``), the grader, the benchmark and the tests all
call these two functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from helpers.checks.common import CheckFailed, _ok
from helpers.data import FASHION_CLASSES
from helpers.iclevr.render import OBJECTS as OBJECT_NAMES

BAD_COUNTS = ((0, ValueError), (-3, ValueError), (2.5, TypeError), ("4", TypeError))
BAD_CLASSES = ((10, ValueError), (-1, ValueError), ("Sandals", ValueError), (1.0, TypeError), (None, TypeError),
               (True, TypeError))
COUNT_HINT = "validate n with check_count(n) first."
COPY_LIMIT = 0.05  # more than 5% of samples closer to a training image than real test images are: copies


@dataclass(frozen=True)
class GenerateContract:
    """The rules one lab's ``generate`` must keep."""

    lab: str                                    # the lab's short name
    image_shape: tuple[int, ...] | None         # one image: (28, 28); None: given at check time (malaria (3, S, S))
    classes: tuple[str, ...] = ()               # class names when generate takes a class c: generate(n, c, seed)
    model: str = "G"                            # the notebook's network generate samples from (mode restored)
    copies_dataset: str | None = None           # training set the samples must not copy (graded, not in notebooks)
    n: int = 5                                  # images in the first call
    seeds: tuple[int, int] = (0, 1)             # the same seed twice gives the same images, another seed others
    bad_counts: tuple[tuple[Any, type[Exception]], ...] = BAD_COUNTS    # n and the exception it must raise
    bad_classes: tuple[tuple[Any, type[Exception]], ...] = BAD_CLASSES  # c and the exception (conditional only)
    copy_samples: int = 200                     # samples scored for copies of training images
    multi_label: bool = False                   # generate(n, objects, seed): conditions of 1 to 3 named objects (iclevr)

    @property
    def conditional(self) -> bool:
        return bool(self.classes)


VANILLA = GenerateContract("vanilla", (28, 28), model="G_ema", copies_dataset="mnist")
CWGAN = GenerateContract("cwgan", (28, 28), classes=tuple(FASHION_CLASSES), model="G_ema",
                         copies_dataset="fashion_mnist")
MALARIA = GenerateContract("malaria", None, model="G")
FC = GenerateContract("fc", (28, 28), model="G", copies_dataset="mnist")
ICLEVR = GenerateContract("iclevr", (3, 64, 64), model="G", multi_label=True)

# iclevr: the conditions generate is called with, and the bad ones with the ValueError each must raise (the text
# its message must contain: the offending name, or nothing in particular).
MULTI_CONDITION = ["red cube", "blue sphere"]
MULTI_OTHER = ["yellow cylinder"]
MULTI_PER_IMAGE = [["gray cube"], ["cyan sphere", "brown cylinder"], ["red cube", "green sphere", "purple cylinder"]]
BAD_OBJECTS: tuple[tuple[Any, str], ...] = (
    (["pink cube"], "pink cube"),                                      # an unknown name, named in the message
    (["red cube", "red cube"], "red cube"),                            # a name twice
    ([], ""),                                                          # no object
    (["red cube", "blue cube", "green cube", "gray cube"], ""),         # more than 3 objects
    ([["red cube"], ["blue cube"], ["gray cube"]], ""),               # 3 conditions for n = 2 images
    (np.zeros(24, dtype=np.float32), ""),                              # a 24-hot vector with no object
)


@dataclass
class ContractItem:
    """One requirement of the contract and how the checked ``generate`` did on it."""

    id: str                     # short stable name, e.g. "same_seed"
    requirement: str            # what must hold, e.g. "generate(5, seed=0) twice gives the same images"
    status: str = "passed"      # "passed" | "failed" | "not implemented" | "not run"
    message: str = ""           # what differed (empty when passed)
    hint: str = ""              # what to do about it
    error: BaseException | None = field(default=None, repr=False, compare=False)  # what generate raised, if anything

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        """The JSON form (without the exception object)."""
        out = asdict(self)
        out.pop("error")
        out["ok"] = self.ok
        return out


class _Failed(Exception):
    """Inside the checker: this requirement failed (message, hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def _described(a: Any) -> str:
    return f"{type(a).__name__} of shape {getattr(a, 'shape', None)} and dtype {getattr(a, 'dtype', None)}"


def iter_contract_items(generate: Callable, contract: GenerateContract, *, shape: tuple[int, ...] | None = None,
                        model: Any = None, copies: bool = False, copy_share: Callable | None = None,
                        **kwargs: Any) -> Iterator[ContractItem]:
    """Check ``generate`` against ``contract``, one requirement at a time (lazily: stop when you like).

    Args:
        generate: the notebook's ``generate``.
        contract: the lab's rules.
        shape: the shape of one image when the contract leaves it open (malaria: ``(3, S, S)``).
        model: the network ``generate`` samples from; when given, its train/eval mode must be restored.
        copies: also score ``contract.copy_samples`` samples for copies of ``contract.copies_dataset``.
        copy_share: ``copy_share(images, dataset) -> {"share", "threshold", "n", "passed", "detail"}``
            (``helpers.course.scoring.copy_share``); needed when ``copies`` is true.
        **kwargs: passed to every call of ``generate`` (malaria: ``generator=G_mt``).

    Yields:
        One :class:`ContractItem` per requirement. A requirement that needs a sample the first call
        did not give is ``"not run"``.
    """
    shape = tuple(shape or contract.image_shape or ())
    if not shape:
        raise ValueError(f"the {contract.lab} contract leaves the image shape open: pass shape=(C, S, S).")
    state: dict[str, Any] = {}

    def item(id_: str, requirement: str, test: Callable[[], None], needs: str | None = None) -> ContractItem:
        result = ContractItem(id_, requirement)
        if needs is not None and needs not in state:
            result.status, result.message = "not run", "not tested: an earlier call of generate failed"
            return result
        try:
            test()
        except _Failed as failed:
            result.status, result.message, result.hint = "failed", failed.message, failed.hint
        except NotImplementedError as err:
            result.status, result.error = "not implemented", err
            result.message = "NotImplementedError: generate is not implemented yet"
            result.hint = "write the body of generate (the TODO)."
        except Exception as err:  # noqa: BLE001 - anything generate raises is a result
            result.status, result.error = "failed", err
            result.message = f"generate raised {type(err).__name__}: {err}"[:600]
            result.hint = "call generate yourself with these arguments and read the traceback."
        return result

    def expect_raises(args: tuple, err: type[Exception], hint: str, names_classes: bool = False) -> Callable[[], None]:
        call = f"generate({', '.join(map(repr, args))})"

        def test() -> None:
            try:
                generate(*args, **kwargs)
            except err as e:
                if names_classes and "Sneaker" not in str(e):
                    raise _Failed(f"{call} raised ValueError, but its message does not list the valid classes: {e}",
                                  "say which classes exist, e.g. '0 T-shirt/top, 1 Trouser, ...'.") from None
                return
            except NotImplementedError:
                raise
            except Exception as other:  # noqa: BLE001 - report what was raised instead
                raise _Failed(f"{call} raised {type(other).__name__}, expected {err.__name__}.", hint) from None
            raise _Failed(f"{call} did not raise {err.__name__}.", hint)
        return test

    n, (seed_a, seed_b) = contract.n, contract.seeds
    if contract.multi_label:
        yield from _multi_label_items(generate, contract, shape, state, item, expect_raises, kwargs)
    elif contract.conditional:
        yield from _conditional_items(generate, contract, shape, state, item, expect_raises, kwargs)
    else:
        want = (n, *shape)

        def first() -> None:
            a = generate(n, seed=seed_a, **kwargs)
            if not isinstance(a, np.ndarray):
                raise _Failed(f"generate returned {type(a).__name__}, expected a numpy array.",
                              "finish with to_unit_images(x) (or .cpu().numpy()).")
            state["array"] = a

        def shape_dtype() -> None:
            a = state["array"]
            if a.shape != want or a.dtype != np.float32:
                raise _Failed(f"generate({n}) returned shape {a.shape} and dtype {a.dtype}, expected {want} float32.",
                              "drop the channel axis and convert to float32." if len(shape) == 2 else
                              "keep the channel axis (n, 3, S, S) and convert to float32.")
            state["sample"] = a

        def value_range() -> None:
            a = state["sample"]
            if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                raise _Failed(f"generate returned values in [{np.nanmin(a):.3f}, {np.nanmax(a):.3f}], expected [0, 1].",
                              "map the tanh output from [-1, 1] to [0, 1] with (x + 1) / 2.")

        def same_seed() -> None:
            if not np.array_equal(generate(n, seed=seed_a, **kwargs), state["sample"]):
                raise _Failed(f"generate({n}, seed={seed_a}) gave different images on two calls.",
                              "draw the noise from the seed (seeded_noise) and use eval mode so BatchNorm does not "
                              "use batch statistics.")

        def other_seed() -> None:
            if np.array_equal(state["sample"], generate(n, seed=seed_b, **kwargs)):
                raise _Failed(f"generate({n}, seed={seed_a}) and generate({n}, seed={seed_b}) gave the same images: "
                              f"the seed is ignored.",
                              "draw the noise from the seed argument: seeded_noise(n, latent_dim, seed, device).")

        yield item("array", f"generate({n}, seed={seed_a}) returns a numpy array", first)
        yield item("shape_dtype", f"it has shape {want} and dtype float32", shape_dtype, needs="array")
        yield item("range", "its values lie in [0, 1]", value_range, needs="sample")
        yield item("same_seed", f"generate({n}, seed={seed_a}) twice gives the same images", same_seed, needs="sample")
        yield item("other_seed", f"seed={seed_b} gives other images than seed={seed_a}", other_seed, needs="sample")
        for bad, err in contract.bad_counts:
            yield item(f"bad_count_{bad!r}", f"generate({bad!r}) raises {err.__name__}",
                       expect_raises((bad,), err, COUNT_HINT), needs="sample")
    if model is not None:
        yield item("mode_restored", f"{contract.model}'s train/eval mode is the same after a call",
                   _mode_test(generate, model, contract, kwargs), needs="sample")
    if copies:
        yield item("not_copies", f"fewer than {COPY_LIMIT:.0%} of {contract.copy_samples} samples copy a training "
                   f"image ({contract.copies_dataset})", _copy_test(generate, contract, copy_share, kwargs), needs="sample")


def _conditional_items(generate, contract, shape, state, item, expect_raises, kwargs) -> Iterator[ContractItem]:
    want = (3, *shape)

    def per_class(c: int, name: str) -> Callable[[], None]:
        def test() -> None:
            a = generate(3, c, seed=0, **kwargs)
            if not isinstance(a, np.ndarray) or a.shape != want or a.dtype != np.float32:
                raise _Failed(f"generate(3, {c}) returned {type(a).__name__} of shape {getattr(a, 'shape', None)} and "
                              f"dtype {getattr(a, 'dtype', None)}, expected a {want} float32 numpy array.",
                              "finish with to_unit_images(x).")
            if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                raise _Failed(f"generate(3, {c}) returned values in [{np.nanmin(a):.3f}, {np.nanmax(a):.3f}], "
                              f"expected [0, 1].", "map the tanh output from [-1, 1] to [0, 1] with to_unit_images.")
            state["sample"] = a
            for alias in (name, name.upper()):
                try:
                    by_name = generate(3, alias, seed=0, **kwargs)
                except NotImplementedError:
                    raise
                except Exception as err:  # noqa: BLE001 - say what went wrong
                    raise _Failed(f"generate(3, {alias!r}, seed=0) raised {type(err).__name__}: {err}",
                                  "accept class names in any case: turn c into an index with class_index(c) "
                                  "first.") from None
                if not np.array_equal(by_name, a):
                    raise _Failed(f"generate(3, {alias!r}, seed=0) differs from generate(3, {c}, seed=0).",
                                  "turn a class name into its index first (class_index(c)), case-insensitively.")
        return test

    for c, name in enumerate(contract.classes):
        yield item(f"class_{c}", f"generate(3, {c}) and generate(3, {name!r}) (any case) give the same {want} float32 "
                   f"array in [0, 1]", per_class(c, name), needs=None if c == 0 else "sample")

    def same_seed() -> None:
        if not np.array_equal(generate(4, 1, seed=5, **kwargs), generate(4, 1, seed=5, **kwargs)):
            raise _Failed("generate(4, 1, seed=5) gave different images on two calls.",
                          "draw the noise from the seed (seeded_noise) and use eval mode so BatchNorm uses its running "
                          "statistics.")

    def other_seed() -> None:
        if np.array_equal(generate(4, 1, seed=5, **kwargs), generate(4, 1, seed=6, **kwargs)):
            raise _Failed("generate(4, 1, seed=5) and generate(4, 1, seed=6) gave the same images: the seed is ignored.",
                          "draw the noise from the seed argument: seeded_noise(n, latent_dim, seed, device).")

    def other_class() -> None:
        if np.array_equal(generate(4, 1, seed=5, **kwargs), generate(4, 8, seed=5, **kwargs)):
            raise _Failed("generate gives the same images for class 1 and class 8.", "pass the class labels to G(z, y).")

    yield item("same_seed", "generate(4, 1, seed=5) twice gives the same images", same_seed, needs="sample")
    yield item("other_seed", "seed=6 gives other images than seed=5", other_seed, needs="sample")
    yield item("other_class", "class 8 gives other images than class 1 from the same seed", other_class, needs="sample")
    hint = "validate n with check_count(n) and c with class_index(c) first."
    for bad, err in contract.bad_counts:
        yield item(f"bad_count_{bad!r}", f"generate({bad!r}, 1) raises {err.__name__}",
                   expect_raises((bad, 1), err, hint), needs="sample")
    for bad, err in contract.bad_classes:
        yield item(f"bad_class_{bad!r}", f"generate(2, {bad!r}) raises {err.__name__}"
                   + (" naming the valid classes" if err is ValueError else ""),
                   expect_raises((2, bad), err, hint, names_classes=err is ValueError), needs="sample")


def _multi_label_items(generate, contract, shape, state, item, expect_raises, kwargs) -> Iterator[ContractItem]:
    n, seed_a = contract.n, contract.seeds[0]
    want = (n, *shape)
    call = f"generate({n}, {MULTI_CONDITION!r}, seed={seed_a})"

    def first() -> None:
        a = generate(n, list(MULTI_CONDITION), seed=seed_a, **kwargs)
        if not isinstance(a, np.ndarray):
            raise _Failed(f"{call} returned {type(a).__name__}, expected a numpy array.",
                          "finish with to_unit_images(x) (or .cpu().numpy()).")
        state["array"] = a

    def shape_dtype() -> None:
        a = state["array"]
        if a.shape != want or a.dtype != np.float32:
            raise _Failed(f"{call} returned shape {a.shape} and dtype {a.dtype}, expected {want} float32.",
                          "return (n, 3, 64, 64): upsample G's images to 64 x 64 if G draws smaller ones, and "
                          "convert to float32.")
        state["sample"] = a

    def value_range() -> None:
        a = state["sample"]
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise _Failed(f"generate returned values in [{np.nanmin(a):.3f}, {np.nanmax(a):.3f}], expected [0, 1].",
                          "map the tanh output from [-1, 1] to [0, 1] with to_unit_images (clamp after resizing).")

    def as_vector() -> None:
        vec = np.zeros(len(OBJECT_NAMES), dtype=np.float32)
        vec[[OBJECT_NAMES.index(o) for o in MULTI_CONDITION]] = 1.0
        b = generate(n, vec, seed=seed_a, **kwargs)
        if not isinstance(b, np.ndarray) or not np.array_equal(b, state["sample"]):
            raise _Failed(f"generate({n}, <the same condition as a 24-hot vector>, seed={seed_a}) differs from {call}.",
                          "turn objects into (n, 24) vectors with encode_conditions(objects, n) first: it takes names "
                          "and 24-hot vectors alike.")

    def per_image() -> None:
        k = len(MULTI_PER_IMAGE)
        a = generate(k, [list(c) for c in MULTI_PER_IMAGE], seed=seed_a, **kwargs)
        if not isinstance(a, np.ndarray) or a.shape != (k, *shape) or a.dtype != np.float32:
            raise _Failed(f"generate({k}, <{k} conditions, one per image>) returned {_described(a)}, expected "
                          f"{(k, *shape)} float32.", "a list of n conditions gives one image per condition: "
                          "encode_conditions(objects, n) returns them as (n, 24).")

    def same_seed() -> None:
        if not np.array_equal(generate(4, list(MULTI_OTHER), seed=5, **kwargs),
                              generate(4, list(MULTI_OTHER), seed=5, **kwargs)):
            raise _Failed(f"generate(4, {MULTI_OTHER!r}, seed=5) gave different images on two calls.",
                          "draw the noise from the seed (seeded_noise) and use eval mode so BatchNorm uses its running "
                          "statistics.")

    def other_seed() -> None:
        if np.array_equal(generate(4, list(MULTI_OTHER), seed=5, **kwargs),
                          generate(4, list(MULTI_OTHER), seed=6, **kwargs)):
            raise _Failed(f"generate(4, {MULTI_OTHER!r}, seed=5) and seed=6 gave the same images: the seed is ignored.",
                          "draw the noise from the seed argument: seeded_noise(n, latent_dim, seed, device).")

    def other_condition() -> None:
        if np.array_equal(generate(4, list(MULTI_OTHER), seed=5, **kwargs),
                          generate(4, list(MULTI_CONDITION), seed=5, **kwargs)):
            raise _Failed(f"generate gives the same images for {MULTI_OTHER!r} and {MULTI_CONDITION!r}.",
                          "pass the encoded conditions to G(z, y).")

    def bad_objects(bad: Any, names: str) -> Callable[[], None]:
        shown = f"generate(2, {bad.tolist() if isinstance(bad, np.ndarray) else bad!r})"

        def test() -> None:
            try:
                generate(2, bad, **kwargs)
            except ValueError as e:
                if names and names not in str(e):
                    raise _Failed(f"{shown} raised ValueError, but its message does not say which object is wrong: {e}",
                                  "let encode_conditions(objects, n) validate the objects: its messages say what is "
                                  "wrong.") from None
                return
            except NotImplementedError:
                raise
            except Exception as other:  # noqa: BLE001 - report what was raised instead
                raise _Failed(f"{shown} raised {type(other).__name__}, expected ValueError.",
                              "validate the objects with encode_conditions(objects, n) first.") from None
            raise _Failed(f"{shown} did not raise ValueError.",
                          "validate the objects with encode_conditions(objects, n) first.")
        return test

    yield item("array", f"{call} returns a numpy array", first)
    yield item("shape_dtype", f"it has shape {want} and dtype float32", shape_dtype, needs="array")
    yield item("range", "its values lie in [0, 1]", value_range, needs="sample")
    yield item("vector", "the same condition as a 24-hot vector gives the same images", as_vector, needs="sample")
    yield item("per_image", f"a list of {len(MULTI_PER_IMAGE)} conditions gives one image each", per_image,
               needs="sample")
    yield item("same_seed", f"generate(4, {MULTI_OTHER!r}, seed=5) twice gives the same images", same_seed,
               needs="sample")
    yield item("other_seed", "seed=6 gives other images than seed=5", other_seed, needs="sample")
    yield item("other_condition", f"{MULTI_CONDITION!r} gives other images than {MULTI_OTHER!r} from the same seed",
               other_condition, needs="sample")
    hint = "validate n with check_count(n) first."
    for bad, err in contract.bad_counts:
        yield item(f"bad_count_{bad!r}", f"generate({bad!r}, {MULTI_OTHER!r}) raises {err.__name__}",
                   expect_raises((bad, list(MULTI_OTHER)), err, hint), needs="sample")
    for i, (bad, names) in enumerate(BAD_OBJECTS):
        shown = bad.tolist() if isinstance(bad, np.ndarray) else bad
        yield item(f"bad_objects_{i}", f"generate(2, {shown!r}) raises ValueError" + (f" naming {names!r}" if names else ""),
                   bad_objects(bad, names), needs="sample")


def _mode_test(generate: Callable, model: Any, contract: GenerateContract, kwargs: dict) -> Callable[[], None]:
    args = (2, list(MULTI_OTHER)) if contract.multi_label else (2, 0) if contract.conditional else (2,)

    def test() -> None:
        was = model.training
        try:
            for mode in (True, False):
                model.train(mode)
                generate(*args, seed=0, **kwargs)
                if model.training != mode:
                    raise _Failed(f"generate left {contract.model} in {'train' if model.training else 'eval'} mode; "
                                  f"it was in {'train' if mode else 'eval'} mode before the call.",
                                  "sample inside `with eval_mode(G):`, which restores the previous mode.")
        finally:
            model.train(was)
    return test


def _copy_test(generate: Callable, contract: GenerateContract, copy_share: Callable | None,
               kwargs: dict) -> Callable[[], None]:
    def test() -> None:
        if copy_share is None:
            raise ValueError("copies=True needs copy_share (helpers.course.scoring.copy_share).")
        k = contract.copy_samples
        if contract.conditional:
            per = -(-k // len(contract.classes))
            images = np.concatenate([generate(per, c, seed=7000 + c, **kwargs) for c in range(len(contract.classes))])
        else:
            images = generate(k, seed=7000, **kwargs)
        result = copy_share(np.asarray(images), contract.copies_dataset)
        if not result["passed"]:
            raise _Failed(f"{result['share']:.0%} of {result['n']} samples are (nearly) copies of training images "
                          f"(limit {COPY_LIMIT:.0%}): {result.get('detail', '')}",
                          "generate must sample the trained generator, not return training images.")
    return test


def contract_items(generate: Callable, contract: GenerateContract, **options: Any) -> list[ContractItem]:
    """Every requirement of ``contract`` checked on ``generate`` (see :func:`iter_contract_items`)."""
    return list(iter_contract_items(generate, contract, **options))


def check_contract(generate: Callable, contract: GenerateContract, name: str = "generate", **options: Any) -> None:
    """The notebook's check: raise :class:`CheckFailed` at the first failing requirement, else print a pass line.

    ``NotImplementedError`` from ``generate`` is raised again as it is (a TODO not written yet).
    """
    if not callable(generate):
        raise CheckFailed(f"generate is {type(generate).__name__}, not a function.\nHint: define def generate(n, ...).")
    for result in iter_contract_items(generate, contract, **options):
        if result.status == "not implemented":
            raise result.error
        if not result.ok:
            raise CheckFailed(f"{result.message}\nHint: {result.hint}")
    _ok(name)

