"""RMSNorm, checked against dm-haiku 0.0.17 as an oracle and against a hand computation."""

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
    return jnp.asarray(rng.randn(*shape) * 3 + 1, jnp.float32)


def check_against_haiku(build, x, key=None):
    th = haiku.transform_with_state(build(haiku))
    ts = hk.transform_with_state(build(hk))
    ph, sh = th.init(key, x)
    ps, ss = ts.init(key, x)
    assert_close(ps, ph)
    assert ss == sh == {}
    out_h, _ = th.apply(ph, sh, key, x)
    out_s, _ = ts.apply(ph, sh, key, x)
    assert_close(out_s, out_h)
    return out_s, ps


GRID = list(itertools.product(
    [(4, 3), (2, 3, 5)],
    [(-1, None), (slice(1, None), None), ((0, 1), (0, 1)), (1, 1), (-1, [])],  # axis, param_axis
    [True, False],                                                            # create_scale
    [1e-5, 1e-2],                                                             # eps
))


@pytest.mark.parametrize("shape,axes,create_scale,eps", GRID)
def test_matches_haiku(shape, axes, create_scale, eps):
    axis, param_axis = axes

    def build(lib):
        return lambda x: lib.RMSNorm(axis, eps=eps, create_scale=create_scale,
                                     param_axis=param_axis)(x)

    check_against_haiku(build, data(shape))


def test_hand_computation():
    x = data((3, 4, 5))
    f = hk.transform(lambda x: hk.RMSNorm(axis=(1, 2), scale_init=hk.initializers.Constant(2.))(x))
    params = f.init(None, x)
    assert spec(params) == {"rms_norm": {"scale": ((5,), "float32")}}
    ms = (np.asarray(x) ** 2).mean((1, 2), keepdims=True)
    np.testing.assert_allclose(f.apply(params, None, x), 2. * x / np.sqrt(ms + 1e-5), rtol=1e-5)


def test_initializer_matches_haiku():
    def build(lib):
        return lambda x: lib.RMSNorm(-1, scale_init=lib.initializers.RandomNormal(0.5, 1.))(x)

    check_against_haiku(build, data((2, 6)), jax.random.PRNGKey(2))


def test_bfloat16_matches_haiku():
    th = haiku.transform(lambda x: haiku.RMSNorm(-1)(x))
    ts = hk.transform(lambda x: hk.RMSNorm(-1)(x))
    x = data((2, 4)).astype(jnp.bfloat16)
    ph = th.init(None, x)
    assert spec(ts.init(None, x)) == spec(ph)
    assert_close(ts.apply(ph, None, x), th.apply(ph, None, x), rtol=1e-2, atol=1e-2)


def test_errors():
    x = jnp.ones((2, 3))

    def init(f, x=x):
        return hk.transform(f).init(None, x)

    with pytest.raises(ValueError, match=r"Cannot set `scale_init` if `create_scale=False` "
                                         r"\(RMSNorm 'rms_norm'\)"):
        init(lambda x: hk.RMSNorm(-1, create_scale=False, scale_init=jnp.ones))
    with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of ints\. "
                                         r"Got: a \(in RMSNorm 'rms_norm'\)"):
        init(lambda x: hk.RMSNorm("a"))
    with pytest.raises(ValueError, match=r"`param_axis` should be an int, slice or iterable"):
        init(lambda x: hk.RMSNorm(-1, param_axis=2.5))
    with pytest.raises(ValueError, match=r"RMSNorm 'rms_norm': axis=2 is out of range for "
                                         r"inputs of shape \(2, 3\)"):
        init(lambda x: hk.RMSNorm(2)(x))
    with pytest.raises(IndexError, match=r"RMSNorm 'rms_norm': param_axis=-5 is out of range"):
        init(lambda x: hk.RMSNorm(-1, param_axis=-5)(x))

    f = hk.transform(lambda x: hk.RMSNorm(-1)(x))
    params = f.init(None, x)
    with pytest.raises(ValueError, match=r"'rms_norm/scale' with retrieved shape \(3,\) does not "
                                         r"match"):
        f.apply(params, None, jnp.ones((2, 4)))


@pytest.mark.parametrize("name", ['RMSNorm'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
