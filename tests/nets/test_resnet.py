"""ResNet, its blocks and ResNet18...200 compared with dm-haiku 0.0.17 (the oracle)."""

import inspect
import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu
from oracle import assert_close, assert_same_tree
from senryu.nets import resnet as ours_resnet
from senryu.nets.resnet import (ResNet, ResNet18, ResNet34, ResNet50, ResNet101, ResNet152,
                                ResNet200)

NAMED = ["ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet200"]
RTOL, ATOL = 1e-4, 1e-5


def _nets(hk):
    """The namespace holding the networks: haiku's ``hk.nets`` or our module."""
    return hk.nets if hk is haiku else ours_resnet


def _both(make):
    """``make(hk, nets)`` returns a network; transform it with both libraries."""
    def program(hk):
        def f(x, is_training, test_local_stats=False):
            return make(hk, _nets(hk))(x, is_training, test_local_stats)
        return hk.transform_with_state(f)
    return program(senryu), program(haiku)


def _perturb(tree, seed=3):
    """Adds noise, so zero-initialised parameters (logits, scales) do not hide mistakes."""
    noise = _random_like(tree, seed)
    return jax.tree.map(lambda a, b: a + b, tree, noise)


def _random_like(tree, seed):
    """Cheap random values with the shapes and dtypes of ``tree`` (no per-shape compilation)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda a: jnp.asarray((0.1 * rng.standard_normal(a.shape)).astype(a.dtype)), tree)


def _check_against_haiku(make, x, grads=False, real_init=True):
    """Trees equal haiku's; with haiku's parameters and state, outputs and new state agree.

    ``real_init`` also runs both inits and checks they give identical values (same
    initializers consuming the same keys); otherwise parameters are random and the state is
    the (all-zero) initial batch-norm state, which keeps big networks cheap to test.
    """
    ours, theirs = _both(make)
    key = jax.random.PRNGKey(0)
    if real_init:
        params, state = theirs.init(key, x, True)
        our_params, our_state = ours.init(key, x, True)
        # Insertion order too (only real dicts keep it: tree maps sort the keys).
        assert_same_tree(our_params, params)
        assert_same_tree(our_state, state)
        assert_close(our_params, params)
        assert_close(our_state, state)
        params = _perturb(params)
    else:
        params, state = jax.eval_shape(lambda k, x: theirs.init(k, x, True), key, x)
        our_params, our_state = jax.eval_shape(lambda k, x: ours.init(k, x, True), key, x)
        assert_same_tree(our_params, params)
        assert_same_tree(our_state, state)
        params = _random_like(params, seed=3)
        state = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), state)

    # Training: batch statistics, moving averages updated.
    out, new_state = theirs.apply(params, state, None, x, True)
    our_out, our_new_state = ours.apply(params, state, None, x, True)
    assert our_out.shape == out.shape
    assert_close(our_out, out, RTOL, ATOL)
    assert_same_tree(our_new_state, new_state)
    assert_close(our_new_state, new_state, RTOL, ATOL)
    assert not np.allclose(out, 0)
    # Evaluation with the updated moving averages, and with local statistics.
    for test_local_stats in (False, True):
        out, unchanged = theirs.apply(params, new_state, None, x, False, test_local_stats)
        our_out, our_unchanged = ours.apply(params, new_state, None, x, False, test_local_stats)
        assert_close(our_out, out, RTOL, ATOL)
        assert_close(our_unchanged, unchanged)
    if grads:
        def loss(transformed):
            return lambda p: jnp.sum(transformed.apply(p, state, None, x, True)[0] ** 2)
        assert_close(jax.grad(loss(ours))(params), jax.grad(loss(theirs))(params), 1e-3, 1e-4)


X = jax.random.normal(jax.random.PRNGKey(1), [2, 16, 16, 3])
# Few distinct weight shapes: each new shape costs a compilation of the random initializers.
SMALL = dict(channels_per_group=(8, 8, 8, 8), initial_conv_config={"output_channels": 8})


@pytest.mark.parametrize("resnet_v2, bottleneck",
                         list(itertools.product([False, True], [False, True])))
def test_small_resnet_matches_haiku(resnet_v2, bottleneck):
    _check_against_haiku(
        lambda hk, nets: nets.ResNet(
            (1, 2, 1, 1), 5, resnet_v2=resnet_v2, bottleneck=bottleneck,
            use_projection=(False, False, True, False), strides=(1, 1, 2, 1), **SMALL),
        X)


def test_all_options_match_haiku():
    _check_against_haiku(
        lambda hk, nets: nets.ResNet(
            blocks_per_group=(1, 1, 1, 1), num_classes=4, bn_config={"decay_rate": 0.5,
                                                                     "eps": 1e-3},
            resnet_v2=False, bottleneck=True, channels_per_group=(8, 16, 16, 32),
            use_projection=(True, True, False, True),
            logits_config={"name": "head", "w_init": hk.initializers.RandomNormal(),
                           "with_bias": False},
            name="net",
            initial_conv_config={"output_channels": 4, "kernel_shape": 3, "stride": 1,
                                 "with_bias": True, "padding": "VALID"},
            strides=(2, 2, 1, 2)),
        X, real_init=False)


def test_bn_config_without_offset_matches_haiku():
    _check_against_haiku(
        lambda hk, nets: nets.ResNet(
            (1, 1, 1, 1), 3, bn_config={"decay_rate": 0.99, "create_offset": False},
            resnet_v2=True, **SMALL),
        X)


def test_resnet18_matches_haiku():
    x = jax.random.normal(jax.random.PRNGKey(2), [2, 32, 32, 3])
    _check_against_haiku(lambda hk, nets: nets.ResNet18(10), x, real_init=False)



@pytest.mark.parametrize("block, bottleneck, use_projection, stride",
                         [("BlockV1", True, True, 2), ("BlockV2", True, True, 2),
                          ("BlockV1", False, False, 1), ("BlockV2", False, True, 1)])
def test_blocks_match_haiku(block, bottleneck, use_projection, stride):
    channels = 8 if use_projection else 4
    _check_against_haiku(
        lambda hk, nets: getattr(nets.ResNet, block)(
            channels, stride, use_projection, {"decay_rate": 0.9}, bottleneck),
        jax.random.normal(jax.random.PRNGKey(1), [2, 6, 6, 4]), real_init=False)


def test_block_group_matches_haiku():
    bn_config = {"decay_rate": 0.9, "eps": 1e-5, "create_scale": True, "create_offset": True}
    _check_against_haiku(
        lambda hk, nets: nets.ResNet.BlockGroup(8, 3, 2, bn_config, False, True, True,
                                                name="group"),
        jax.random.normal(jax.random.PRNGKey(1), [2, 6, 6, 4]), grads=True)


def _abstract_init(hk, cls_name, resnet_v2, num_classes=10, shape=(1, 32, 32, 3)):
    cls = getattr(_nets(hk), cls_name)
    f = hk.transform_with_state(lambda x: cls(num_classes, resnet_v2=resnet_v2)(x, True))
    return jax.eval_shape(f.init, jax.random.PRNGKey(0), jnp.ones(shape))


@pytest.mark.parametrize("cls_name, resnet_v2", [("ResNet18", False), ("ResNet34", False),
                                                  ("ResNet50", False), ("ResNet18", True),
                                                  ("ResNet50", True)])
def test_named_resnet_trees_match_haiku(cls_name, resnet_v2):
    our_params, our_state = _abstract_init(senryu, cls_name, resnet_v2)
    params, state = _abstract_init(haiku, cls_name, resnet_v2)
    assert_same_tree(our_params, params)
    assert_same_tree(our_state, state)


# (parameters, parameter modules, state modules) of dm-haiku 0.0.17's deep ResNets with 1000
# classes; measured once with the oracle, to keep these big traces out of every run.
DEEP = {"ResNet101": (44_549_160, 209, 208), "ResNet152": (60_192_808, 311, 310),
        "ResNet200": (64_673_832, 407, 406)}


@pytest.mark.parametrize("cls_name", sorted(DEEP))
def test_deep_resnet_sizes_match_haiku(cls_name):
    params, state = _abstract_init(senryu, cls_name, False, num_classes=1000)
    assert (sum(p.size for p in jax.tree.leaves(params)), len(params), len(state)) == \
        DEEP[cls_name]


def test_resnet50_has_25_6m_parameters():
    params, _ = _abstract_init(senryu, "ResNet50", False, num_classes=1000, shape=(1, 224, 224, 3))
    count = sum(p.size for p in jax.tree.leaves(params))
    assert count == 25_557_032
    assert round(count / 1e6, 1) == 25.6


def test_named_resnets_are_resnets_with_fixed_configs():
    assert ResNet.BlockV1 is ours_resnet.BlockV1
    assert ResNet.BlockV2 is ours_resnet.BlockV2
    assert ResNet.BlockGroup is ours_resnet.BlockGroup
    for cls in (ResNet18, ResNet34, ResNet50, ResNet101, ResNet152, ResNet200):
        assert issubclass(cls, ResNet)
        assert issubclass(cls, senryu.Module)
    assert set(ours_resnet.__all__) == {"ResNet", *NAMED}
    assert ResNet.CONFIGS == haiku.nets.ResNet.CONFIGS


@pytest.mark.parametrize("name", ["ResNet", *NAMED, "ResNet.BlockGroup", "ResNet.BlockV1",
                                  "ResNet.BlockV2"])
def test_signatures_match_haiku(name):
    def get(namespace):
        obj = namespace
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    for method in ("__init__", "__call__"):
        ours = inspect.signature(getattr(get(ours_resnet), method)).parameters
        theirs = inspect.signature(getattr(get(haiku.nets), method)).parameters
        assert list(ours) == list(theirs), (name, method)
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


def _init(f, x=X):
    """Parameter and state shapes of ``f`` (errors surface without computing anything)."""
    return jax.eval_shape(senryu.transform_with_state(f).init, jax.random.PRNGKey(0), x)


def test_default_module_names():
    def f(x):
        return (ResNet18(2)(x, True), ResNet([1, 1, 1, 1], 2, bottleneck=False,
                                              channels_per_group=(64, 8, 8, 8))(x, True))
    params, _ = _init(f)
    assert {name.split("/")[0] for name in params} == {"res_net18", "res_net"}


@pytest.mark.parametrize("option", ["blocks_per_group", "channels_per_group", "use_projection",
                                    "strides"])
def test_options_of_wrong_length_raise(option):
    kwargs = {"blocks_per_group": (1, 1, 1, 1), "num_classes": 2, option: (1, 1, 1)}
    with pytest.raises(ValueError,
                       match=rf"ResNet 'res_net': `{option}` must be of length 4 not 3"):
        _init(lambda x: ResNet(**kwargs)(x, True))


def test_named_resnet_strides_of_wrong_length_raise():
    with pytest.raises(ValueError, match=r"ResNet50 'res_net50': `strides` must be of length 4"):
        _init(lambda x: ResNet50(10, strides=(1, 2))(x, True))


def test_blocks_per_group_not_a_sequence_raises():
    with pytest.raises(TypeError, match=r"ResNet 'res_net': `blocks_per_group` must be a "
                                        r"sequence of length 4, got 3"):
        _init(lambda x: ResNet(3, 2)(x, True))


def test_unbatched_input_raises():
    with pytest.raises(ValueError, match=r"res_net18: inputs must be a batch of images of shape "
                                         r"\[N, H, W, C\], got shape \(16, 16, 3\)"):
        _init(lambda x: ResNet18(2)(x, True), X[0])


def test_identity_shortcut_with_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"block_v1: the residual branch has shape "
                                         r"\(2, 16, 16, 8\) but the shortcut has shape "
                                         r"\(2, 16, 16, 3\); use `use_projection=True`"):
        _init(lambda x: ResNet.BlockV1(8, 1, False, {}, False)(x, True, False))
    with pytest.raises(ValueError, match=r"block_v2: the residual branch has shape "
                                         r"\(2, 8, 8, 3\) but the shortcut"):
        _init(lambda x: ResNet.BlockV2(3, 2, False, {}, False)(x, True, False))


def test_bn_config_without_scale_for_v1_bottleneck_raises():
    # The last batch norm of a v1 bottleneck block needs a scale (initialised to zero).
    with pytest.raises(ValueError, match="scale_init"):
        _init(lambda x: ResNet([1, 1, 1, 1], 2, bn_config={"create_scale": False})(x, True))
