"""hk.pad against dm-haiku 0.0.17 (oracle) and the documented definitions."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

FNS = ["causal", "full", "reverse_causal", "same", "valid"]


def test_public_names():
    assert set(hk.pad.__all__) == {"PadFn", "is_padfn", "create", "create_from_padfn",
                                   "create_from_tuple", "causal", "full", "reverse_causal",
                                   "same", "valid"}
    for name in hk.pad.__all__:
        assert hasattr(haiku.pad, name)


@pytest.mark.parametrize("name", FNS)
def test_pad_functions_match_haiku(name):
    for k in range(1, 12):
        assert getattr(hk.pad, name)(k) == tuple(getattr(haiku.pad, name)(k))


def test_pad_function_definitions():
    for k in range(1, 10):
        assert hk.pad.valid(k) == (0, 0)
        assert hk.pad.causal(k) == (k - 1, 0)
        assert hk.pad.reverse_causal(k) == (0, k - 1)
        assert hk.pad.full(k) == (k - 1, k - 1)
        lo, hi = hk.pad.same(k)
        assert lo + hi == k - 1 and hi - lo in (0, 1)


CREATE_GRID = list(itertools.product(
    [1, 2, 3],                                   # n
    ["fn", "seq1", "seqn"],                      # padding form
    FNS,
    [2, 3, "seq"],                               # kernel
    [1, 2, "seq"],                               # rate
))


@pytest.mark.parametrize("n,form,fn,kernel,rate", CREATE_GRID)
def test_create_matches_haiku(n, form, fn, kernel, rate):
    def args(lib):
        f = getattr(lib.pad, fn)
        others = [lib.pad.causal, lib.pad.full, lib.pad.same]
        padding = {"fn": f, "seq1": [f], "seqn": [f] + others[:n - 1]}[form]
        k = tuple(range(2, 2 + n)) if kernel == "seq" else kernel
        r = tuple(range(1, 1 + n)) if rate == "seq" else rate
        return padding, k, r, n

    ours = hk.pad.create(*args(hk))
    theirs = haiku.pad.create(*args(haiku))
    assert ours == tuple(tuple(p) for p in theirs)
    assert hk.pad.create_from_padfn(*args(hk)) == ours
    assert isinstance(ours, tuple) and all(isinstance(p, tuple) for p in ours)


@pytest.mark.parametrize("padding,n", [
    ((1, 2), 1), ((1, 2), 3), ([(1, 2)], 2), ([(1, 2), (3, 4)], 2), (((0, 1), (2, 0), (1, 1)), 3),
])
def test_create_from_tuple_matches_haiku(padding, n):
    ours = hk.pad.create_from_tuple(padding, n)
    assert ours == tuple(tuple(p) for p in haiku.pad.create_from_tuple(padding, n))
    assert all(isinstance(p, tuple) for p in ours)


def test_create_accepts_documented_tuples_and_mixtures():
    # The documentation says `create` takes callables or (before, after) tuples (dm-haiku 0.0.17
    # only takes callables).
    assert hk.pad.create((1, 2), 3, 1, 2) == ((1, 2), (1, 2))
    assert hk.pad.create([(1, 2), hk.pad.full], (3, 4), 1, 2) == ((1, 2), (3, 3))
    assert hk.pad.create([(1, 0)], 3, 1, 3) == ((1, 0),) * 3


@pytest.mark.parametrize("value", [
    "fn", "fns", "lambda", "mixed", "tuple", "str", "int", "pairs", "empty"])
def test_is_padfn(value):
    candidate = {
        "fn": hk.pad.same, "fns": [hk.pad.same, hk.pad.valid], "lambda": lambda k: (0, 0),
        "mixed": [hk.pad.same, (1, 1)], "tuple": (1, 1), "str": "SAME", "int": 3,
        "pairs": [(1, 1), (0, 0)], "empty": [],
    }[value]
    expected = value in ("fn", "fns", "lambda")
    assert hk.pad.is_padfn(candidate) is expected
    if value not in ("mixed", "empty"):  # haiku checks only the first element (and fails on [])
        assert haiku.pad.is_padfn(candidate) is expected


def test_padfn_type_alias():
    fn: hk.pad.PadFn = hk.pad.causal
    assert fn(4) == (3, 0)


def test_errors():
    with pytest.raises(TypeError, match=r"padding must be a scalar or a sequence of length 1 or 2 "
                                        r"\(one per spatial dimension\), got .* of length 3"):
        hk.pad.create([hk.pad.same] * 3, 3, 1, 2)
    with pytest.raises(TypeError, match=r"kernel must be a scalar or a sequence of length 1 or 2"):
        hk.pad.create(hk.pad.same, (3, 3, 3), 1, 2)
    with pytest.raises(TypeError, match=r"rate must be a scalar or a sequence of length 1 or 2"):
        hk.pad.create(hk.pad.same, 3, (1, 2, 3), 2)
    with pytest.raises(TypeError, match=r"the padding function .* returned a value that must be a "
                                        r"pair of integers \(pad_before, pad_after\), got \(1,\)"):
        hk.pad.create(lambda k: (1,), 3, 1, 1)
    with pytest.raises(TypeError, match=r"padding must be a pair \(pad_before, pad_after\) or a "
                                        r"sequence of 1 or 2 such pairs, got 1"):
        hk.pad.create_from_tuple(1, 2)
    with pytest.raises(TypeError, match=r"each element must be a pair of integers"):
        hk.pad.create_from_tuple([(1, 2, 3)], 2)
    with pytest.raises(TypeError, match=r"padding must be a scalar or a sequence of length 1 or 2"):
        hk.pad.create_from_tuple([(1, 2), (3, 4), (5, 6)], 2)


def test_pad_functions_drive_convolutions_like_haiku():
    x = jnp.asarray(np.random.RandomState(0).randn(1, 7, 2), jnp.float32)
    for name in FNS:
        def build(lib):
            return lambda x: lib.Conv1D(3, 3, rate=2, padding=getattr(lib.pad, name))(x)
        params = haiku.transform(build(haiku)).init(jax.random.PRNGKey(0), x)
        ours = hk.transform(build(hk)).apply(params, None, x)
        theirs = haiku.transform(build(haiku)).apply(params, None, x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        lo, hi = getattr(hk.pad, name)(5)
        assert ours.shape == (1, 7 + lo + hi - 4, 3)
