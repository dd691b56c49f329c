"""DepthwiseConv{1,2,3}D and SeparableDepthwiseConv2D against dm-haiku 0.0.17 (oracle) and a NumPy
loop reference."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import senryu as hk

KEY = jax.random.PRNGKey(7)


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def run_ours(build, x):
    ours = hk.transform(lambda x: build(hk)(x))
    params = ours.init(KEY, x)
    return params, ours.apply(params, None, x)


def run_both(build, x, rtol=1e-5, atol=1e-5):
    theirs = haiku.transform(lambda x: build(haiku)(x))
    ours = hk.transform(lambda x: build(hk)(x))
    pt = theirs.init(KEY, x)
    po = ours.init(KEY, x)
    assert sorted(po) == sorted(pt)
    assert_close(po, pt, rtol=rtol, atol=atol)  # same tree, dtypes and initial values
    out_t = theirs.apply(pt, None, x)
    out_o = ours.apply(pt, None, x)
    assert_close(out_o, out_t, rtol=rtol, atol=atol)
    return pt, out_o


def rand(shape, seed=0, dtype=np.float32):
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), dtype)


def np_init(seed, scale=0.5):
    """A NumPy initializer (same values in both libraries). Random JAX initializers compile anew
    for every parameter shape, which dominates the run time, so most tests use this one; the
    default initializers are checked separately."""
    def init(shape, dtype):
        return jnp.asarray(np.random.RandomState(seed).randn(*shape) * scale, dtype)
    return init


W_INIT, B_INIT = np_init(1), np_init(2)


def ref_depthwise(x, w, stride, rate, pads):
    """Channels-last depthwise convolution by loops: output channel j reads input channel
    j // multiplier."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)  # [*K, 1, C * m]
    n = x.ndim - 2
    kernel = w.shape[:n]
    channels = x.shape[-1]
    mult = w.shape[-1] // channels
    x = np.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    eff = [(k - 1) * r + 1 for k, r in zip(kernel, rate)]
    out_sizes = [(size - e) // s + 1 for size, e, s in zip(x.shape[1:-1], eff, stride)]
    x_rep = np.repeat(x, mult, axis=-1)  # channel j of x_rep is input channel j // mult
    out = np.zeros((x.shape[0], *out_sizes, channels * mult))
    for idx in np.ndindex(*out_sizes):
        for kidx in np.ndindex(*kernel):
            pos = tuple(i * s + k * r for i, s, k, r in zip(idx, stride, kidx, rate))
            out[(slice(None),) + idx] += x_rep[(slice(None),) + pos] * w[kidx][0]
    return out


SPATIAL = {1: (7,), 2: (6, 5), 3: (4, 3, 4)}
KERNEL = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}
CLASSES = {1: "DepthwiseConv1D", 2: "DepthwiseConv2D", 3: "DepthwiseConv3D"}
NAMES = {1: "depthwise_conv1_d", 2: "depthwise_conv2_d", 3: "depthwise_conv3_d"}
FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def pads_for(padding, n, stride, rate):
    if isinstance(padding, str):
        eff = [(k - 1) * rate + 1 for k in KERNEL[n]]
        return lax.padtype_to_pads(SPATIAL[n], eff, (stride,) * n, padding)
    return padding


# Channels-first and multiplier 1 only in part of the product (both orthogonal to the rest).
GRID = [
    (n, channels_first, multiplier, stride, rate, padding)
    for n, channels_first, multiplier, (stride, rate), padding in itertools.product(
        [1, 2, 3], [False, True], [1, 2], [(1, 1), (2, 1), (1, 2), (2, 2)],
        ["SAME", "VALID", "pairs"])
    if (n < 3 or (stride, rate) in ((1, 1), (2, 1)))
    and (not channels_first or padding == "SAME") and (multiplier == 2 or stride == 1)
]


@pytest.mark.parametrize("n,channels_first,multiplier,stride,rate,padding", GRID)
def test_depthwise_matches_haiku_and_reference(n, channels_first, multiplier, stride, rate,
                                               padding):
    x_last = rand((2, *SPATIAL[n], 3))
    x = jnp.moveaxis(x_last, -1, 1) if channels_first else x_last
    pad_arg = tuple([(1, 0), (0, 2), (2, 1)][:n]) if padding == "pairs" else padding
    fmt = FIRST[n] if channels_first else "channels_last"

    def build(lib):
        return getattr(lib, CLASSES[n])(multiplier, KERNEL[n], stride=stride, rate=rate,
                                        padding=pad_arg, data_format=fmt, w_init=W_INIT,
                                        b_init=B_INIT)

    if channels_first and n != 2:
        # dm-haiku 0.0.17 fails here (its bias does not broadcast for channels-first 1D/3D inputs);
        # check against the reference only.
        params, out = run_ours(build, x)
    else:
        params, out = run_both(build, x)
    w, b = params[NAMES[n]]["w"], params[NAMES[n]]["b"]
    assert w.shape == KERNEL[n] + (1, 3 * multiplier)
    assert b.shape == ((3 * multiplier,) + (1,) * n if channels_first else (3 * multiplier,))
    expected = ref_depthwise(x_last, w, (stride,) * n, (rate,) * n,
                             pads_for(pad_arg, n, stride, rate)) + np.ravel(b)
    if channels_first:
        out = jnp.moveaxis(out, 1, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_depthwise_options_match_haiku():
    x = rand((2, 6, 5, 4), seed=1)
    params, _ = run_both(lambda lib: lib.DepthwiseConv2D(3, 3, with_bias=False, w_init=W_INIT), x)
    assert list(params["depthwise_conv2_d"]) == ["w"]
    run_both(lambda lib: lib.DepthwiseConv2D(2, 3, b_init=lib.initializers.RandomNormal()), x)


def test_depthwise_default_initializer():
    x = jnp.ones([1, 5, 5, 4])
    params = hk.transform(lambda x: hk.DepthwiseConv2D(2, (3, 2))(x)).init(KEY, x)
    manual = hk.transform(lambda: hk.get_parameter(
        "w", [3, 2, 1, 8], init=hk.initializers.TruncatedNormal(1 / np.sqrt(6)))).init(KEY)
    np.testing.assert_array_equal(params["depthwise_conv2_d"]["w"], manual["~"]["w"])


def test_depthwise_padding_functions_extend_haiku():
    # dm-haiku 0.0.17 rejects hk.pad functions here; senryu accepts them like ConvND does.
    x = rand((1, 6, 2))
    f = hk.transform(lambda x: hk.DepthwiseConv1D(1, 3, padding=hk.pad.causal, w_init=W_INIT)(x))
    params = f.init(KEY, x)
    g = hk.transform(lambda x: hk.DepthwiseConv1D(1, 3, padding=[(2, 0)])(x))
    np.testing.assert_allclose(f.apply(params, None, x), g.apply(params, None, x))


SEPARABLE_GRID = list(itertools.product(
    [False, True], [1, 2], [(1, 1), (2, 3)], ["SAME", "VALID", ((1, 1), (0, 2))]))


@pytest.mark.parametrize("channels_first,multiplier,stride,padding", [
    case for case in SEPARABLE_GRID if not case[0] or case[3] == "SAME"])
def test_separable_matches_haiku_and_reference(channels_first, multiplier, stride, padding):
    x_last = rand((2, 7, 8, 3), seed=2)
    x = jnp.moveaxis(x_last, -1, 1) if channels_first else x_last
    fmt = "NCHW" if channels_first else "NHWC"

    def build(lib):
        return lib.SeparableDepthwiseConv2D(multiplier, (3, 2), stride=stride, padding=padding,
                                            data_format=fmt, w_init=W_INIT, b_init=B_INIT)

    params, out = run_both(build, x)
    first = params["separable_depthwise_conv2_d/~/depthwise_conv2_d"]
    second = params["separable_depthwise_conv2_d/~/depthwise_conv2_d_1"]
    assert list(first) == ["w"] and first["w"].shape == (3, 1, 1, 3 * multiplier)
    assert second["w"].shape == (1, 2, 1, 3 * multiplier)

    def pads(kernel, strides, size):
        if isinstance(padding, str):
            return lax.padtype_to_pads(size, kernel, strides, padding)
        return padding

    h = ref_depthwise(x_last, first["w"], stride, (1, 1), pads((3, 1), stride, (7, 8)))
    expected = ref_depthwise(h, second["w"], (1, 1), (1, 1), pads((1, 2), (1, 1), h.shape[1:3]))
    expected = expected + np.ravel(second["b"])
    if channels_first:
        out = jnp.moveaxis(out, 1, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_separable_default_initializers_match_haiku():
    run_both(lambda lib: lib.SeparableDepthwiseConv2D(2, 3), rand((1, 5, 5, 2)))


def test_separable_without_bias_matches_haiku():
    params, _ = run_both(lambda lib: lib.SeparableDepthwiseConv2D(2, 3, with_bias=False,
                                                                  w_init=W_INIT),
                         rand((1, 5, 5, 2)))
    assert all(list(p) == ["w"] for p in params.values())


@pytest.mark.parametrize("cls", ["DepthwiseConv2D", "SeparableDepthwiseConv2D"])
def test_dtypes_are_kept(cls):
    # Default initializers for DepthwiseConv2D; NumPy ones (cheaper to run) for the other.
    kw = lambda lib: {} if cls == "DepthwiseConv2D" else {"w_init": W_INIT}  # noqa: E731
    with jax.enable_x64(True):
        params, out = run_both(lambda lib: getattr(lib, cls)(2, 3, **kw(lib)),
                               rand((1, 5, 4, 2), dtype=np.float64), rtol=1e-12, atol=1e-12)
        assert out.dtype == jnp.float64
        assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {jnp.dtype("float64")}
    params, out = run_both(lambda lib: getattr(lib, cls)(2, 3, **kw(lib)),
                           rand((1, 5, 4, 2), dtype=jnp.bfloat16), rtol=1e-2, atol=1e-2)
    assert out.dtype == jnp.bfloat16
    assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {jnp.dtype("bfloat16")}


@pytest.mark.parametrize("cls", ["DepthwiseConv1D", "SeparableDepthwiseConv2D"])
def test_jit_and_grad_match_haiku(cls):
    x = rand((2, 6, 3) if cls == "DepthwiseConv1D" else (2, 6, 5, 3), seed=3)
    theirs = haiku.transform(lambda x: getattr(haiku, cls)(2, 3, stride=2, w_init=W_INIT)(x))
    ours = hk.transform(lambda x: getattr(hk, cls)(2, 3, stride=2, w_init=W_INIT)(x))
    params = theirs.init(KEY, x)
    assert_close(jax.jit(ours.apply)(params, None, x), ours.apply(params, None, x))

    def loss(apply):
        return lambda p, x: jnp.sum(jnp.tanh(apply(p, None, x)))

    g_ours = jax.jit(jax.grad(loss(ours.apply), argnums=(0, 1)))(params, x)
    g_theirs = jax.grad(loss(theirs.apply), argnums=(0, 1))(params, x)
    assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- errors


def init(f):
    return hk.transform(f).init(KEY)


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"depthwise_conv2_d: DepthwiseConv2D expects batched "
                                         r"inputs of rank 4 .* shape \(5, 5, 3\)"):
        init(lambda: hk.DepthwiseConv2D(1, 3)(jnp.ones([5, 5, 3])))
    with pytest.raises(ValueError, match=r"separable_depthwise_conv2_d: SeparableDepthwiseConv2D "
                                         r"expects batched inputs of rank 4"):
        init(lambda: hk.SeparableDepthwiseConv2D(1, 3)(jnp.ones([1, 1, 5, 5, 3])))


def test_channel_count_change_is_rejected():
    f = hk.transform(lambda x: hk.DepthwiseConv2D(2, 3, w_init=W_INIT)(x))
    params = f.init(KEY, jnp.ones([1, 4, 4, 3]))
    with pytest.raises(ValueError, match=r"depthwise_conv2_d: DepthwiseConv2D got inputs with 5 "
                                         r"channels, which needs 'w' of shape \(3, 3, 1, 10\), but "
                                         r"its parameter 'depthwise_conv2_d/w' has shape "
                                         r"\(3, 3, 1, 6\)"):
        f.apply(params, None, jnp.ones([1, 4, 4, 5]))


def test_bad_padding_format_and_kernel_are_rejected():
    with pytest.raises(ValueError, match=r"depthwise_conv2_d: unknown padding 'same_upper'"):
        init(lambda: hk.DepthwiseConv2D(1, 3, padding="same_upper"))
    with pytest.raises(ValueError, match=r"depthwise_conv1_d: Unable to extract channel "
                                         r"information from data_format 'WC'"):
        init(lambda: hk.DepthwiseConv1D(1, 3, data_format="WC"))
    with pytest.raises(ValueError, match=r"depthwise_conv3_d: the effective kernel size "
                                         r"\(3, 3, 3\).*padding 'VALID'"):
        init(lambda: hk.DepthwiseConv3D(1, 3, padding="VALID")(jnp.ones([1, 2, 4, 4, 1])))
    with pytest.raises(ValueError, match=r"depthwise_conv2_d: channel_multiplier must be an int "
                                         r">= 1, got 0"):
        init(lambda: hk.DepthwiseConv2D(0, 3))
    with pytest.raises(TypeError, match=r"separable_depthwise_conv2_d: kernel_shape must be an "
                                        r"int or a sequence of 1 or 2 ints"):
        init(lambda: hk.SeparableDepthwiseConv2D(1, (1, 2, 3)))


def test_documented_defaults():
    def f():
        for cls, fmt in [(hk.DepthwiseConv1D, "NWC"), (hk.DepthwiseConv2D, "NHWC"),
                         (hk.DepthwiseConv3D, "NDHWC"), (hk.SeparableDepthwiseConv2D, "NHWC")]:
            mod = cls(1, 3)
            assert mod.data_format == fmt and mod.channel_index == -1
        mod = hk.DepthwiseConv2D(1, 3)
        assert mod.padding == "SAME" and mod.stride == (1, 1) and mod.with_bias
    hk.transform(f).init(None)
