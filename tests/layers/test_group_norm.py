"""GroupNorm, checked against dm-haiku 0.0.17 as an oracle and against a hand computation."""

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


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def data(shape, seed=0):
    rng = np.random.RandomState(seed)
    return jnp.asarray(rng.randn(*shape) * 3 + 5, jnp.float32)


def check_against_haiku(build, x, *call_args, key=None):
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


GRID = [
    (shape, data_format, groups, axis, create)
    for shape, data_format, groups, axis, create in itertools.product(
        [(2, 6), (2, 6, 2, 6)],
        ["channels_last", "channels_first"],
        [2, 3],
        [slice(1, None), -1, [1], slice(2, None)],
        [(True, True)],
    )
    if (shape[-1] if data_format == "channels_last" else shape[1]) % groups == 0
    and not (axis == slice(2, None) and len(shape) == 2)
    # dm-haiku 0.0.17 mis-maps negative axes for channels_first (see test_negative_axes).
    and not (axis == -1 and data_format == "channels_first")
] + [((2, 3, 6), "channels_last", 1, slice(1, None), (False, True)),
     ((2, 3, 6), "channels_last", 6, slice(1, None), (True, False)),
     ((2, 6, 3), "channels_first", 2, [2], (False, False))]


@pytest.mark.parametrize("shape,data_format,groups,axis,create", GRID)
def test_matches_haiku(shape, data_format, groups, axis, create):
    def build(lib):
        return lambda x: lib.GroupNorm(groups, axis=axis, create_scale=create[0],
                                       create_offset=create[1], data_format=data_format)(x)

    check_against_haiku(build, data(shape))


@pytest.mark.parametrize("shape,data_format,negative,positive", [
    ((2, 6), "channels_first", -1, 1),
    ((2, 6, 2, 3), "channels_first", (-1, -2), (3, 2)),
    ((2, 3, 6), "channels_last", -2, 1),
    ((2, 3, 4, 6), "channels_last", (-3, -2), (1, 2)),
])
def test_negative_axes(shape, data_format, negative, positive):
    # senryu resolves negative axes against the input's rank before splitting the channels, so
    # they mean what the same positive axes mean. dm-haiku 0.0.17 applies them to the split
    # (rank + 1) array instead, so there e.g. axis=-2 (channels_last) reduces over the groups
    # axis, and axis=-1 (channels_first) over the batch axis.
    x = data(shape, 2)

    def run(axis):
        f = hk.transform(lambda x: hk.GroupNorm(2, axis=axis, data_format=data_format)(x))
        return f.apply(f.init(None, x), None, x)

    assert_close(run(negative), run(positive))


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
def test_string_data_formats(data_format):
    def build(lib):
        return lambda x: lib.GroupNorm(3, data_format=data_format, eps=1e-3)(x)

    check_against_haiku(build, data((2, 6, 2, 6)))


def test_hand_computation_channels_last():
    x = data((2, 3, 4, 6))
    f = hk.transform(lambda x: hk.GroupNorm(2)(x))
    params = f.init(None, x)
    assert spec(params) == {"group_norm": {"offset": ((6,), "float32"),
                                           "scale": ((6,), "float32")}}
    y = np.asarray(f.apply(params, None, x))
    xn = np.asarray(x)
    for n, g in itertools.product(range(2), range(2)):
        block = xn[n, :, :, 3 * g:3 * g + 3]
        expected = (block - block.mean()) / np.sqrt(block.var() + 1e-5)
        np.testing.assert_allclose(y[n, :, :, 3 * g:3 * g + 3], expected, rtol=1e-4, atol=1e-4)


def test_hand_computation_channels_first_params():
    x = data((2, 6, 2, 3))
    f = hk.transform(lambda x: hk.GroupNorm(3, data_format="channels_first",
                                            scale_init=hk.initializers.Constant(2.),
                                            offset_init=hk.initializers.Constant(1.))(x))
    params = f.init(None, x)
    assert spec(params) == {"group_norm": {"offset": ((6, 1, 1), "float32"),
                                           "scale": ((6, 1, 1), "float32")}}
    y = np.asarray(f.apply(params, None, x))
    block = np.asarray(x)[1, 2:4]
    expected = 2. * (block - block.mean()) / np.sqrt(block.var() + 1e-5) + 1.
    np.testing.assert_allclose(y[1, 2:4], expected, rtol=1e-4, atol=1e-4)


def test_scale_offset_at_call_time():
    scale, offset = jnp.arange(1., 7.), jnp.full((6,), 0.5)

    def build(lib):
        return lambda x: lib.GroupNorm(2, create_scale=False, create_offset=False)(
            x, scale=scale, offset=offset)

    _, params = check_against_haiku(build, data((2, 6)))
    assert params == {}


def test_initializers_match_haiku():
    def build(lib):
        return lambda x: lib.GroupNorm(2, scale_init=lib.initializers.RandomUniform())(x)

    check_against_haiku(build, data((2, 4)), key=jax.random.PRNGKey(5))


def test_bfloat16_matches_haiku():
    def build(lib):
        return lambda x: lib.GroupNorm(2)(x)

    th = haiku.transform(build(haiku))
    ts = hk.transform(build(hk))
    x = data((2, 4)).astype(jnp.bfloat16)
    ph = th.init(None, x)
    assert spec(ts.init(None, x)) == spec(ph)
    assert_close(ts.apply(ph, None, x), th.apply(ph, None, x), rtol=2e-2, atol=2e-2)


def test_errors():
    x = jnp.ones((2, 6))

    def init(f, x=x):
        return hk.transform(f).init(None, x)

    with pytest.raises(ValueError, match=r"The number of channels must be divisible by the "
                                         r"number of groups, was channels=6, groups=4 "
                                         r"\(GroupNorm 'group_norm', inputs of shape \(2, 6\)\)"):
        init(lambda x: hk.GroupNorm(4)(x))
    with pytest.raises(ValueError, match=r"channels=3, groups=2"):
        init(lambda x: hk.GroupNorm(2, data_format="channels_first")(x), x=jnp.ones((2, 3, 4)))
    for bad in [0, -2, 1.5, True]:
        with pytest.raises(ValueError, match=r"GroupNorm 'group_norm': `groups` must be a "
                                             r"positive integer, got"):
            init(lambda x: hk.GroupNorm(bad))
    with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of ints\. "
                                         r"Got: a \(in GroupNorm 'group_norm'\)"):
        init(lambda x: hk.GroupNorm(2, axis="a"))
    with pytest.raises(ValueError, match=r"GroupNorm 'group_norm': axis=5 is out of range for "
                                         r"inputs of shape \(2, 6\)"):
        init(lambda x: hk.GroupNorm(2, axis=5)(x))
    with pytest.raises(ValueError, match=r"Cannot set `scale_init` if `create_scale=False` "
                                         r"\(GroupNorm 'group_norm'\)"):
        init(lambda x: hk.GroupNorm(2, create_scale=False, scale_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot set `offset_init` if `create_offset=False`"):
        init(lambda x: hk.GroupNorm(2, create_offset=False, offset_init=jnp.ones))
    with pytest.raises(ValueError, match=r"Cannot pass `scale` at call time if "
                                         r"`create_scale=True`\. \(GroupNorm 'group_norm'"):
        init(lambda x: hk.GroupNorm(2)(x, scale=jnp.ones(6)))
    with pytest.raises(ValueError, match=r"Cannot pass `offset` at call time if "
                                         r"`create_offset=True`"):
        init(lambda x: hk.GroupNorm(2)(x, offset=jnp.ones(6)))
    with pytest.raises(ValueError, match=r"Unable to extract channel information from 'xyz' "
                                         r"\(in GroupNorm\)"):
        init(lambda x: hk.GroupNorm(2, data_format="xyz"))
    with pytest.raises(ValueError, match=r"GroupNorm 'group_norm': data_format 'channels_first' "
                                         r"puts the channels on axis 1 but the inputs have shape "
                                         r"\(6,\)"):
        init(lambda x: hk.GroupNorm(2, data_format="channels_first")(x), x=jnp.ones(6))

    f = hk.transform(lambda x: hk.GroupNorm(2)(x))
    params = f.init(None, x)
    with pytest.raises(ValueError, match=r"'group_norm/scale' with retrieved shape \(6,\) does "
                                         r"not match"):
        f.apply(params, None, jnp.ones((2, 4)))


@pytest.mark.parametrize("name", ['GroupNorm'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
