"""The guide "Limitations of Nesting JAX Functions and Haiku Modules" (section 1.2 of the Haiku
documentation and spec/nesting-jax-transforms-guide.txt): its examples and the five rows of its
summary table, with a small MLP in place of ResNet50 and dm-haiku 0.0.17 as the oracle.

| What?                                          | Works?                            |
| vmapping outside a hk.transform                | yes                               |
| vmapping inside a hk.transform                 | error (senryu: hk.JaxUsageError)  |
| vmapping a nested hk.transform (without lift)  | inner state is not registered     |
| vmapping a nested hk.transform (with lift)     | yes                               |
| using hk.vmap                                  | yes                               |
"""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(777)
RTOL = 1e-5
ATOL = 1e-6
XS = jnp.arange(12, dtype=jnp.float32).reshape(4, 1, 3) / 12.0  # 4 examples of shape [1, 3]


def plain(tree):
    return {k: dict(v) for k, v in tree.items()}


def shapes(tree):
    return jax.tree.map(jnp.shape, plain(tree))


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    assert a_def == e_def, (a_def, e_def)
    for a, e in zip(a_leaves, e_leaves):
        assert jnp.shape(a) == jnp.shape(e), (jnp.shape(a), jnp.shape(e))
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def net(lib):
    return lambda x: lib.nets.MLP([4, 2])(x)


MLP_SHAPES = {"mlp/~/linear_0": {"b": (4,), "w": (3, 4)},
              "mlp/~/linear_1": {"b": (2,), "w": (4, 2)}}


def per_example(params, xs):
    f = hk.transform(net(hk))
    return jnp.stack([f.apply(params, None, x) for x in xs])


def leak_errors():
    """What a leaking raw JAX transform raises: hk.JaxUsageError (both a ValueError and a
    jax.errors.UnexpectedTracerError, so code catching the documented error keeps working)."""
    return getattr(hk, "JaxUsageError", jax.errors.UnexpectedTracerError)


# ------------------------------------------------------------------------------------------------
# The summary table.
# ------------------------------------------------------------------------------------------------


def test_row1_vmapping_outside_a_transform_works():
    for lib in (hk, haiku):
        f = lib.without_apply_rng(lib.transform(net(lib)))
        params = f.init(KEY, XS[0])
        out = jax.vmap(f.apply, in_axes=(None, 0))(params, XS)
        assert shapes(params) == MLP_SHAPES
        assert_close(out, per_example(plain(params), XS))


def test_row2_raw_jax_vmap_inside_a_transform_raises():
    f = hk.transform(lambda xs: jax.vmap(net(hk))(xs))
    with pytest.raises(leak_errors(), match=(
            r"(?s)Creating parameter 'w' of module 'mlp/~/linear_0'.*inside `jax\.vmap`.*"
            r"hk\.vmap")) as info:
        f.init(KEY, XS)
    assert isinstance(info.value, jax.errors.UnexpectedTracerError)
    assert isinstance(info.value, ValueError)
    # Under jax.jit too (where dm-haiku silently succeeds for a stateless net).
    with pytest.raises(leak_errors()):
        jax.jit(f.init)(KEY, XS)
    # At apply the parameters are only read, which is harmless: reading is allowed.
    params = hk.transform(lambda xs: net(hk)(xs[0])).init(KEY, XS)
    assert_close(f.apply(params, None, XS), per_example(params, XS))


def test_row2_raw_jax_vmap_with_state_raises():
    """With state (ResNet50's batch norm in the guide) the leak is a real bug: dm-haiku returns a
    leaked VmapTracer as state (or UnexpectedTracerError under jit); senryu stops it at once."""
    def stateful(lib):
        def f(x):
            lib.set_state("mean", x.mean())
            return x
        return f

    f = hk.transform_with_state(lambda xs: jax.vmap(stateful(hk))(xs))
    with pytest.raises(leak_errors(), match=(
            r"(?s)Setting state 'mean' of module '~'.*inside `jax\.vmap`.*hk\.vmap")):
        f.init(KEY, XS)
    theirs = haiku.transform_with_state(lambda xs: jax.vmap(stateful(haiku))(xs))
    with pytest.raises(jax.errors.UnexpectedTracerError):
        jax.jit(theirs.init)(KEY, XS)
    # The fix the error names: hk.vmap, with the state reduced over the mapped axis.
    g = hk.transform_with_state(
        lambda xs: hk.vmap(lambda x: (hk.set_state("mean", jax.lax.pmean(x.mean(), "i")), x)[1],
                           axis_name="i", split_rng=False)(xs))
    _, state = g.apply({}, {"~": {"mean": jnp.zeros([])}}, None, XS)
    np.testing.assert_allclose(state["~"]["mean"], XS.mean(), rtol=1e-6)


def test_row3_nested_transform_without_lift_does_not_register_params():
    def build(lib):
        def f(xs):
            inner = lib.transform(net(lib))
            key = lib.next_rng_key()
            return jax.vmap(lambda x: inner.apply(inner.init(key, x), None, x))(xs)
        return lib.transform(f)

    for lib in (hk, haiku):
        f = build(lib)
        params = f.init(KEY, XS)
        assert plain(params) == {}  # inner state is not registered
        # So every apply re-initialises the inner network from the key it is given.
        a = f.apply(params, jax.random.PRNGKey(1), XS)
        b = f.apply(params, jax.random.PRNGKey(2), XS)
        assert not np.allclose(a, b)
    assert_close(build(hk).apply({}, KEY, XS), build(haiku).apply({}, KEY, XS))


def test_row4_nested_transform_with_lift_works():
    def build(lib):
        def f(xs):
            inner = lib.transform(net(lib))
            key = lib.next_rng_key() if lib.running_init() else None
            params = lib.lift(inner.init, name="inner")(key, xs[0])
            return jax.vmap(inner.apply, in_axes=(None, None, 0))(params, None, xs)
        return lib.transform(f)

    params = build(hk).init(KEY, XS)
    assert shapes(params) == {"inner/" + k: v for k, v in MLP_SHAPES.items()}
    inner_params = {k[len("inner/"):]: v for k, v in plain(params).items()}
    assert_close(build(hk).apply(params, None, XS), per_example(inner_params, XS))
    theirs = build(haiku).init(KEY, XS)
    assert shapes(theirs) == shapes(params)
    assert_close(build(hk).apply(plain(theirs), None, XS), build(haiku).apply(theirs, None, XS))


def test_row5_hk_vmap_works():
    def build(lib):
        return lib.transform(lambda xs: lib.vmap(net(lib), split_rng=False)(xs))

    params = build(hk).init(KEY, XS)
    assert shapes(params) == MLP_SHAPES
    assert_close(build(hk).apply(params, None, XS), per_example(plain(params), XS))
    theirs = build(haiku).init(KEY, XS)
    assert_close(plain(params), plain(theirs))
    assert_close(build(hk).apply(plain(theirs), None, XS), build(haiku).apply(theirs, None, XS))


# ------------------------------------------------------------------------------------------------
# The guide's examples.
# ------------------------------------------------------------------------------------------------


def test_jax_eval_shape_of_side_effecting_function_raises():
    def net_fn(x):  # inside of a hk.transform, this is still side-effecting
        w = hk.get_parameter("w", (2, 2), init=jnp.ones)
        return w @ x

    def eval_shape_net(x):
        jax.eval_shape(net_fn, x)  # eval_shape on side-effecting function
        return net_fn(x)

    init, _ = hk.transform(eval_shape_net)
    # The guide's handler catches jax.errors.UnexpectedTracerError: it still catches ours.
    with pytest.raises(jax.errors.UnexpectedTracerError, match=r"(?s)'w'.*jax\.eval_shape"):
        init(jax.random.PRNGKey(666), jnp.ones((2, 2)))


def test_jax_eval_shape_of_mlp_raises():
    def eval_shape_net(x):
        mlp = hk.nets.MLP([300, 100])
        output_shape = jax.eval_shape(mlp, x)
        return output_shape, mlp(x)

    init, _ = hk.transform(eval_shape_net)
    with pytest.raises(jax.errors.UnexpectedTracerError):
        init(jax.random.PRNGKey(666), jnp.ones((2, 2)))


def test_pure_function_under_jax_eval_shape_works():
    def net_fn(w, x):  # no side effects!
        return w @ x

    def eval_shape_net(x):
        w = hk.get_parameter("w", (3, 2), init=jnp.ones)
        output_shape = jax.eval_shape(net_fn, w, x)  # net is now side-effect free
        return output_shape, net_fn(w, x)

    key = jax.random.PRNGKey(777)
    x = jnp.ones((2, 3))
    init, apply = hk.transform(eval_shape_net)
    params = init(key, x)
    shape, out = apply(params, key, x)
    assert shape == jax.ShapeDtypeStruct(shape=(3, 3), dtype=jnp.float32)
    np.testing.assert_array_equal(out, jnp.full((3, 3), 2.0))


def test_hk_eval_shape_example():
    def eval_shape_net(x):
        mlp = hk.nets.MLP([300, 100])  # still side-effecting
        output_shape = hk.eval_shape(mlp, x)  # threads through the Haiku state for you
        out = mlp(x)
        return out, output_shape

    init, apply = hk.transform(eval_shape_net)
    x = jnp.ones((100, 100))
    params = init(jax.random.PRNGKey(777), x)
    assert shapes(params) == {"mlp/~/linear_0": {"b": (300,), "w": (100, 300)},
                              "mlp/~/linear_1": {"b": (100,), "w": (300, 100)}}
    out, output_shape = apply(params, jax.random.PRNGKey(777), x)
    assert output_shape == jax.ShapeDtypeStruct((100, 100), jnp.float32)
    assert out.shape == (100, 100)
    # dm-haiku: the same parameters (names, shapes, values) and outputs.
    theirs = haiku.transform(lambda x: (lambda m: (m(x), haiku.eval_shape(m, x)))(
        haiku.nets.MLP([300, 100])))
    p_h = theirs.init(jax.random.PRNGKey(777), x)
    assert_close(plain(params), plain(p_h))
    out_h, shape_h = theirs.apply(p_h, jax.random.PRNGKey(777), x)
    assert shape_h == output_shape
    assert_close(apply(plain(p_h), None, x)[0], out_h)
