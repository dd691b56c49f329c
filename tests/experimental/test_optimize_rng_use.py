"""hk.experimental.optimize_rng_use: the keys (hence params and dropout masks) of dm-haiku's."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk


def _model(lib):
    def f(x):
        h = lib.nets.MLP([3, 2])(x)
        return h + lib.dropout(lib.next_rng_key(), 0.5, h)
    return f


@pytest.mark.parametrize("jit", [False, True])
def test_same_params_and_outputs_as_haiku(jit):
    x = jnp.ones([2, 1])
    results = []
    for lib in (hk, haiku):
        f = lib.transform(lib.experimental.optimize_rng_use(_model(lib)))
        init, apply = (jax.jit(f.init), jax.jit(f.apply)) if jit else (f.init, f.apply)
        params = init(jax.random.PRNGKey(42), x)
        results.append((params, apply(params, jax.random.PRNGKey(1), x)))
    (ours, ours_out), (theirs, theirs_out) = results
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours_out, theirs_out)


def test_keys_differ_from_the_undecorated_function_like_in_haiku():
    x = jnp.ones([1, 1])
    plain = hk.transform(_model(hk)).init(jax.random.PRNGKey(0), x)
    optimised = hk.transform(hk.experimental.optimize_rng_use(_model(hk))).init(
        jax.random.PRNGKey(0), x)
    # (The first key can coincide: JAX's partitionable key splitting gives split(k, n)[1] for any
    # n; the later keys come from a different split.)
    assert not all(np.array_equal(a, b)
                   for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(optimised)))


def test_counting_changes_nothing_and_names_stay():
    def f(x):
        first = hk.Linear(2)(x)
        second = hk.experimental.optimize_rng_use(lambda x: hk.Linear(2)(x))(x)
        return first + second

    params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    assert sorted(params) == ["linear", "linear_1"]


def test_without_rng_and_outside_transform_fun_runs_unchanged():
    f = hk.transform(hk.experimental.optimize_rng_use(lambda x: hk.Linear(2)(x)))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    assert f.apply(params, None, jnp.ones([1, 3])).shape == (1, 2)
    assert hk.experimental.optimize_rng_use(lambda x: x * 2)(3) == 6
