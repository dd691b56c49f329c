"""VectorQuantizer and VectorQuantizerEMA compared with dm-haiku 0.0.17 (the oracle)."""

import inspect

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu
from oracle import assert_close, assert_same_tree
from senryu.nets import vqvae as ours_vqvae
from senryu.nets.vqvae import VectorQuantizer, VectorQuantizerEMA

RTOL, ATOL = 1e-5, 1e-6
KEYS = ["quantize", "loss", "perplexity", "encodings", "encoding_indices", "distances"]


def _cls(hk, ema):
    if hk is haiku:
        return haiku.nets.VectorQuantizerEMA if ema else haiku.nets.VectorQuantizer
    return VectorQuantizerEMA if ema else VectorQuantizer


def _kwargs(ema, **extra):
    kwargs = dict(embedding_dim=4, num_embeddings=7, commitment_cost=0.3, **extra)
    if ema:
        kwargs["decay"] = 0.8
    return kwargs


def _both(ema, **kwargs):
    def program(hk):
        return hk.transform_with_state(
            lambda x, is_training: _cls(hk, ema)(**kwargs)(x, is_training))
    return program(senryu), program(haiku)


@pytest.mark.parametrize("ema", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 5, 4)])
@pytest.mark.parametrize("is_training", [True, False])
def test_matches_haiku_over_several_steps(ema, shape, is_training):
    ours, theirs = _both(ema, **_kwargs(ema))
    x = jax.random.normal(jax.random.PRNGKey(1), shape)
    key = jax.random.PRNGKey(0)
    params, state = theirs.init(key, x, is_training)
    our_params, our_state = ours.init(key, x, is_training)
    assert_same_tree(our_params, params)
    assert_same_tree(our_state, state)
    assert_close(our_params, params)  # same initializer, same key
    assert_close(our_state, state)

    our_state = state
    for step in range(3):
        x = jax.random.normal(jax.random.PRNGKey(10 + step), shape)
        out, state = theirs.apply(params, state, None, x, is_training)
        our_out, our_state = ours.apply(params, our_state, None, x, is_training)
        assert list(our_out) == KEYS
        assert {k: (v.shape, v.dtype) for k, v in our_out.items()} == {
            k: (v.shape, v.dtype) for k, v in out.items()}
        assert_close(our_out, out, RTOL, ATOL)
        assert_close(our_state, state, RTOL, ATOL)
    assert our_out["quantize"].shape == shape
    assert our_out["encoding_indices"].shape == shape[:-1]
    np.testing.assert_array_equal(our_out["encodings"].argmax(-1),
                                  our_out["encoding_indices"].reshape(-1))
    if ema and is_training:  # the codebook moved
        assert not np.allclose(our_state["vector_quantizer_ema"]["embeddings"],
                               our_params.get("embeddings", 0.))


@pytest.mark.parametrize("ema", [False, True])
def test_gradients_match_haiku(ema):
    ours, theirs = _both(ema, **_kwargs(ema))
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    params, state = theirs.init(jax.random.PRNGKey(0), x, True)
    weights = jax.random.normal(jax.random.PRNGKey(2), (5, 4))

    def loss(transformed):
        def f(params, x):
            out, _ = transformed.apply(params, state, None, x, True)
            return out["loss"] + jnp.sum(out["quantize"] * weights)
        return jax.grad(f, argnums=(0, 1))

    our_grads, grads = loss(ours)(params, x), loss(theirs)(params, x)
    assert_close(our_grads, grads, RTOL, ATOL)

    # Straight-through estimator: the gradient of sum(quantize * w) with respect to x is w.
    def weighted_codes(x):
        return jnp.sum(ours.apply(params, state, None, x, True)[0]["quantize"] * weights)
    assert_close(jax.grad(weighted_codes)(x), weights)


@pytest.mark.parametrize("ema", [False, True])
def test_quantize_and_embeddings_match_haiku(ema):
    indices = jnp.array([[0, 6, 3], [2, 2, 1]])

    def program(hk):
        def f(indices):
            vq = _cls(hk, ema)(**_kwargs(ema, name="vq"))
            return vq.quantize(indices), vq.embeddings
        return hk.transform_with_state(f)

    params, state = program(haiku).init(jax.random.PRNGKey(0), indices)
    our_params, our_state = program(senryu).init(jax.random.PRNGKey(0), indices)
    assert_same_tree(our_params, params)
    assert_same_tree(our_state, state)
    assert list({**params, **state}) == ["vq"]
    (codes, embeddings), _ = program(haiku).apply(params, state, None, indices)
    (our_codes, our_embeddings), _ = program(senryu).apply(params, state, None, indices)
    assert our_codes.shape == (2, 3, 4)
    assert_close(our_codes, codes)
    assert_close(our_embeddings, embeddings)
    np.testing.assert_array_equal(our_codes[0, 1], our_embeddings[:, 6])


def test_ema_submodules_are_initialised_moving_averages():
    def f():
        vq = VectorQuantizerEMA(**_kwargs(True))
        return vq.ema_cluster_size.average, vq.ema_dw.average

    f = senryu.transform_with_state(f)
    params, state = f.init(None)
    (cluster_size, dw), state = f.apply(params, state, None)
    assert cluster_size.shape == (7,) and dw.shape == (4, 7)
    assert list(state) == ["vector_quantizer_ema/~/ema_cluster_size",
                           "vector_quantizer_ema/~/ema_dw"]
    assert list(state["vector_quantizer_ema/~/ema_dw"]) == ["hidden", "average"]


@pytest.mark.parametrize("ema", [False, True])
def test_embedding_dtype_matches_haiku(ema):
    x = jnp.ones([3, 4])
    ours, theirs = _both(ema, **_kwargs(ema, dtype=jnp.bfloat16))
    params, state = jax.eval_shape(lambda x: theirs.init(jax.random.PRNGKey(0), x, True), x)
    our_params, our_state = jax.eval_shape(lambda x: ours.init(jax.random.PRNGKey(0), x, True), x)
    assert_same_tree(our_params, params)
    assert_same_tree(our_state, state)
    assert jax.tree.leaves({**our_params, **our_state})[-1].dtype == jnp.bfloat16


@pytest.mark.parametrize("ema", [False, True])
def test_cross_replica_axis_matches_haiku(ema):
    ours, theirs = _both(ema, **_kwargs(ema, cross_replica_axis="replicas"))
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 4))  # 3 replicas
    # The initial values do not depend on the axis (which only exists inside the vmap).
    params, state = _both(ema, **_kwargs(ema))[1].init(jax.random.PRNGKey(0), x[0], True)

    def run(transformed):
        apply = lambda x: transformed.apply(params, state, None, x, True)  # noqa: E731
        return jax.vmap(apply, axis_name="replicas")(x)

    (out, new_state), (our_out, our_new_state) = run(theirs), run(ours)
    assert_close(our_out, out, RTOL, ATOL)
    assert_close(our_new_state, new_state, RTOL, ATOL)
    # Statistics are shared: every replica ends with the same perplexity (and EMA codebook).
    assert_close(our_out["perplexity"], jnp.broadcast_to(our_out["perplexity"][0], (3,)))
    if ema:
        codes = our_new_state["vector_quantizer_ema"]["embeddings"]
        assert_close(codes, jnp.broadcast_to(codes[0], codes.shape))


def test_documented_attributes():
    def f():
        vq = VectorQuantizer(4, 7, 0.3)
        ema = VectorQuantizerEMA(4, 7, 0.3, 0.8)
        return (vq.embedding_dim, vq.num_embeddings, vq.commitment_cost, ema.embedding_dim,
                ema.num_embeddings, ema.commitment_cost, ema.decay, ema.epsilon)
    assert senryu.transform(f).apply({}, None) == (4, 7, 0.3, 4, 7, 0.3, 0.8, 1e-5)


@pytest.mark.parametrize("name", ["VectorQuantizer", "VectorQuantizerEMA"])
def test_signatures_match_haiku(name):
    for method in ("__init__", "__call__", "quantize"):
        ours = inspect.signature(getattr(getattr(ours_vqvae, name), method)).parameters
        theirs = inspect.signature(getattr(getattr(haiku.nets, name), method)).parameters
        assert list(ours) == list(theirs)
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    assert ours_vqvae.__all__ == ["VectorQuantizer", "VectorQuantizerEMA"]


@pytest.mark.parametrize("ema", [False, True])
def test_wrong_embedding_dim_raises(ema):
    f = senryu.transform_with_state(lambda x: _cls(senryu, ema)(**_kwargs(ema))(x, True))
    name = "vector_quantizer_ema" if ema else "vector_quantizer"
    with pytest.raises(ValueError, match=rf"{name}: the last dimension of the inputs must equal "
                                         r"embedding_dim=4, got inputs of shape \(2, 3\)"):
        f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))


@pytest.mark.parametrize("decay", [-0.1, 1.5])
def test_decay_out_of_range_raises(decay):
    f = senryu.transform_with_state(lambda: VectorQuantizerEMA(4, 7, 0.3, decay))
    with pytest.raises(ValueError, match=r"VectorQuantizerEMA 'vector_quantizer_ema': `decay` "
                                         rf"must be in the range \[0, 1\], got {decay}"):
        f.init(None)
