"""BatchNorm, checked against dm-haiku 0.0.17 as an oracle and against hand computations."""

import inspect
import itertools
import subprocess
import sys
import textwrap

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def both(build):
    return (haiku.transform_with_state(build(haiku)), hk.transform_with_state(build(hk)))


def data(shape, seed):
    rng = np.random.RandomState(seed)
    return jnp.asarray(rng.randn(*shape) * 2 + rng.randn(*shape[-1:]) + 3, jnp.float32)


SHAPES = [(4, 3), (2, 3, 2, 4)]
GRID = list(itertools.product(
    SHAPES,
    [(True, True), (False, False), (True, False)],      # create_scale, create_offset
    ["channels_last", "channels_first"],
    [None, (0,), (0, 1)],                               # axis
)) + [((2, 3, 2, 4), (True, True), "NCHW", None), ((2, 3, 2, 4), (False, True), "NHWC", None)]


@pytest.mark.parametrize("shape,create,data_format,axis", GRID)
def test_matches_haiku_train_then_eval(shape, create, data_format, axis):
    create_scale, create_offset = create

    def build(lib):
        def f(x, is_training, test_local_stats=False):
            bn = lib.BatchNorm(create_scale, create_offset, decay_rate=0.8, axis=axis,
                               data_format=data_format)
            return bn(x, is_training, test_local_stats)
        return f

    th, ts = both(build)
    xs = [data(shape, seed) for seed in range(3)]
    ph, sh = th.init(None, xs[0], True)
    ps, ss = ts.init(None, xs[0], True)
    assert_close(ps, ph)  # names, shapes, dtypes, initial values
    assert_close(ss, sh)
    # A few training steps, feeding each library's state back.
    for x in xs:
        out_h, sh = th.apply(ph, sh, None, x, True)
        out_s, ss = ts.apply(ph, ss, None, x, True)
        assert_close(out_s, out_h)
        assert_close(ss, sh)
    # Evaluation: moving averages are used and never updated.
    for test_local_stats in (False, True):
        out_h, sh_eval = th.apply(ph, sh, None, xs[0], False, test_local_stats)
        out_s, ss_eval = ts.apply(ph, sh, None, xs[0], False, test_local_stats)
        assert_close(out_s, out_h)
        assert_close(ss_eval, sh)
        assert_close(sh_eval, sh)


def test_training_normalises_and_evaluation_uses_averages():
    f = hk.transform_with_state(lambda x, t: hk.BatchNorm(False, False, 0.5)(x, t))
    x = data((8, 3), 0)
    params, state = f.init(None, x, True)
    y, state = f.apply(params, state, None, x, True)
    np.testing.assert_allclose(y.mean(0), 0., atol=1e-5)
    np.testing.assert_allclose(y.var(0), 1., rtol=1e-3)
    mean, var = x.mean(0, keepdims=True), x.var(0, keepdims=True)
    np.testing.assert_allclose(state["batch_norm/~/mean_ema"]["average"], mean, rtol=1e-5)
    np.testing.assert_allclose(state["batch_norm/~/var_ema"]["average"], var, rtol=1e-4)
    y_eval, state_eval = f.apply(params, state, None, x + 1., False)
    np.testing.assert_allclose(y_eval, (x + 1. - mean) / np.sqrt(var + 1e-5), rtol=1e-4,
                               atol=1e-5)
    assert_close(state_eval, state)


def test_evaluation_before_training_is_an_error():
    f = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9)(x, False))
    with pytest.raises(ValueError, match="average"):
        f.init(None, jnp.ones((2, 3)))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.int32])
def test_dtypes_match_haiku(dtype):
    th, ts = both(lambda lib: lambda x: lib.BatchNorm(True, True, 0.9)(x, True))
    x = jnp.asarray(data((4, 3), 1) * 4, dtype)
    ph, sh = th.init(None, x)
    ps, ss = ts.init(None, x)
    assert_close(ps, ph)
    assert_close(ss, sh, rtol=1e-2)
    out_h, nh = th.apply(ph, sh, None, x)
    out_s, ns = ts.apply(ph, sh, None, x)
    assert_close(out_s, out_h, rtol=2e-2, atol=2e-2)
    assert_close(ns, nh, rtol=1e-2)


def test_custom_initializers_match_haiku():
    def build(lib):
        return lambda x: lib.BatchNorm(True, True, 0.9,
                                       scale_init=lib.initializers.RandomUniform(0.5, 1.5),
                                       offset_init=lib.initializers.Constant(0.25))(x, True)

    th, ts = both(build)
    x = data((4, 3), 2)
    key = jax.random.PRNGKey(7)
    ph, _ = th.init(key, x)
    ps, _ = ts.init(key, x)
    assert_close(ps, ph)  # the same key gives the same random scale as Haiku
    np.testing.assert_allclose(ps["batch_norm"]["offset"], 0.25)
    scale = np.asarray(ps["batch_norm"]["scale"])
    assert 0.5 <= scale.min() <= scale.max() <= 1.5


def test_scale_and_offset_given_at_call_time():
    scale, offset = jnp.array([1., 2., 3.]), jnp.array([0., -1., 5.])

    def build(lib):
        return lambda x: lib.BatchNorm(False, False, 0.9)(x, True, scale=scale, offset=offset)

    th, ts = both(build)
    x = data((4, 3), 3)
    ph, sh = th.init(None, x)
    ps, ss = ts.init(None, x)
    assert ps == ph == {}
    out_h, _ = th.apply(ph, sh, None, x)
    out_s, _ = ts.apply(ph, sh, None, x)
    assert_close(out_s, out_h)
    normalised = (x - x.mean(0)) / jnp.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(out_s, normalised * scale + offset, rtol=1e-4, atol=1e-4)


def test_training_loop_with_sgd_matches_haiku():
    def build(lib):
        def f(x):
            x = lib.Linear(4, w_init=lib.initializers.Constant(0.3))(x)
            x = lib.BatchNorm(True, True, 0.7)(x, is_training=True)
            return jnp.sum(jnp.sin(x))
        return f

    th, ts = both(build)
    xs = [data((6, 3), seed) for seed in range(4)]
    ph, sh = th.init(None, xs[0])
    ps, ss = ts.init(None, xs[0])
    assert_close(ps, ph)
    assert_close(ss, sh)

    def step(t, params, state, x):
        grads, state = jax.grad(t.apply, has_aux=True)(params, state, None, x)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
        return params, state

    for x in xs:
        ph, sh = step(th, ph, sh, x)
        ps, ss = step(ts, ps, ss, x)
        assert_close(ps, ph, rtol=1e-4)
        assert_close(ss, sh, rtol=1e-4)


def test_cross_replica_axis_under_vmap():
    replicas, batch, channels = 3, 4, 2
    x = data((replicas, batch, channels), 4)

    def build(lib):
        return lambda x: lib.BatchNorm(True, True, 0.9, cross_replica_axis="i")(x, True)

    th, ts = both(build)
    # Initialise once per replica too (init itself needs the named axis).
    init_h = jax.vmap(lambda x: th.init(None, x), axis_name="i")(x)
    init_s = jax.vmap(lambda x: ts.init(None, x), axis_name="i")(x)
    assert_close(init_s, init_h)
    ph, sh = jax.tree_util.tree_map(lambda a: a[0], init_h)
    apply_h = jax.vmap(lambda x: th.apply(ph, sh, None, x), axis_name="i")
    apply_s = jax.vmap(lambda x: ts.apply(ph, sh, None, x), axis_name="i")
    (out_h, state_h), (out_s, state_s) = apply_h(x), apply_s(x)
    assert_close(out_s, out_h)
    assert_close(state_s, state_h)

    # By hand: the statistics of the whole replicated batch.
    flat = np.asarray(x).reshape(-1, channels)
    mean, var = flat.mean(0), flat.var(0)
    np.testing.assert_allclose(out_s, (np.asarray(x) - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-4, atol=1e-4)
    for r in range(replicas):
        np.testing.assert_allclose(state_s["batch_norm/~/mean_ema"]["average"][r, 0], mean,
                                   rtol=1e-5)
        np.testing.assert_allclose(state_s["batch_norm/~/var_ema"]["average"][r, 0], var,
                                   rtol=1e-4)
    # A sequence of axis names works too.
    ts_list = hk.transform_with_state(
        lambda x: hk.BatchNorm(True, True, 0.9, cross_replica_axis=["i"])(x, True))
    out_list, _ = jax.vmap(lambda x: ts_list.apply(ph, sh, None, x), axis_name="i")(x)
    assert_close(out_list, out_s)
    # Without the cross-replica axis each replica uses its own statistics.
    local = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9)(x, True))
    lp, ls = local.init(None, x[0])
    out_local, _ = jax.vmap(lambda x: local.apply(lp, ls, None, x))(x)
    np.testing.assert_allclose(out_local[1], (x[1] - x[1].mean(0)) / np.sqrt(x[1].var(0) + 1e-5),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_cross_replica_axis_index_groups_under_pmap():
    # vmap has no axis_index_groups; pmap over 4 fake CPU devices needs a fresh process.
    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import jax, jax.numpy as jnp, numpy as np, haiku, senryu as hk
        x = jnp.asarray(np.random.RandomState(0).randn(4, 3, 2), jnp.float32)
        groups = [[0, 1], [2, 3]]
        outs = []
        for lib in (haiku, hk):
            f = lib.transform_with_state(lambda x: lib.BatchNorm(
                False, False, 0.9, cross_replica_axis="i",
                cross_replica_axis_index_groups=groups)(x, True))
            params, state = jax.pmap(lambda x: f.init(None, x), axis_name="i")(x)
            outs.append(jax.pmap(lambda p, s, x: f.apply(p, s, None, x), axis_name="i")(
                params, state, x))
        np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-5, atol=1e-5)
        for a, b in zip(jax.tree_util.tree_leaves(outs[1][1]),
                        jax.tree_util.tree_leaves(outs[0][1])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        group = np.asarray(x[:2]).reshape(-1, 2)
        expected = (np.asarray(x[:2]) - group.mean(0)) / np.sqrt(group.var(0) + 1e-5)
        np.testing.assert_allclose(outs[1][0][:2], expected, rtol=1e-4, atol=1e-4)
        print("OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_negative_axis_is_normalised():
    # dm-haiku 0.0.17 gives `scale`/`offset` the full input shape for negative axes (a bug:
    # the parameters then depend on the batch size); senryu resolves the axis first.
    x = data((2, 3, 4), 5)
    f = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9, axis=[-3, -2])(x, True))
    g = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9, axis=[0, 1])(x, True))
    pf, sf = f.init(None, x)
    pg, sg = g.init(None, x)
    assert spec(pf) == spec(pg) == {"batch_norm": {"offset": ((1, 1, 4), "float32"),
                                                   "scale": ((1, 1, 4), "float32")}}
    assert_close(f.apply(pf, sf, None, x), g.apply(pg, sg, None, x))
    th = haiku.transform_with_state(
        lambda x: haiku.BatchNorm(False, False, 0.9, axis=[-3, -2])(x, True))
    hp, hs = th.init(None, x)
    ts = hk.transform_with_state(
        lambda x: hk.BatchNorm(False, False, 0.9, axis=[-3, -2])(x, True))
    assert_close(ts.apply(hp, hs, None, x), th.apply(hp, hs, None, x))


def test_doc_state_layout():
    f = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9)(x, True))
    params, state = f.init(None, jnp.ones((2, 5, 3)))
    assert spec(params) == {"batch_norm": {"offset": ((1, 1, 3), "float32"),
                                           "scale": ((1, 1, 3), "float32")}}
    assert spec(state) == {
        "batch_norm/~/mean_ema": {"average": ((1, 1, 3), "float32"), "counter": ((), "int32"),
                                  "hidden": ((1, 1, 3), "float32")},
        "batch_norm/~/var_ema": {"average": ((1, 1, 3), "float32"), "counter": ((), "int32"),
                                 "hidden": ((1, 1, 3), "float32")}}


def test_errors():
    x = jnp.ones((2, 3))

    def init(f, x=x):
        return hk.transform_with_state(f).init(None, x)

    with pytest.raises(ValueError, match=r"Cannot set `scale_init` if `create_scale=False` "
                                         r"\(BatchNorm 'batch_norm'\)"):
        init(lambda x: hk.BatchNorm(False, True, 0.9, scale_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot set `offset_init` if `create_offset=False`"):
        init(lambda x: hk.BatchNorm(True, False, 0.9, offset_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot pass `scale` at call time if "
                                         r"`create_scale=True`\. \(BatchNorm 'batch_norm'"):
        init(lambda x: hk.BatchNorm(True, True, 0.9)(x, True, scale=jnp.ones(3)))
    with pytest.raises(ValueError, match=r"Cannot pass `offset` at call time if "
                                         r"`create_offset=True`"):
        init(lambda x: hk.BatchNorm(True, True, 0.9)(x, True, offset=jnp.ones(3)))
    with pytest.raises(ValueError, match=r"Unable to extract channel information from 'nhwc' "
                                         r"\(in BatchNorm\)"):
        init(lambda x: hk.BatchNorm(True, True, 0.9, data_format="nhwc"))
    with pytest.raises(ValueError, match=r"`cross_replica_axis` name must be specified if "
                                         r"`cross_replica_axis_index_groups` are used"):
        init(lambda x: hk.BatchNorm(True, True, 0.9, cross_replica_axis_index_groups=[[0]]))
    # Out-of-range axes: an AxisError, which is both a ValueError and an IndexError.
    with pytest.raises(ValueError, match=r"BatchNorm 'batch_norm': axis=5 is out of range for "
                                         r"inputs of shape \(2, 3\)"):
        init(lambda x: hk.BatchNorm(True, True, 0.9, axis=[5])(x, True))
    with pytest.raises(IndexError, match=r"axis=-3 is out of range"):
        init(lambda x: hk.BatchNorm(True, True, 0.9, axis=[-3])(x, True))
    with pytest.raises(ValueError, match=r"BatchNorm 'batch_norm': `decay_rate` must be between "
                                         r"0 and 1, got 1.5"):
        init(lambda x: hk.BatchNorm(True, True, 1.5))
    with pytest.raises(ValueError, match=r"BatchNorm: `axis` should be None or a sequence of "
                                         r"ints"):
        init(lambda x: hk.BatchNorm(True, True, 0.9, axis=["a"]))
    with pytest.raises(ValueError, match=r"BatchNorm 'batch_norm': inputs must have at least "
                                         r"one dimension"):
        init(lambda x: hk.BatchNorm(True, True, 0.9)(x, True), x=jnp.ones(()))


def test_channel_count_changing_after_init_is_an_error():
    f = hk.transform_with_state(lambda x, t: hk.BatchNorm(True, True, 0.9)(x, t))
    params, state = f.init(None, jnp.ones((2, 3)), True)
    with pytest.raises(ValueError, match=r"'batch_norm/~/mean_ema': value has shape \(1, 4\) but "
                                         r"the moving average holds shape \(1, 3\)"):
        f.apply(params, state, None, jnp.ones((2, 4)), True)
    with pytest.raises(ValueError, match=r"BatchNorm 'batch_norm': the moving averages have shape "
                                         r"\(1, 3\) but inputs of shape \(2, 4\)"):
        f.apply(params, state, None, jnp.ones((2, 4)), False)


def test_module_outside_transform():
    with pytest.raises(ValueError, match="transform"):
        hk.BatchNorm(True, True, 0.9)


@pytest.mark.parametrize("name", ['BatchNorm'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
