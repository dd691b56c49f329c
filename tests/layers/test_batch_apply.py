"""BatchApply and expand_apply against dm-haiku 0.0.17 (oracle)."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(3)


def rand(shape, seed=0):
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), jnp.float32)


def assert_tree_close(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


GRID = [case for case in itertools.product([1, 2, 3], [(4, 3, 2, 5), (2, 3, 5)],
                                           ["linear", "tuple", "kw"])
        if case[0] < len(case[1])]  # f needs a feature axis left


@pytest.mark.parametrize("num_dims,shape,kind", GRID)
def test_batch_apply_matches_haiku(num_dims, shape, kind):
    x = rand(shape)

    def build(lib):
        def f(x):
            if kind == "linear":
                return lib.BatchApply(lib.Linear(4), num_dims=num_dims)(x)
            if kind == "tuple":
                g = lambda a, s, v: (a * s, {"sum": jnp.sum(a, -1) + v})  # noqa: E731
                return lib.BatchApply(g, num_dims=num_dims)(x, 2.0, jnp.ones([]))
            g = lambda a, b=None: a - b  # noqa: E731
            return lib.BatchApply(g, num_dims=num_dims)(x, b=x * 3)
        return f

    theirs = haiku.transform(build(haiku))
    ours = hk.transform(build(hk))
    params = theirs.init(KEY, x)
    assert jax.tree_util.tree_map(jnp.shape, ours.init(KEY, x)) == jax.tree_util.tree_map(
        jnp.shape, params)
    out = ours.apply(params, None, x)
    assert_tree_close(out, theirs.apply(params, None, x))
    assert_tree_close(jax.jit(ours.apply)(params, None, x), out)
    leaves = jax.tree_util.tree_leaves(out)
    assert all(leaf.shape[:num_dims] == shape[:num_dims] for leaf in leaves)


def test_batch_apply_is_a_plain_callable_not_a_module():
    ba = hk.BatchApply(jnp.abs, num_dims=3)
    assert not isinstance(ba, hk.Module)
    assert ba.num_dims == 3
    x = -jnp.ones([2, 3, 4, 5])
    np.testing.assert_array_equal(ba(x), jnp.ones([2, 3, 4, 5]))  # works outside transforms too


def test_batch_apply_grad_matches_haiku():
    x = rand((3, 2, 4), seed=1)

    def loss(lib):
        f = lib.transform(lambda x: lib.BatchApply(lib.Linear(2))(x))
        return lambda p, x: jnp.sum(f.apply(p, None, x) ** 2)

    params = haiku.transform(lambda x: haiku.BatchApply(haiku.Linear(2))(x)).init(KEY, x)
    assert_tree_close(jax.grad(loss(hk))(params, x), jax.grad(loss(haiku))(params, x))


def test_batch_apply_passes_small_inputs_through():
    seen = {}

    def f(a, s, v):
        seen["shapes"] = (a.shape, jnp.shape(s), v.shape)
        return a

    hk.BatchApply(f)(jnp.ones([2, 3, 4]), 5.0, jnp.ones([7]))
    assert seen["shapes"] == ((6, 4), (), (7,))


def test_batch_apply_errors():
    with pytest.raises(ValueError, match=r"BatchApply requires at least one input array with "
                                         r"ndim >= num_dims=2"):
        hk.BatchApply(lambda a: a)(jnp.ones([3]))
    with pytest.raises(ValueError, match=r"BatchApply: every output of f must be an array whose "
                                         r"first dimension is the merged batch size 6"):
        hk.BatchApply(lambda a: jnp.sum(a))(jnp.ones([2, 3, 4]))
    with pytest.raises(ValueError, match=r"BatchApply: num_dims must be an int >= 1, got 0"):
        hk.BatchApply(lambda a: a, num_dims=0)


@pytest.mark.parametrize("axis", [0, -1])
def test_expand_apply_matches_haiku(axis):
    x = rand((3, 4), seed=2)

    def build(lib):
        def f(a, s, b=None):
            return (lib.Linear(2)(a) if axis == 0 else jnp.tanh(a)), s * 2, b + 1
        return lambda x: lib.expand_apply(f, axis=axis)(x, 3.0, b=x)

    theirs = haiku.transform(build(haiku))
    ours = hk.transform(build(hk))
    params = theirs.init(KEY, x)
    assert_tree_close(ours.apply(params, None, x), theirs.apply(params, None, x))


def test_expand_apply_documented_sugar_and_other_axes():
    f = lambda x: jnp.cumsum(x, axis=0)  # noqa: E731
    x = rand((3, 4))
    np.testing.assert_array_equal(hk.expand_apply(f)(x), jnp.squeeze(f(x[None]), 0))
    # Beyond dm-haiku (which allows only 0 and -1): any axis.
    assert hk.expand_apply(lambda a: a, axis=1)(x).shape == (3, 4)
    with pytest.raises(TypeError, match=r"expand_apply: axis must be an int, got 'x'"):
        hk.expand_apply(f, axis="x")
