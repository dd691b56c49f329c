"""Reshape and Flatten against dm-haiku 0.0.17 (oracle) and the documented examples."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk


def run(lib, build, x):
    f = lib.transform(lambda x: build(lib)(x))
    params = f.init(None, x)
    assert params == {}
    return f.apply(params, None, x)


X = jnp.arange(2 * 3 * 4 * 5 * 6, dtype=jnp.float32).reshape(2, 3, 4, 5, 6)

RESHAPE_GRID = list(itertools.product(
    [(-1,), (-1, 6), (2, -1), (5, 6), (6, 5), (-1, 2, 3), (1, -1), (30,)],
    [1, 2, 3, 4, 5, 6, -1, -2, -3, -5, -6],
))


def haiku_can(build, x):
    try:
        run(haiku, build, x)
        return True
    except (TypeError, ValueError):
        return False


@pytest.mark.parametrize("output_shape,preserve_dims", RESHAPE_GRID)
def test_reshape_matches_haiku(output_shape, preserve_dims):
    build = lambda lib: lib.Reshape(output_shape, preserve_dims=preserve_dims)  # noqa: E731
    if haiku_can(build, X):
        ours, theirs = run(hk, build, X), run(haiku, build, X)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    else:
        with pytest.raises(ValueError, match=r"reshape: cannot reshape the trailing dimensions"):
            run(hk, build, X)


@pytest.mark.parametrize("preserve_dims,rank", list(itertools.product(
    [1, 2, 3, 4, 5, 6, -1, -2, -4, -5, -6], [1, 2, 5])))
def test_flatten_matches_haiku(preserve_dims, rank):
    x = X.reshape(X.shape[:rank - 1] + (-1,))
    build = lambda lib: lib.Flatten(preserve_dims=preserve_dims)  # noqa: E731
    ours, theirs = run(hk, build, x), run(haiku, build, x)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_documented_reshape_examples():
    B, H, W, C, D = range(1, 6)
    x = jnp.ones([B, H, W, C, D])

    def f():
        assert hk.Reshape(output_shape=(-1, D))(x).shape == (B, H * W * C, D)
        assert hk.Reshape(output_shape=(-1, D), preserve_dims=2)(x).shape == (B, H, W * C, D)
        assert hk.Reshape(output_shape=(-1, D), preserve_dims=3)(x).shape == (B, H, W, C, D)
        assert hk.Reshape(output_shape=(-1, D), preserve_dims=4)(x).shape == (B, H, W, C, 1, D)
        mod = hk.Reshape(output_shape=(-1, D), preserve_dims=-3)
        assert mod(x).shape == (B, H, W * C, D)
        assert mod(x[0]).shape == (H, W * C, D)

    hk.transform(f).init(None)


def test_documented_flatten_examples():
    def f():
        flat = hk.Flatten()
        assert flat(jnp.ones([3, 2, 4])).shape == (3, 8)
        assert flat(jnp.ones([3])).shape == (3,)
        negative_flat = hk.Flatten(preserve_dims=-2)
        assert negative_flat(jnp.ones([3, 2, 4])).shape == (3, 8)
        assert negative_flat(jnp.ones([2, 4])).shape == (8,)
        assert isinstance(flat, hk.Reshape)
        assert flat.module_name == "flatten" and flat.output_shape == (-1,)

    hk.transform(f).init(None)


def test_jit_and_grad():
    f = hk.transform(lambda x: hk.Flatten(2)(x) * 2)
    np.testing.assert_array_equal(jax.jit(f.apply)({}, None, X), f.apply({}, None, X))
    g = jax.grad(lambda x: jnp.sum(hk.transform(lambda x: hk.Reshape((-1, 3), 3)(x)).apply(
        {}, None, x) ** 2))(X)
    np.testing.assert_array_equal(g, 2 * X)


def test_dtypes_are_kept():
    with jax.enable_x64(True):
        for dtype in [jnp.float64, jnp.bfloat16, jnp.int32]:
            x = X.astype(dtype)
            assert run(hk, lambda lib: lib.Flatten(), x).dtype == dtype


def test_numpy_output_shape_is_accepted():
    assert run(hk, lambda lib: lib.Reshape(np.array([-1, 2])), X).shape == (2, 180, 2)


def test_errors():
    with pytest.raises(ValueError, match=r"reshape: preserve_dims must be non-zero"):
        hk.transform(lambda: hk.Reshape((-1,), preserve_dims=0)).init(None)
    with pytest.raises(ValueError, match=r"flatten: preserve_dims must be non-zero"):
        hk.transform(lambda: hk.Flatten(preserve_dims=0)).init(None)
    with pytest.raises(ValueError, match=r"reshape: -1 can only occur once in output_shape, got "
                                         r"\(-1, -1\)"):
        hk.transform(lambda: hk.Reshape((-1, -1))).init(None)
    with pytest.raises(ValueError, match=r"reshape: output_shape entries must be >= 0 or -1"):
        hk.transform(lambda: hk.Reshape((-2, 3))).init(None)
    with pytest.raises(ValueError, match=r"my_reshape: cannot reshape the trailing dimensions "
                                         r"\(3, 4, 5, 6\) of an input of shape \(2, 3, 4, 5, 6\) "
                                         r"\(preserve_dims=1\) into output_shape \(7,\)"):
        run(hk, lambda lib: lib.Reshape((7,), name="my_reshape"), X)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape"):
        run(hk, lambda lib: lib.Reshape((-1, 7)), X)
