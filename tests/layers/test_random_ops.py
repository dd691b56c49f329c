"""dropout, multinomial and one_hot against dm-haiku 0.0.17 (oracle)."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(5)


def rand(shape, seed=0, dtype=np.float32):
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), dtype)


DROPOUT_GRID = list(itertools.product(
    [0.0, 0.1, 0.5, 0.9, np.float16(0.3)],
    [(), (0,), (-1,), (0, 2)],
    [(4, 3, 5), (7,)],
))


@pytest.mark.parametrize("rate,broadcast_dims,shape", [
    case for case in DROPOUT_GRID if all(-len(case[2]) <= d < len(case[2]) for d in case[1])
])
def test_dropout_matches_haiku(rate, broadcast_dims, shape):
    x = rand(shape)
    ours = hk.dropout(KEY, rate, x, broadcast_dims=broadcast_dims)
    theirs = haiku.dropout(KEY, rate, x, broadcast_dims=broadcast_dims)
    assert ours.dtype == theirs.dtype == x.dtype
    np.testing.assert_array_equal(ours, theirs)
    kept = np.asarray(ours) != 0
    np.testing.assert_allclose(np.asarray(ours)[kept], np.asarray(x)[kept] / (1 - float(rate)),
                               rtol=1e-3 if isinstance(rate, np.float16) else 1e-6)
    for d in broadcast_dims:  # the mask is shared along broadcast dims
        assert (np.take(kept, [0], axis=d) == kept).all()


def test_dropout_rate_statistics():
    x = jnp.ones([20000])
    for rate in [0.1, 0.5, 0.8]:
        dropped = float(jnp.mean(hk.dropout(KEY, rate, x) == 0))
        assert abs(dropped - rate) < 0.02


def test_dropout_edge_rates():
    x = rand((3, 4))
    # rate 0 is the identity, and needs no key.
    assert hk.dropout(None, 0.0, x) is x
    np.testing.assert_array_equal(hk.dropout(KEY, 0, x), haiku.dropout(KEY, 0, x))
    # rate 1 (and anything outside [0, 1)) is rejected, as in dm-haiku.
    for rate in [1.0, 1, 1.5, -0.1]:
        with pytest.raises(ValueError, match=r"dropout: rate must be in \[0, 1\), got"):
            hk.dropout(KEY, rate, x)
        with pytest.raises(ValueError):
            haiku.dropout(KEY, rate, x)
    # A traced rate cannot be checked; rate 1 then drops everything (dm-haiku gives NaN).
    out = jax.jit(lambda r: hk.dropout(KEY, r, x))(1.0)
    np.testing.assert_array_equal(out, np.zeros_like(x))
    jitted = jax.jit(lambda r: hk.dropout(KEY, r, x))(0.25)
    np.testing.assert_allclose(jitted, haiku.dropout(KEY, 0.25, x), rtol=1e-6)


def test_dropout_nan_and_inf_like_haiku():
    x = jnp.array([jnp.inf, jnp.nan, 1., -jnp.inf] * 4)
    np.testing.assert_array_equal(hk.dropout(KEY, 0.5, x), haiku.dropout(KEY, 0.5, x))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64", "int32"])
def test_dropout_dtypes_match_haiku(dtype):
    with jax.enable_x64(True):
        x = jnp.asarray(np.arange(12).reshape(3, 4) - 5, dtype)
        ours = hk.dropout(KEY, 0.5, x)
        theirs = haiku.dropout(KEY, 0.5, x)
        assert ours.dtype == theirs.dtype
        if dtype != "int32":
            assert ours.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(ours, np.float64), np.asarray(theirs, np.float64))


def test_dropout_inside_transform_with_next_rng_key():
    x = rand((4, 6))

    def build(lib):
        return lambda x: lib.dropout(lib.next_rng_key(), 0.3, lib.Linear(3)(x))

    ours, theirs = hk.transform(build(hk)), haiku.transform(build(haiku))
    params = theirs.init(KEY, x)
    np.testing.assert_allclose(ours.apply(params, KEY, x), theirs.apply(params, KEY, x),
                               rtol=1e-6)
    np.testing.assert_allclose(jax.jit(ours.apply)(params, KEY, x), theirs.apply(params, KEY, x),
                               rtol=1e-6)

    def loss(t):
        return lambda p: jnp.sum(t.apply(p, KEY, x) ** 2)

    g_ours, g_theirs = jax.grad(loss(ours))(params), jax.grad(loss(theirs))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_ours), jax.tree_util.tree_leaves(g_theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_dropout_needs_a_key():
    with pytest.raises(TypeError, match=r"dropout: rng is None but rate=0.5 is not zero"):
        hk.dropout(None, 0.5, jnp.ones([2]))


@pytest.mark.parametrize("shape,num_samples", [((5,), 1), ((4, 5), 3), ((2, 3, 6), 2)])
def test_multinomial_matches_haiku(shape, num_samples):
    logits = rand(shape, seed=1)
    ours = hk.multinomial(KEY, logits, num_samples)
    theirs = haiku.multinomial(KEY, logits, num_samples)
    assert ours.shape == shape[:-1] + (num_samples,)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    if len(shape) == 2:
        jitted = jax.jit(hk.multinomial, static_argnums=2)(KEY, logits, num_samples)
        np.testing.assert_array_equal(jitted, ours)


def test_multinomial_statistics():
    logits = jnp.log(jnp.array([[0.2, 0.8], [0.9, 0.1]]))
    samples = hk.multinomial(KEY, logits, 4000)
    np.testing.assert_allclose(jnp.mean(samples, axis=-1), [0.8, 0.1], atol=0.03)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.bfloat16, jnp.bool_])
def test_one_hot_matches_haiku(dtype):
    x = jnp.array([[0, 2], [5, -1]])
    ours = hk.one_hot(x, 4, dtype)
    theirs = haiku.one_hot(x, 4, dtype)
    assert ours.dtype == theirs.dtype == dtype
    np.testing.assert_array_equal(ours, theirs)
    assert ours.shape == (2, 2, 4)
    assert hk.one_hot(jnp.array([1]), 2).dtype == jnp.float32
