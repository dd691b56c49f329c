"""SpectralNorm and SNParamsTree, checked against dm-haiku 0.0.17 and against numpy's SVD."""

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


def data(shape, seed=0, scale=1.):
    rng = np.random.RandomState(seed)
    return jnp.asarray(rng.randn(*shape) * scale, jnp.float32)


GRID = list(itertools.product(
    [(3, 4), (4, 2), (2, 3, 4)],
    [(1e-4, 1), (1e-2, 3)],          # eps, n_steps
    [True, False],                   # update_stats
))


@pytest.mark.parametrize("shape,options,update_stats", GRID)
def test_matches_haiku(shape, options, update_stats):
    eps, n_steps = options

    def build(lib):
        return lambda w: lib.SpectralNorm(eps=eps, n_steps=n_steps)(w, update_stats=update_stats)

    th, ts = both(build)
    key = jax.random.PRNGKey(1)
    w = data(shape)
    ph, sh = th.init(key, w)
    ps, ss = ts.init(key, w)
    assert ps == ph == {}
    assert spec(ss) == spec(sh)
    # The same key gives the same random start vector as Haiku.
    assert_close(ss, sh)
    for step in range(3):
        w = data(shape, seed=step + 1)
        out_h, nh = th.apply(ph, sh, None, w)
        out_s, ns = ts.apply(ph, sh, None, w)
        assert_close(out_s, out_h)
        assert_close(ns, nh)
        if not update_stats:
            assert_close(ns, sh)
        sh = nh


def test_small_matrix_where_eps_matters():
    def build(lib):
        return lambda w: lib.SpectralNorm(eps=1e-2, n_steps=2)(w)

    th, ts = both(build)
    w = data((5, 3), scale=1e-3)
    ph, sh = th.init(jax.random.PRNGKey(0), w)
    out_h, nh = th.apply(ph, sh, None, w)
    out_s, ns = ts.apply(ph, sh, None, w)
    assert_close(out_s, out_h)
    assert_close(ns, nh)


def test_converges_to_the_largest_singular_value():
    w = data((6, 4), seed=3)
    f = hk.transform_with_state(lambda w: hk.SpectralNorm(n_steps=5)(w))
    params, state = f.init(jax.random.PRNGKey(0), w)
    for _ in range(20):
        w_sn, state = f.apply(params, state, None, w)
    sigma = np.linalg.svd(np.asarray(w), compute_uv=False)[0]
    np.testing.assert_allclose(state["spectral_norm"]["sigma"], sigma, rtol=1e-4)
    np.testing.assert_allclose(w_sn, np.asarray(w) / sigma, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(w_sn), compute_uv=False)[0], 1.,
                               rtol=1e-4)


def test_gradient_matches_haiku():
    def build(lib):
        return lambda w: jnp.sum(jnp.sin(lib.SpectralNorm()(w)))

    th, ts = both(build)
    w = data((3, 4), 4)
    ph, sh = th.init(jax.random.PRNGKey(0), w)
    grad_h = jax.grad(lambda w: th.apply(ph, sh, None, w)[0])(w)
    grad_s = jax.grad(lambda w: ts.apply(ph, sh, None, w)[0])(w)
    assert_close(grad_s, grad_h)


def test_properties_and_update_stats_false():
    def build(lib):
        def f(w):
            sn = lib.SpectralNorm()
            out = sn(w, update_stats=False)
            return out, sn.u0, sn.sigma
        return f

    th, ts = both(build)
    w = data((3, 4), 5)
    key = jax.random.PRNGKey(2)
    ph, sh = th.init(key, w)
    ps, ss = ts.init(key, w)
    assert_close(ss, sh)
    assert float(ss["spectral_norm"]["sigma"]) == 1.  # the property's default
    assert_close(ts.apply(ph, sh, None, w), th.apply(ph, sh, None, w))

    f = hk.transform_with_state(lambda w: hk.SpectralNorm()(w, update_stats=False))
    _, state = f.init(key, w)
    assert spec(state) == {"spectral_norm": {"u0": ((1, 4), "float32")}}


def test_bfloat16_state_dtypes_match_haiku():
    th, ts = both(lambda lib: lambda w: lib.SpectralNorm()(w))
    w = data((3, 4)).astype(jnp.bfloat16)
    key = jax.random.PRNGKey(0)
    ph, sh = th.init(key, w)
    _, ss = ts.init(key, w)
    assert spec(ss) == spec(sh)
    out_h, nh = th.apply(ph, sh, None, w)
    out_s, ns = ts.apply(ph, sh, None, w)
    assert_close(out_s, out_h, rtol=2e-2, atol=2e-2)
    assert_close(ns, nh, rtol=2e-2, atol=2e-2)


def test_errors():
    key = jax.random.PRNGKey(0)

    def init(f, x):
        return hk.transform_with_state(f).init(key, x)

    for x in [jnp.ones(()), jnp.ones(3)]:
        with pytest.raises(ValueError, match=r"Spectral normalization is not well defined for "
                                             r"scalar or vector inputs \(SpectralNorm "
                                             r"'spectral_norm' got shape"):
            init(lambda w: hk.SpectralNorm()(w), x)
    with pytest.raises(ValueError, match=r"Input is 3D but error_on_non_matrix is True "
                                         r"\(SpectralNorm 'spectral_norm', shape \(2, 3, 4\)\)"):
        init(lambda w: hk.SpectralNorm()(w, error_on_non_matrix=True), jnp.ones((2, 3, 4)))
    for bad in [0, -1, 1.5]:
        with pytest.raises(ValueError, match=r"SpectralNorm 'spectral_norm': `n_steps` must be "
                                             r"a positive integer"):
            init(lambda w: hk.SpectralNorm(n_steps=bad), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match=r"SNParamsTree 'sn_params_tree': `n_steps` must be"):
        init(lambda w: hk.SNParamsTree(n_steps=0), jnp.ones((2, 2)))

    f = hk.transform_with_state(lambda w: hk.SpectralNorm()(w))
    params, state = f.init(key, jnp.ones((3, 4)))
    with pytest.raises(ValueError, match=r"SpectralNorm 'spectral_norm': the power-iteration "
                                         r"state u0 has shape \(1, 4\) but inputs of shape "
                                         r"\(3, 5\) need \(1, 5\)"):
        f.apply(params, state, None, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="PRNG|rng|RNG"):
        f.init(None, jnp.ones((3, 4)))


# ----------------------------------------------------------------------------- SNParamsTree


def mlp_params():
    net = haiku.transform(lambda x: haiku.nets.MLP([3, 2])(x))
    return net.init(jax.random.PRNGKey(0), jnp.ones((1, 4)))


@pytest.mark.parametrize("ignore_regex,update_stats", [(".*b$", True), (".*/b", False)])
def test_sn_params_tree_matches_haiku(ignore_regex, update_stats):
    def build(lib):
        return lambda p: lib.SNParamsTree(ignore_regex=ignore_regex)(p, update_stats=update_stats)

    th, ts = both(build)
    params = mlp_params()
    key = jax.random.PRNGKey(3)
    ph, sh = th.init(key, params)
    _, ss = ts.init(key, params)
    assert sorted(ss) == sorted(sh) == ["sn_params_tree/mlp___tilde__linear_0__w",
                                        "sn_params_tree/mlp___tilde__linear_1__w"]
    assert_close(ss, sh)
    for step in range(2):
        params = jax.tree_util.tree_map(lambda p: p * 1.3 + 0.05 * step, params)
        out_h, nh = th.apply({}, sh, None, params)
        out_s, ns = ts.apply({}, sh, None, params)
        assert_close(out_s, out_h)
        assert_close(ns, nh)
        for name in ("mlp/~/linear_0", "mlp/~/linear_1"):
            np.testing.assert_array_equal(out_s[name]["b"], params[name]["b"])  # ignored
        sh = nh


def test_sn_params_tree_order_and_names_match_haiku():
    # Random start vectors are drawn in the tree's order (not sorted order), as in Haiku.
    tree = {"zeta": {"w": jnp.ones((3, 2))}, "~": {"w": jnp.ones((2, 3))},
            "x~y": {"~z": jnp.ones((4, 2))}, "a/b": {"c": jnp.ones((2, 2, 2))}}
    th, ts = both(lambda lib: lambda p: lib.SNParamsTree()(p))
    key = jax.random.PRNGKey(9)
    _, sh = th.init(key, tree)
    _, ss = ts.init(key, tree)
    assert sorted(ss) == sorted(sh) == ["sn_params_tree/_tilde__w", "sn_params_tree/a__b__c",
                                        "sn_params_tree/x_tildey___tildez",
                                        "sn_params_tree/zeta__w"]
    assert_close(ss, sh)


def test_sn_params_tree_vectors_need_ignoring():
    f = hk.transform_with_state(lambda p: hk.SNParamsTree()(p))
    with pytest.raises(ValueError, match=r"not well defined for scalar or vector inputs "
                                         r"\(SpectralNorm "
                                         r"'sn_params_tree/mlp___tilde__linear_0__b'"):
        f.init(jax.random.PRNGKey(0), mlp_params())
    with pytest.raises(TypeError, match=r"SNParamsTree 'sn_params_tree': expected a parameter "
                                        r"tree"):
        f.init(jax.random.PRNGKey(0), jnp.ones((2, 2)))


@pytest.mark.parametrize("name", ['SpectralNorm', 'SNParamsTree'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
