"""ExponentialMovingAverage and EMAParamsTree, checked against dm-haiku 0.0.17 as an oracle."""

import inspect
import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def both(build):
    return (haiku.transform_with_state(build(haiku)), hk.transform_with_state(build(hk)))


def values(shape, n, seed=0):
    rng = np.random.RandomState(seed)
    return [jnp.asarray(rng.randn(*shape) * 3 + 1, jnp.float32) for _ in range(n)]


# ----------------------------------------------------------------------------- EMA


EMA_GRID = [
    (decay, zero_debias, warmup, shape, update_stats)
    for decay, zero_debias, warmup, shape, update_stats in itertools.product(
        [0.5, 0.9], [True, False], [0, 2], [(), (3,), (2, 3)], [True, False])
    if not (warmup and zero_debias)
]


@pytest.mark.parametrize("decay,zero_debias,warmup,shape,update_stats", EMA_GRID)
def test_ema_trajectory_matches_haiku(decay, zero_debias, warmup, shape, update_stats):
    def build(lib):
        return lambda v: lib.ExponentialMovingAverage(
            decay, zero_debias=zero_debias, warmup_length=warmup)(v, update_stats=update_stats)

    th, ts = both(build)
    xs = values(shape, 5)
    ph, sh = th.init(None, xs[0])
    ps, ss = ts.init(None, xs[0])
    assert ps == ph == {}
    assert_close(ss, sh)  # names, shapes, dtypes and the initial values
    for x in xs:
        out_h, sh_next = th.apply(ph, sh, None, x)
        out_s, ss_next = ts.apply(ph, sh, None, x)  # same state in
        assert_close(out_s, out_h)
        assert_close(ss_next, sh_next)
        if not update_stats:
            assert_close(ss_next, sh)  # documented: no state change
        sh = sh_next


def test_ema_matches_hand_computation():
    decay = 0.8
    f = hk.transform_with_state(lambda v: hk.ExponentialMovingAverage(decay)(v))
    xs = values((4,), 6, seed=3)
    _, state = f.init(None, xs[0])
    hidden = np.zeros(4)
    for t, x in enumerate(xs, start=1):
        out, state = f.apply({}, state, None, x)
        hidden = decay * hidden + (1 - decay) * np.asarray(x)
        np.testing.assert_allclose(out, hidden / (1 - decay ** t), rtol=1e-5, atol=1e-6)
        assert int(state["exponential_moving_average"]["counter"]) == t


def test_ema_warmup_follows_input_then_averages():
    f = hk.transform_with_state(
        lambda v: hk.ExponentialMovingAverage(0.5, zero_debias=False, warmup_length=2)(v))
    _, state = f.init(None, jnp.array(4.))
    outs = []
    for v in [2., 6., 10., 1.]:
        out, state = f.apply({}, state, None, jnp.array(v))
        outs.append(float(out))
    assert outs == [2., 6., 8., 4.5]


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bfloat16, jnp.float16])
def test_ema_dtypes_match_haiku(dtype):
    th, ts = both(lambda lib: lambda v: lib.ExponentialMovingAverage(0.5)(v))
    x0 = jnp.array([3, 4], dtype)
    x1 = jnp.array([5, 6], dtype)
    ph, sh = th.init(None, x0)
    _, ss = ts.init(None, x0)
    assert spec(ss) == spec(sh)
    out_h, nh = th.apply(ph, sh, None, x1)
    out_s, ns = ts.apply(ph, sh, None, x1)
    assert_close(out_s, out_h, rtol=1e-2)
    assert_close(ns, nh, rtol=1e-2)


def test_ema_initialize_and_average():
    def build(lib):
        def f(v):
            ema = lib.ExponentialMovingAverage(0.5)
            ema.initialize([3], jnp.int32)
            before = ema.average
            return before, ema(v), ema.average
        return f

    th, ts = both(build)
    x = jnp.arange(3)
    ph, sh = th.init(None, x)
    _, ss = ts.init(None, x)
    assert_close(ss, sh)
    assert spec(ss) == {"exponential_moving_average": {
        "average": ((3,), "int32"), "counter": ((), "int32"), "hidden": ((3,), "int32")}}
    assert_close(ts.apply({}, sh, None, x), th.apply({}, sh, None, x))


def test_ema_initialize_does_not_overwrite():
    def f(v):
        ema = hk.ExponentialMovingAverage(0.5)
        ema(v)
        ema.initialize([2])
        return ema.average

    f = hk.transform_with_state(f)
    params, state = f.init(None, jnp.array([1., 2.]))
    average, _ = f.apply(params, state, None, jnp.array([3., 5.]))
    np.testing.assert_allclose(average, [3., 5.])


def test_ema_average_before_any_update_is_an_error():
    f = hk.transform_with_state(lambda: hk.ExponentialMovingAverage(0.5).average)
    with pytest.raises(ValueError, match="average"):
        f.init(None)


def test_ema_errors():
    def init(**kwargs):
        return hk.transform_with_state(
            lambda v: hk.ExponentialMovingAverage(**kwargs)(v)).init(None, jnp.ones(2))

    with pytest.raises(ValueError, match=r"`warmup_length` is -1, but should be non-negative"):
        init(decay=0.5, zero_debias=False, warmup_length=-1)
    with pytest.raises(ValueError, match="Set zero_debias=False if setting warmup_length"):
        init(decay=0.5, warmup_length=3)
    with pytest.raises(ValueError, match=r"ExponentialMovingAverage: `decay` must be between 0 "
                                         r"and 1, got 1.5"):
        init(decay=1.5)
    with pytest.raises(ValueError, match=r"ExponentialMovingAverage: `decay` must be between"):
        init(decay=-0.1)
    with pytest.raises(ValueError, match=r"EMAParamsTree: `decay` must be between 0 and 1"):
        hk.transform_with_state(lambda p: hk.EMAParamsTree(2.)(p)).init(None, {})

    f = hk.transform_with_state(lambda v: hk.ExponentialMovingAverage(0.5)(v))
    _, state = f.init(None, jnp.ones(3))
    with pytest.raises(ValueError, match=r"ExponentialMovingAverage 'exponential_moving_average'"
                                         r": value has shape \(4,\) but the moving average "
                                         r"holds shape \(3,\)"):
        f.apply({}, state, None, jnp.ones(4))


def test_ema_traced_decay_is_accepted():
    f = hk.transform_with_state(lambda v, d: hk.ExponentialMovingAverage(d)(v))
    _, state = f.init(None, jnp.ones(2), jnp.float32(0.5))
    out, _ = jax.jit(f.apply)({}, state, None, jnp.full(2, 3.), jnp.float32(0.5))
    np.testing.assert_allclose(out, [3., 3.])


def test_ema_under_jit_matches_eager():
    f = hk.transform_with_state(lambda v: hk.ExponentialMovingAverage(0.7)(v))
    xs = values((2,), 4)
    _, s_eager = f.init(None, xs[0])
    s_jit = s_eager
    apply_jit = jax.jit(f.apply)
    for x in xs:
        o1, s_eager = f.apply({}, s_eager, None, x)
        o2, s_jit = apply_jit({}, s_jit, None, x)
        assert_close(o2, o1)
        assert_close(s_jit, s_eager)


# ----------------------------------------------------------------------------- EMAParamsTree


def mlp_params():
    net = haiku.transform(lambda x: haiku.nets.MLP([3, 2])(x))
    return net.init(jax.random.PRNGKey(0), jnp.ones((1, 4)))


@pytest.mark.parametrize("zero_debias,warmup,ignore_regex,update_stats", [
    (True, 0, "", True),
    (False, 0, "", True),
    (False, 2, ".*b$", True),
    (True, 0, "mlp/~/linear_1", True),
    (True, 0, "mlp", True),
    (True, 0, ".*/b", False),
    (True, 0, "b", True),  # re.match at the start: matches nothing here
])
def test_ema_params_tree_matches_haiku(zero_debias, warmup, ignore_regex, update_stats):
    def build(lib):
        return lambda p: lib.EMAParamsTree(0.6, zero_debias=zero_debias, warmup_length=warmup,
                                          ignore_regex=ignore_regex)(p, update_stats=update_stats)

    th, ts = both(build)
    params = mlp_params()
    ph, sh = th.init(None, params)
    _, ss = ts.init(None, params)
    assert sorted(ss) == sorted(sh)
    assert_close(ss, sh)
    for step in range(3):
        params = jax.tree_util.tree_map(lambda p: p * 1.5 + 0.1 * step, params)
        out_h, nh = th.apply({}, sh, None, params)
        out_s, ns = ts.apply({}, sh, None, params)
        assert_close(out_s, out_h)
        assert_close(ns, nh)
        sh = nh


def test_ema_params_tree_module_names_escape_tilde_and_slash():
    tree = {"~": {"w": jnp.ones(2)}, "a/b": {"c/d": jnp.ones(2)}, "x~y": {"~z": jnp.ones(2)},
            "s": {"t": 3.0}}
    th, ts = both(lambda lib: lambda p: lib.EMAParamsTree(0.5)(p))
    _, sh = th.init(None, tree)
    _, ss = ts.init(None, tree)
    assert sorted(ss) == sorted(sh) == [
        "ema_params_tree/_tilde___w", "ema_params_tree/a__b__c__d", "ema_params_tree/s__t",
        "ema_params_tree/x_tilde_y___tilde_z"]
    assert_close(ss, sh)


def test_ema_params_tree_doc_example():
    network_fn = lambda x: hk.Linear(10)(x)  # noqa: E731
    x = jnp.ones([1, 1])
    params = hk.transform(network_fn).init(jax.random.PRNGKey(428), x)
    ema_fn = hk.transform_with_state(lambda x: hk.EMAParamsTree(0.2)(x))
    _, ema_state = ema_fn.init(None, params)
    ema_params, ema_state = ema_fn.apply(None, ema_state, None, params)
    assert jax.tree_util.tree_structure(ema_params) == jax.tree_util.tree_structure(params)
    assert_close(ema_params, params)  # one zero-debiased step gives the value back
    assert hk.transform(network_fn).apply(ema_params, None, x).shape == (1, 10)


def test_ema_params_tree_bad_trees():
    f = hk.transform_with_state(lambda p: hk.EMAParamsTree(0.5)(p))
    with pytest.raises(TypeError, match=r"EMAParamsTree 'ema_params_tree': expected a parameter "
                                        r"tree .* got list"):
        f.init(None, [jnp.ones(2)])
    with pytest.raises(TypeError, match=r"tree\['a'\] is of type ArrayImpl, not a mapping"):
        f.init(None, {"a": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"tree\['a'\]\['b'\] is a mapping, not an array"):
        f.init(None, {"a": {"b": {"c": jnp.ones(2)}}})
    # Names that cannot become module names are refused, as in Haiku.
    with pytest.raises(ValueError, match=r"'a_b__c d' is not a valid module name"):
        f.init(None, {"a_b": {"c d": jnp.ones(2)}})


def test_ema_params_tree_two_instances_get_distinct_state():
    th, ts = both(lambda lib: lambda p: (lib.EMAParamsTree(0.5)(p), lib.EMAParamsTree(0.5)(p)))
    params = mlp_params()
    _, sh = th.init(None, params)
    _, ss = ts.init(None, params)
    assert sorted(ss) == sorted(sh)


@pytest.mark.parametrize("name", ['ExponentialMovingAverage', 'EMAParamsTree'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
