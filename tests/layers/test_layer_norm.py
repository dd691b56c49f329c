"""LayerNorm and InstanceNorm, checked against dm-haiku 0.0.17 as an oracle."""

import inspect
import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from senryu.layers.layer_norm import _channel_index


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def data(shape, seed=0):
    rng = np.random.RandomState(seed)
    return jnp.asarray(rng.randn(*shape) * 3 + 5, jnp.float32)


def check_against_haiku(build, x, key=None, *call_args):
    """Same parameter tree as haiku; with haiku's parameters, the same outputs."""
    th = haiku.transform_with_state(build(haiku))
    ts = hk.transform_with_state(build(hk))
    ph, sh = th.init(key, x, *call_args)
    ps, ss = ts.init(key, x, *call_args)
    assert_close(ps, ph)
    assert ss == sh == {}
    out_h, _ = th.apply(ph, sh, key, x, *call_args)
    out_s, _ = ts.apply(ph, sh, key, x, *call_args)
    assert_close(out_s, out_h)
    return out_s, ps


AXES = [  # (axis, param_axis)
    (-1, None), (-1, -1), (slice(1, None), None), (slice(1, None), slice(1, None)),
    ((0, -1), (0,)), ([1], 1), (-1, []),
]
OPTIONS = [  # (create_scale, create_offset, use_fast_variance)
    (True, True, False), (False, False, True), (True, False, True), (False, True, False),
]
LN_GRID = list(itertools.product([(4, 3), (2, 3, 5)], AXES, OPTIONS))


@pytest.mark.parametrize("shape,axes,options", LN_GRID)
def test_layer_norm_matches_haiku(shape, axes, options):
    axis, param_axis = axes
    create_scale, create_offset, fast = options

    def build(lib):
        return lambda x: lib.LayerNorm(axis, create_scale, create_offset, eps=1e-3,
                                       use_fast_variance=fast, param_axis=param_axis)(x)

    check_against_haiku(build, data(shape))


def test_layer_norm_hand_computation():
    x = data((3, 4, 5))
    f = hk.transform(lambda x: hk.LayerNorm((1, 2), False, False)(x))
    y = f.apply(f.init(None, x), None, x)
    m = x.mean((1, 2), keepdims=True)
    v = ((x - m) ** 2).mean((1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5), rtol=1e-5, atol=1e-5)


def test_layer_norm_initializers_match_haiku():
    def build(lib):
        return lambda x: lib.LayerNorm(-1, True, True, scale_init=lib.initializers.RandomNormal(),
                                       offset_init=lib.initializers.Constant(2.))(x)

    _, params = check_against_haiku(build, data((2, 6)), jax.random.PRNGKey(3))
    np.testing.assert_allclose(params["layer_norm"]["offset"], 2.)


def test_layer_norm_scale_offset_at_call_time():
    scale, offset = jnp.array([2., 3., 4.]), jnp.array([1., 0., -1.])

    def build(lib):
        return lambda x: lib.LayerNorm(-1, False, False)(x, scale=scale, offset=offset)

    out, params = check_against_haiku(build, data((2, 3)))
    assert params == {}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_layer_norm_dtypes_match_haiku(dtype):
    th = haiku.transform(lambda x: haiku.LayerNorm(-1, True, True)(x))
    ts = hk.transform(lambda x: hk.LayerNorm(-1, True, True)(x))
    x = data((2, 4)).astype(dtype)
    ph = th.init(None, x)
    assert spec(ts.init(None, x)) == spec(ph)
    assert_close(ts.apply(ph, None, x), th.apply(ph, None, x), rtol=1e-2, atol=1e-2)


def test_layer_norm_doc_example():
    ln = hk.transform(lambda x: hk.LayerNorm(axis=-1, param_axis=-1, create_scale=True,
                                             create_offset=True)(x))
    x = jnp.ones([8, 4, 4, 3])
    params = ln.init(None, x)
    assert spec(params) == {"layer_norm": {"offset": ((3,), "float32"),
                                           "scale": ((3,), "float32")}}
    np.testing.assert_allclose(ln.apply(params, None, x), 0.)


IN_GRID = list(itertools.product(
    [(2, 3), (2, 3, 4), (2, 3, 4, 5)],
    ["channels_last", "channels_first", "NCHW"],
    [(True, True), (False, False)],
))


@pytest.mark.parametrize("shape,data_format,create", IN_GRID)
def test_instance_norm_matches_haiku(shape, data_format, create):
    def build(lib):
        return lambda x: lib.InstanceNorm(*create, data_format=data_format)(x)

    check_against_haiku(build, data(shape, 1))


def test_instance_norm_hand_computation():
    x = data((2, 3, 4, 5))  # NHWC
    f = hk.transform(lambda x: hk.InstanceNorm(True, True)(x))
    params = f.init(None, x)
    assert spec(params) == {"instance_norm": {"offset": ((5,), "float32"),
                                              "scale": ((5,), "float32")}}
    m = x.mean((1, 2), keepdims=True)
    v = x.var((1, 2), keepdims=True)
    np.testing.assert_allclose(f.apply(params, None, x), (x - m) / np.sqrt(v + 1e-5),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", [
    "channels_last", "channels_first", "N...C", "NC...", "NHWC", "NCHW", "NWC", "NCW", "NC",
    "NCDHW", "NDHWC", "BTHWD", "BTD", "N C", "nhwc", "foo", "NCC", "NHCWC", "BTHWC", "C", "",
])
def test_channel_index_rules_match_haiku(data_format):
    try:
        expected = haiku.get_channel_index(data_format)
    except ValueError:
        with pytest.raises(ValueError, match="Unable to extract channel information"):
            _channel_index(data_format)
    else:
        assert _channel_index(data_format) == expected


def test_errors():
    x = jnp.ones((2, 3))

    def init(f, x=x):
        return hk.transform(f).init(None, x)

    with pytest.raises(ValueError, match=r"Cannot set `scale_init` if `create_scale=False` "
                                         r"\(LayerNorm 'layer_norm'\)"):
        init(lambda x: hk.LayerNorm(-1, False, True, scale_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot set `offset_init` if `create_offset=False`"):
        init(lambda x: hk.LayerNorm(-1, True, False, offset_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot pass `scale` at call time if "
                                         r"`create_scale=True`\. \(LayerNorm 'layer_norm'"):
        init(lambda x: hk.LayerNorm(-1, True, True)(x, scale=jnp.ones(3)))
    with pytest.raises(ValueError, match=r"Cannot pass `offset` at call time if "
                                         r"`create_offset=True`"):
        init(lambda x: hk.LayerNorm(-1, True, True)(x, offset=jnp.ones(3)))
    for bad in ["a", 1.5, [0, "a"], None]:
        with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of "
                                             r"ints\. Got: .* \(in LayerNorm 'layer_norm'\)"):
            init(lambda x: hk.LayerNorm(bad, True, True))
    with pytest.raises(ValueError, match=r"`param_axis` should be an int, slice or iterable"):
        init(lambda x: hk.LayerNorm(-1, True, True, param_axis="b"))
    # dm-haiku silently wraps out-of-range axes modulo the rank; senryu refuses them.
    with pytest.raises(ValueError, match=r"LayerNorm 'layer_norm': axis=5 is out of range for "
                                         r"inputs of shape \(2, 3\) \(rank 2\)"):
        init(lambda x: hk.LayerNorm(5, True, True)(x))
    with pytest.raises(IndexError, match=r"LayerNorm 'layer_norm': param_axis=-3 is out of range"):
        init(lambda x: hk.LayerNorm(-1, True, True, param_axis=-3)(x))
    with pytest.raises(ValueError, match=r"Unable to extract channel information from 'foo' "
                                         r"\(in InstanceNorm\)"):
        init(lambda x: hk.InstanceNorm(True, True, data_format="foo"))
    with pytest.raises(ValueError, match=r"Cannot set `scale_init` if `create_scale=False` "
                                         r"\(InstanceNorm 'instance_norm'\)"):
        init(lambda x: hk.InstanceNorm(False, True, scale_init=jnp.ones))

    f = hk.transform(lambda x: hk.LayerNorm(-1, True, True)(x))
    params = f.init(None, x)
    with pytest.raises(ValueError, match=r"'layer_norm/scale' with retrieved shape \(3,\) does "
                                         r"not match"):
        f.apply(params, None, jnp.ones((2, 4)))


@pytest.mark.parametrize("name", ['LayerNorm', 'InstanceNorm'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
