"""avg_pool/max_pool/AvgPool/MaxPool against dm-haiku 0.0.17 (oracle) and a NumPy reference."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk


def rand(shape, seed=0, dtype=np.float32):
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), dtype)


def ref_pool(x, window, strides, padding, reducer):
    """Pools by explicit loops (float64); SAME windows ignore padded elements."""
    x = np.asarray(x, np.float64)
    if padding == "SAME":
        out_sizes = [-(-d // s) for d, s in zip(x.shape, strides)]
        pads = [max((o - 1) * s + w - d, 0) for o, s, w, d in zip(out_sizes, strides, window,
                                                                   x.shape)]
        lows = [p // 2 for p in pads]
    else:
        out_sizes = [(d - w) // s + 1 for d, w, s in zip(x.shape, window, strides)]
        lows = [0] * x.ndim
    out = np.zeros(out_sizes)
    for idx in np.ndindex(*out_sizes):
        slices = tuple(slice(max(i * s - lo, 0), min(i * s - lo + w, d))
                       for i, s, lo, w, d in zip(idx, strides, lows, window, x.shape))
        out[idx] = reducer(x[slices])
    return out


SHAPES = [(2, 7, 3), (2, 6, 5, 3)]
GRID = list(itertools.product(
    ["avg_pool", "max_pool"],
    SHAPES,
    [2, 3, (2, 1), (1, 3, 2, 1)],        # window_shape
    [1, 2, (3, 1)],                      # strides
    ["SAME", "VALID"],
    [-1, None, 1],                       # channel_axis
))
GRID = [case for case in GRID
        if not (isinstance(case[2], tuple) and len(case[2]) > len(case[1]))
        and not (isinstance(case[3], tuple) and len(case[3]) > len(case[1]))
        # the channel axis only matters for int windows/strides: vary it only there
        and (case[5] == -1 or isinstance(case[2], int) or isinstance(case[3], int))]


def expand(value, rank, channel_axis):
    if isinstance(value, int):
        skip = {0} | (set() if channel_axis is None else {channel_axis % rank})
        return tuple(1 if a in skip else value for a in range(rank))
    return (1,) * (rank - len(value)) + tuple(value)


@pytest.mark.parametrize("fn,shape,window,strides,padding,channel_axis", GRID)
def test_pool_matches_haiku_and_reference(fn, shape, window, strides, padding, channel_axis):
    x = rand(shape)
    ours = getattr(hk, fn)(x, window, strides, padding, channel_axis=channel_axis)
    theirs = getattr(haiku, fn)(x, window, strides, padding, channel_axis=channel_axis)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    reducer = np.mean if fn == "avg_pool" else np.max
    expected = ref_pool(x, expand(window, len(shape), channel_axis),
                        expand(strides, len(shape), channel_axis), padding, reducer)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,channel_axis",
                         list(itertools.product(["AvgPool", "MaxPool"], [-1, 1])))
def test_pool_modules_match_haiku(cls, channel_axis):
    x = rand((2, 6, 5, 3), seed=1)

    def run(lib):
        f = lib.transform(lambda x: getattr(lib, cls)(3, 2, "SAME", channel_axis=channel_axis)(x))
        params = f.init(None, x)
        assert params == {}
        return f.apply(params, None, x), jax.jit(f.apply)(params, None, x)

    (ours, ours_jit), (theirs, _) = run(hk), run(haiku)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_jit, theirs, rtol=1e-5, atol=1e-6)


def test_module_attributes_and_names():
    def f():
        pool = hk.MaxPool((1, 2, 2, 1), 2, "VALID", channel_axis=None)
        assert (pool.window_shape, pool.strides, pool.padding, pool.channel_axis) == (
            (1, 2, 2, 1), 2, "VALID", None)
        assert pool.module_name == "max_pool"
        assert hk.AvgPool(2, 2, "SAME").module_name == "avg_pool"
    hk.transform(f).init(None)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float64, jnp.int32])
def test_dtypes_match_haiku(dtype):
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.RandomState(2).randn(2, 6, 5, 3) * 4, dtype)
        for fn, padding in itertools.product(["avg_pool", "max_pool"], ["SAME", "VALID"]):
            ours = getattr(hk, fn)(x, 3, 2, padding)
            theirs = getattr(haiku, fn)(x, 3, 2, padding)
            assert ours.dtype == theirs.dtype
            if dtype != jnp.int32 or fn == "max_pool":
                assert ours.dtype == dtype
            np.testing.assert_allclose(np.asarray(ours, np.float64),
                                       np.asarray(theirs, np.float64), rtol=1e-6)


def test_grad_matches_haiku():
    x = rand((2, 6, 5, 3), seed=3)
    for fn in ["avg_pool", "max_pool"]:
        loss = lambda lib: lambda x: jnp.sum(getattr(lib, fn)(x, 3, 2, "SAME") ** 2)  # noqa: E731
        np.testing.assert_allclose(jax.jit(jax.grad(loss(hk)))(x), jax.grad(loss(haiku))(x),
                                   rtol=1e-5, atol=1e-6)


def test_documented_behaviour():
    x = jnp.arange(1., 6.).reshape(1, 5, 1)
    np.testing.assert_allclose(hk.avg_pool(x, 3, 1, "SAME")[0, :, 0], [1.5, 2, 3, 4, 4.5])
    np.testing.assert_allclose(hk.max_pool(-x, 3, 1, "SAME")[0, :, 0], [-1, -1, -2, -3, -4])
    # An int window skips the batch axis and channel_axis; a shorter sequence covers the last axes.
    assert hk.max_pool(jnp.ones([2, 5, 6, 3]), 2, 2, "SAME").shape == (2, 3, 3, 3)
    assert hk.max_pool(jnp.ones([2, 5, 6, 3]), 2, 2, "SAME", channel_axis=None).shape == (
        2, 3, 3, 2)
    assert hk.max_pool(jnp.ones([2, 5, 6, 3]), (2, 2), (2, 2), "SAME").shape == (2, 5, 3, 2)


def test_errors():
    x = jnp.ones([2, 5, 3])
    with pytest.raises(ValueError, match=r"avg_pool: invalid padding 'same', it must be 'SAME' or "
                                         r"'VALID'"):
        hk.avg_pool(x, 2, 2, "same")
    with pytest.raises(ValueError, match=r"max_pool: invalid padding \(\(0, 0\), \(1, 1\)\)"):
        hk.max_pool(x, 2, 2, ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match=r"max_pool: window_shape \(2, 2, 2, 2\) has more entries "
                                         r"than the input has dimensions \(shape \(2, 5, 3\)\)"):
        hk.max_pool(x, (2, 2, 2, 2), 1, "SAME")
    with pytest.raises(ValueError, match=r"avg_pool: invalid channel_axis 3 for an input of shape "
                                         r"\(2, 5, 3\)"):
        hk.avg_pool(x, 2, 1, "SAME", channel_axis=3)
    with pytest.raises(ValueError, match=r"avg_pool: invalid channel_axis -1 for an input of shape "
                                         r"\(5,\)"):
        hk.avg_pool(jnp.ones([5]), 2, 1, "SAME")
    with pytest.raises(ValueError, match=r"max_pool: window_shape and strides must be >= 1, got "
                                         r"window \(1, 0, 1\)"):
        hk.max_pool(x, 0, 1, "VALID")
    with pytest.raises(ValueError, match=r"my_pool \(MaxPool\): invalid padding 'FULL'"):
        hk.transform(lambda: hk.MaxPool(2, 2, "FULL", name="my_pool")(x)).init(None)
    with pytest.raises(ValueError, match=r"avg_pool \(AvgPool\): window_shape \(1, 1, 1, 2\)"):
        hk.transform(lambda: hk.AvgPool((1, 1, 1, 2), 2, "SAME")(x)).init(None)
