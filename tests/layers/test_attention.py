"""MultiHeadAttention, checked against dm-haiku 0.0.17 and against a plain jnp reference."""

import inspect
import itertools
import warnings

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
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), jnp.float32)


def reference_attention(params, query, key, value, mask, num_heads, key_size, value_size,
                        name="multi_head_attention"):
    """Plain-jnp multi-head attention with the parameters of a senryu/haiku module."""
    def linear(x, sub):
        p = params[f"{name}/{sub}"]
        y = x @ p["w"]
        return y + p["b"] if "b" in p else y

    q = linear(query, "query").reshape(query.shape[:-1] + (num_heads, key_size))
    k = linear(key, "key").reshape(key.shape[:-1] + (num_heads, key_size))
    v = linear(value, "value").reshape(value.shape[:-1] + (num_heads, value_size))
    q, k, v = (jnp.swapaxes(t, -2, -3) for t in (q, k, v))        # [..., H, T, d]
    logits = q @ jnp.swapaxes(k, -1, -2) / np.sqrt(key_size)      # [..., H, T, T']
    if mask is not None:
        logits = jnp.where(jnp.broadcast_to(mask, logits.shape) != 0, logits, -1e30)
    weights = jnp.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    out = jnp.swapaxes(weights @ v, -2, -3)                         # [..., T, H, dv]
    out = out.reshape(out.shape[:-2] + (num_heads * value_size,))
    return linear(out, "linear")


def both(build):
    return haiku.transform(build(haiku)), hk.transform(build(hk))


# num_heads x (value_size, model_size) x self/cross attention; key_size and with_bias vary along.
GRID = [
    (num_heads, 1 + num_heads, sizes, i % 2 == 0, kind)
    for i, (num_heads, sizes, kind) in enumerate(itertools.product(
        [1, 2], [(None, None), (4, 5)], ["self", "cross"]))
] + [(3, 2, (None, 7), False, "cross")]


@pytest.mark.parametrize("num_heads,key_size,sizes,with_bias,kind", GRID)
def test_matches_haiku_and_reference(num_heads, key_size, sizes, with_bias, kind):
    value_size, model_size = sizes

    def build(lib):
        def f(q, k, v):
            return lib.MultiHeadAttention(
                num_heads, key_size, w_init=lib.initializers.VarianceScaling(1.0),
                with_bias=with_bias, b_init=lib.initializers.RandomNormal(),
                value_size=value_size, model_size=model_size)(q, k, v)
        return f

    th, ts = both(build)
    q = data((2, 5, 6))
    kv = q if kind == "self" else data((2, 7, 4), 1)
    rng = jax.random.PRNGKey(0)
    ph = th.init(rng, q, kv, kv)
    ps = ts.init(rng, q, kv, kv)
    assert_close(ps, ph)  # names, shapes, dtypes and the (random) initial values
    out_h = th.apply(ph, None, q, kv, kv)
    out_s = ts.apply(ph, None, q, kv, kv)
    assert out_s.shape == (2, 5, model_size or key_size * num_heads)
    assert_close(out_s, out_h)
    expected = reference_attention(ph, q, kv, kv, None, num_heads, key_size,
                                   value_size or key_size)
    np.testing.assert_allclose(out_s, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("q_shape,kv_shape", [
    ((5, 6), (7, 4)),                  # no batch
    ((3, 2, 5, 6), (3, 2, 7, 4)),      # two leading dims
    ((2, 1, 6), (2, 9, 4)),            # a single query
])
def test_leading_dims(q_shape, kv_shape):
    def build(lib):
        return lambda q, k, v: lib.MultiHeadAttention(
            2, 3, w_init=lib.initializers.VarianceScaling(1.0))(q, k, v)

    th, ts = both(build)
    q, kv = data(q_shape), data(kv_shape, 1)
    ph = th.init(jax.random.PRNGKey(1), q, kv, kv)
    assert_close(ts.init(jax.random.PRNGKey(1), q, kv, kv), ph)
    out_s = ts.apply(ph, None, q, kv, kv)
    assert out_s.shape == q_shape[:-1] + (6,)
    assert_close(out_s, th.apply(ph, None, q, kv, kv))
    np.testing.assert_allclose(out_s, reference_attention(ph, q, kv, kv, None, 2, 3, 3),
                               rtol=1e-5, atol=1e-5)


def _mask(shape, seed, dtype):
    m = np.random.RandomState(seed).rand(*shape) > 0.4
    m[..., 0] = True  # keep at least one position per row (fully masked rows tested apart)
    return jnp.asarray(m, dtype)


B, H, T, TK = 2, 2, 3, 4
# Every broadcastable mask shape; the mask dtype (bool, int, float) rotates along.
MASKS = [
    (shape, [jnp.bool_, jnp.int32, jnp.float32][i % 3])
    for i, shape in enumerate(
        [(B, H, T, TK), (B, 1, T, TK), (1, 1, 1, TK), (B, 1, 1, TK), (1, H, T, TK), (1, 1, T, 1),
         (1, 1, 1, 1)])
]


@pytest.mark.parametrize("mask_shape,dtype", MASKS)
def test_masks_match_reference(mask_shape, dtype):
    def build(lib):
        return lambda q, k, v, m: lib.MultiHeadAttention(
            H, 3, w_init=lib.initializers.VarianceScaling(1.0), value_size=2)(q, k, v, m)

    th, ts = both(build)
    q, k, v = data((B, T, 5)), data((B, TK, 4), 1), data((B, TK, 3), 2)
    mask = _mask(mask_shape, 3, dtype)
    params = ts.init(jax.random.PRNGKey(2), q, k, v, mask)
    out = ts.apply(params, None, q, k, v, mask)
    expected = reference_attention(params, q, k, v, mask, H, 3, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert_close(out, th.apply(params, None, q, k, v, mask))


def test_causal_mask_ignores_the_future():
    f = hk.transform(lambda x, m: hk.MultiHeadAttention(
        2, 4, w_init=hk.initializers.VarianceScaling(1.0))(x, x, x, m))
    x = data((1, 5, 8))
    causal = jnp.tril(jnp.ones((5, 5), bool))[None, None]
    params = f.init(jax.random.PRNGKey(0), x, causal)
    out = f.apply(params, None, x, causal)
    x_changed = x.at[:, 3:].set(100.)
    out_changed = f.apply(params, None, x_changed, causal)
    np.testing.assert_allclose(out[:, :3], out_changed[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, 3:], out_changed[:, 3:])


def test_fully_masked_rows_match_haiku():
    def build(lib):
        return lambda q, m: lib.MultiHeadAttention(
            1, 2, w_init=lib.initializers.VarianceScaling(1.0))(q, q, q, m)

    th, ts = both(build)
    q = data((1, 3, 4))
    mask = jnp.array([[[[1, 1, 0], [0, 0, 0], [1, 0, 0]]]])
    params = th.init(jax.random.PRNGKey(0), q, mask)
    out_s = ts.apply(params, None, q, mask)
    assert_close(out_s, th.apply(params, None, q, mask))
    # A fully masked row attends uniformly.
    np.testing.assert_allclose(out_s, reference_attention(params, q, q, q, mask, 1, 2, 2),
                               rtol=1e-5, atol=1e-5)


def test_w_init_scale_is_deprecated_but_works():
    def build(lib, **kwargs):
        return lambda q: lib.MultiHeadAttention(2, 3, **kwargs)(q, q, q)

    q = data((2, 4, 5))
    rng = jax.random.PRNGKey(4)
    with pytest.warns(DeprecationWarning, match="w_init_scale is deprecated; please pass an "
                                                "explicit weight initialiser instead"):
        params = hk.transform(build(hk, w_init_scale=2.)).init(rng, q)
    explicit = hk.transform(build(hk, w_init=hk.initializers.VarianceScaling(2.))).init(rng, q)
    assert_close(params, explicit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert_close(params, haiku.transform(build(haiku, w_init_scale=2.)).init(rng, q))


def test_under_jit_and_grad():
    f = hk.transform(lambda q, kv: hk.MultiHeadAttention(
        2, 3, w_init=hk.initializers.VarianceScaling(1.0))(q, kv, kv))
    q, kv = data((2, 3, 4)), data((2, 5, 4), 1)
    params = f.init(jax.random.PRNGKey(0), q, kv)
    np.testing.assert_allclose(jax.jit(f.apply)(params, None, q, kv), f.apply(params, None, q, kv),
                               rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda p: jnp.sum(f.apply(p, None, q, kv) ** 2))(params)
    assert spec(grads) == spec(params)


def test_errors():
    w_init = hk.initializers.VarianceScaling(1.0)

    def init(f, *args):
        return hk.transform(f).init(jax.random.PRNGKey(0), *args)

    q, kv = jnp.ones((2, 5, 6)), jnp.ones((2, 7, 4))
    with pytest.raises(ValueError, match=r"Please provide a weight initializer: `w_init`\."):
        init(lambda: hk.MultiHeadAttention(2, 3))
    with pytest.raises(ValueError, match=r"Please provide only `w_init`, not `w_init_scale` "
                                         r"\(MultiHeadAttention 'multi_head_attention'\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            init(lambda: hk.MultiHeadAttention(2, 3, 1.0, w_init=w_init))
    with pytest.raises(ValueError, match=r"Mask dimensionality 2 must match logits "
                                         r"dimensionality 4 \(MultiHeadAttention "
                                         r"'multi_head_attention': mask shape \(5, 7\), logits "
                                         r"shape \(2, 2, 5, 7\)"):
        init(lambda m: hk.MultiHeadAttention(2, 3, w_init=w_init)(q, kv, kv, m),
             jnp.ones((5, 7)))
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'multi_head_attention': mask of "
                                         r"shape \(2, 1, 5, 6\) does not broadcast to the logits "
                                         r"shape \(2, 2, 5, 7\)"):
        init(lambda m: hk.MultiHeadAttention(2, 3, w_init=w_init)(q, kv, kv, m),
             jnp.ones((2, 1, 5, 6)))
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'multi_head_attention': key and "
                                         r"value must have the same sequence length \(axis -2\), "
                                         r"got key shape \(2, 7, 4\) and value shape "
                                         r"\(2, 8, 4\)"):
        init(lambda: hk.MultiHeadAttention(2, 3, w_init=w_init)(q, kv, jnp.ones((2, 8, 4))))
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'multi_head_attention': query must "
                                         r"have shape \[\.\.\., sequence_length, features\], got "
                                         r"shape \(6,\)"):
        init(lambda: hk.MultiHeadAttention(2, 3, w_init=w_init)(jnp.ones(6), kv, kv))

    f = hk.transform(lambda q: hk.MultiHeadAttention(2, 3, w_init=w_init)(q, q, q))
    params = f.init(jax.random.PRNGKey(0), q)
    with pytest.raises(ValueError, match=r"'multi_head_attention/query/w' with retrieved shape "
                                         r"\(6, 6\) does not match"):
        f.apply(params, None, jnp.ones((2, 5, 3)))


@pytest.mark.parametrize("name", ['MultiHeadAttention'])
def test_signatures_match_haiku(name):
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for method in ("__init__", "__call__", "initialize"):
        if hasattr(getattr(haiku, name), method):
            assert (signature(getattr(getattr(hk, name), method))
                    == signature(getattr(getattr(haiku, name), method)))
