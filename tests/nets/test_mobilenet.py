"""MobileNetV1 compared with dm-haiku 0.0.17 (the oracle)."""

import inspect

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu
from oracle import assert_close, assert_same_tree
from senryu.nets import mobilenet as ours_mobilenet
from senryu.nets.mobilenet import MobileNetV1

RTOL, ATOL = 1e-4, 1e-5


def _both(**kwargs):
    def program(hk, cls):
        return hk.transform_with_state(lambda x, is_training: cls(**kwargs)(x, is_training))
    return program(senryu, MobileNetV1), program(haiku, haiku.nets.MobileNetV1)


def _random_like(tree, seed):
    """Cheap random values with the shapes and dtypes of ``tree`` (no per-shape compilation)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda a: jnp.asarray((0.3 * rng.standard_normal(a.shape)).astype(a.dtype)), tree)


def _check_against_haiku(x, real_init=True, **kwargs):
    ours, theirs = _both(**kwargs)
    key = jax.random.PRNGKey(0)
    if real_init:
        params, state = theirs.init(key, x, True)
        our_params, our_state = ours.init(key, x, True)
        assert_same_tree(our_params, params)  # insertion order too
        assert_same_tree(our_state, state)
        # Same initializers consuming the same keys: identical initial values.
        assert_close(our_params, params)
        assert_close(our_state, state)
        params = jax.tree.map(lambda a, b: a + b, params, _random_like(params, 3))
    else:
        params, state = jax.eval_shape(lambda k, x: theirs.init(k, x, True), key, x)
        our_params, our_state = jax.eval_shape(lambda k, x: ours.init(k, x, True), key, x)
        assert_same_tree(our_params, params)
        assert_same_tree(our_state, state)
        params = _random_like(params, 3)
        state = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), state)

    out, new_state = theirs.apply(params, state, None, x, True)
    our_out, our_new_state = ours.apply(params, state, None, x, True)
    assert our_out.shape == (x.shape[0], kwargs.get("num_classes", 1000))
    assert_close(our_out, out, RTOL, ATOL)
    assert_close(our_new_state, new_state, RTOL, ATOL)
    assert not np.allclose(out, 0)
    # Evaluation uses (and does not change) the moving averages of the training step.
    out, unchanged = theirs.apply(params, new_state, None, x, False)
    our_out, our_unchanged = ours.apply(params, new_state, None, x, False)
    assert_close(our_out, out, RTOL, ATOL)
    assert_close(our_unchanged, unchanged)
    return params, state


X = jax.random.normal(jax.random.PRNGKey(1), [2, 16, 16, 3])


@pytest.mark.parametrize("use_bn", [True, False])
@pytest.mark.parametrize("strides, channels", [((1, 2, 2), (8, 16, 16)), ((2, 1), (8, 8))])
def test_small_mobilenet_matches_haiku(use_bn, strides, channels):
    _check_against_haiku(X, strides=strides, channels=channels, num_classes=5, use_bn=use_bn)


def test_default_mobilenet_matches_haiku():
    x = jax.random.normal(jax.random.PRNGKey(2), [2, 32, 32, 3])
    _check_against_haiku(x, real_init=False)


def test_batch_norm_decay_rate_is_0_999():
    ours, _ = _both(strides=(1,), channels=(4,), num_classes=2)
    params, state = ours.init(jax.random.PRNGKey(0), X, True)
    _, state = ours.apply(params, state, None, X, True)
    ema = state["mobile_net_v1/batch_norm/~/mean_ema"]
    np.testing.assert_allclose(ema["hidden"], 0.001 * ema["average"], rtol=1e-4, atol=1e-7)


def test_no_batch_norm_means_biases():
    ours, _ = _both(strides=(1,), channels=(4,), num_classes=2, use_bn=False)
    params, state = ours.init(jax.random.PRNGKey(0), X, True)
    assert state == {}
    assert jax.tree.map(jnp.shape, params) == {
        "mobile_net_v1/conv2_d": {"b": (32,), "w": (3, 3, 3, 32)},
        "mobile_net_v1/logits": {"b": (2,), "w": (4, 2)},
        "mobile_net_v1/mobile_net_v1_block/depthwise_conv": {"b": (32,), "w": (3, 3, 1, 32)},
        "mobile_net_v1/mobile_net_v1_block/pointwise_conv": {"b": (4,), "w": (1, 1, 32, 4)},
    }


def test_signature_matches_haiku():
    for method in ("__init__", "__call__"):
        ours = inspect.signature(getattr(MobileNetV1, method)).parameters
        theirs = inspect.signature(getattr(haiku.nets.MobileNetV1, method)).parameters
        assert list(ours) == list(theirs)
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    assert ours_mobilenet.__all__ == ["MobileNetV1"]


def test_strides_and_channels_of_different_lengths_raise():
    with pytest.raises(ValueError, match=r"MobileNetV1 'mobile_net_v1': `strides` and "
                                         r"`channels` must have the same length, got 2 strides "
                                         r"\(1, 2\) and 1 channels \(8,\)"):
        senryu.transform_with_state(
            lambda x: MobileNetV1(strides=(1, 2), channels=(8,))(x, True)).init(None, X)


def test_unbatched_input_raises():
    f = senryu.transform_with_state(lambda x: MobileNetV1()(x, True))
    with pytest.raises(ValueError, match=r"mobile_net_v1: inputs must be a batch of images of "
                                         r"shape \[N, H, W, C\], got shape \(16, 16, 3\)"):
        f.init(None, X[0])
