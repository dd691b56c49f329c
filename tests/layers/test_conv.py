"""ConvND/Conv{1,2,3}D and their transposes, checked against dm-haiku 0.0.17 (oracle) and against
independent references (NumPy loops, and transposed convolution as the gradient of a convolution).
"""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import senryu as hk

KEY = jax.random.PRNGKey(42)


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    assert spec(actual) == spec(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=rtol, atol=atol)


def run_both(build, *inputs, rtol=1e-5, atol=1e-5):
    """Builds ``build(lib)`` with both libraries; checks params (names, shapes, dtypes and init
    values from the same key) and outputs given haiku's params. Returns (params, ours, theirs)."""
    theirs = haiku.transform(lambda *a: build(haiku)(*a))
    ours = hk.transform(lambda *a: build(hk)(*a))
    pt = theirs.init(KEY, *inputs)
    po = ours.init(KEY, *inputs)
    assert sorted(po) == sorted(pt)
    assert spec(po) == spec(pt)
    assert_close(po, pt, rtol=rtol, atol=atol)  # identical initialisation
    out_t = theirs.apply(pt, None, *inputs)
    out_o = ours.apply(pt, None, *inputs)
    assert_close(out_o, out_t, rtol=rtol, atol=atol)
    return pt, out_o, out_t


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


# ----------------------------------------------------------------------------- references


def ref_conv(x, w, stride, rate, pads, groups):
    """Channels-last batched N-d convolution by explicit loops (float64)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n = x.ndim - 2
    kernel = w.shape[:n]
    x = np.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    eff = [(k - 1) * r + 1 for k, r in zip(kernel, rate)]
    out_sizes = [(size - e) // s + 1 for size, e, s in zip(x.shape[1:-1], eff, stride)]
    cin, cout = w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    out = np.zeros((x.shape[0], *out_sizes, cout))
    for idx in np.ndindex(*out_sizes):
        for kidx in np.ndindex(*kernel):
            pos = tuple(i * s + k * r for i, s, k, r in zip(idx, stride, kidx, rate))
            patch = x[(slice(None),) + pos]  # [N, C]
            for g in range(groups):
                o = slice(g * cout_g, (g + 1) * cout_g)
                out[(slice(None),) + idx + (o,)] += (
                    patch[:, g * cin:(g + 1) * cin] @ w[kidx][:, o])
    return out


def ref_conv_transpose_explicit(x, w, stride, pads):
    """Channels-last transposed convolution by scattering (float64): input element ``j`` through
    kernel tap ``t`` lands on output position ``j * stride + low - t``."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)  # [*K, O, C]
    n = x.ndim - 2
    kernel = w.shape[:n]
    out_sizes = [(i - 1) * s + 1 + lo + hi - k + 1
                 for i, s, (lo, hi), k in zip(x.shape[1:-1], stride, pads, kernel)]
    out = np.zeros((x.shape[0], *out_sizes, w.shape[-2]))
    for jdx in np.ndindex(*x.shape[1:-1]):
        for tdx in np.ndindex(*kernel):
            pos = tuple(j * s + lo - t for j, s, (lo, _), t in zip(jdx, stride, pads, tdx))
            if all(0 <= p < o for p, o in zip(pos, out_sizes)):
                out[(slice(None),) + pos] += x[(slice(None),) + jdx] @ w[tdx].T
    return out


def ref_conv_transpose_grad(x, w, stride, padding, out_sizes):
    """Transposed convolution as the gradient of a strided convolution (TF semantics)."""
    n = x.ndim - 2
    flipped = jnp.flip(jnp.asarray(w, jnp.float32), axis=tuple(range(n)))  # [*K, O, C] as HWIO
    dn = lax.conv_dimension_numbers((1, *out_sizes, w.shape[-2]), flipped.shape,
                                    ("N" + "DHW"[-n:] + "C", "DHW"[-n:] + "IO",
                                     "N" + "DHW"[-n:] + "C"))
    forward = lambda z: lax.conv_general_dilated(  # noqa: E731
        z, flipped, stride, padding, dimension_numbers=dn, precision=lax.Precision.HIGHEST)
    z = jnp.zeros((x.shape[0], *out_sizes, w.shape[-2]), jnp.float32)
    _, vjp = jax.vjp(forward, z)
    return np.asarray(vjp(jnp.asarray(x, jnp.float32))[0], np.float64)


def to_last(x, channels_first):
    return jnp.moveaxis(x, 1, -1) if channels_first else x


def to_first(x, channels_first):
    return jnp.moveaxis(x, -1, 1) if channels_first else x


def padding_spec(lib, name, n):
    """The padding argument named ``name`` for ``n`` spatial dims, built with ``lib``."""
    return {
        "SAME": "SAME",
        "VALID": "VALID",
        "SAME_LOWER": "SAME_LOWER",
        "pairs": tuple([(1, 0), (0, 2), (2, 1)][:n]),
        "causal": lib.pad.causal,
        "fns": tuple([lib.pad.full, lib.pad.reverse_causal, lib.pad.same][:n]),
    }[name]


def explicit_pads(name, n, in_sizes, kernel, stride, rate):
    eff = [(k - 1) * r + 1 for k, r in zip(kernel, rate)]
    if name in ("SAME", "VALID", "SAME_LOWER"):
        return lax.padtype_to_pads(in_sizes, eff, stride, name)
    if name == "pairs":
        return [(1, 0), (0, 2), (2, 1)][:n]
    if name == "causal":
        return [(e - 1, 0) for e in eff]
    fns = [lambda e: (e - 1, e - 1), lambda e: (0, e - 1), lambda e: ((e - 1) // 2, e // 2)]
    return [fns[d](e) for d, e in enumerate(eff)]


# ----------------------------------------------------------------------------- ConvND grid

SPATIAL = {1: (7,), 2: (6, 5), 3: (4, 3, 5)}
KERNEL = {1: (3,), 2: (3, 2), 3: (2, 3, 1)}

PADDINGS = ["SAME", "VALID", "SAME_LOWER", "pairs", "causal", "fns"]
# The data format is orthogonal to the padding: channels-first only with two paddings; the
# rarer paddings only in 2D.
CONV_GRID = [
    (n, channels_first, stride, rate, padding)
    for n, channels_first, (stride, rate), padding in itertools.product(
        [1, 2], [False, True], [(1, 1), (2, 1), (1, 2)], PADDINGS)
    if (not channels_first or padding in ("SAME", "pairs"))
    and (n == 2 or padding not in ("SAME_LOWER", "fns"))
]


@pytest.mark.parametrize("n,channels_first,stride,rate,padding", CONV_GRID)
def test_convnd_matches_haiku_and_reference(n, channels_first, stride, rate, padding):
    fmt = "channels_first" if channels_first else "channels_last"
    x_last = rand((2, *SPATIAL[n], 3))
    x = to_first(x_last, channels_first)

    def build(lib):
        return lambda x: lib.ConvND(n, 4, KERNEL[n], stride=stride, rate=rate,
                                    padding=padding_spec(lib, padding, n), data_format=fmt)(x)

    params, out, _ = run_both(build, x)
    w, b = params["conv_nd"]["w"], params["conv_nd"]["b"]
    assert b.shape == ((4,) + (1,) * n if channels_first else (4,))
    pads = explicit_pads(padding, n, SPATIAL[n], KERNEL[n], (stride,) * n, (rate,) * n)
    expected = ref_conv(x_last, w, (stride,) * n, (rate,) * n, pads, 1) + np.ravel(b)
    np.testing.assert_allclose(to_last(out, channels_first), expected, rtol=1e-5, atol=1e-5)


CONV3D_GRID = list(itertools.product([False, True], [(1, "SAME"), (2, "VALID"), (1, "pairs")]))


@pytest.mark.parametrize("channels_first,stride_padding", CONV3D_GRID)
def test_conv3d_matches_haiku_and_reference(channels_first, stride_padding):
    stride, padding = stride_padding
    x_last = rand((1, *SPATIAL[3], 2))
    x = to_first(x_last, channels_first)
    fmt = "NCDHW" if channels_first else "NDHWC"

    def build(lib):
        return lambda x: lib.Conv3D(3, KERNEL[3], stride=stride,
                                    padding=padding_spec(lib, padding, 3), data_format=fmt)(x)

    params, out, _ = run_both(build, x)
    w, b = params["conv3_d"]["w"], params["conv3_d"]["b"]
    pads = explicit_pads(padding, 3, SPATIAL[3], KERNEL[3], (stride,) * 3, (1,) * 3)
    expected = ref_conv(x_last, w, (stride,) * 3, (1,) * 3, pads, 1) + np.ravel(b)
    np.testing.assert_allclose(to_last(out, channels_first), expected, rtol=1e-5, atol=1e-5)


# unbatched, with_bias and mask vary with the other options so that each value of each is covered.
OPTION_GRID = [
    (cls, channels_first, groups, (cls == "Conv1D") != channels_first,
     (groups == 1) != (cls == "Conv2D"), channels_first != (groups == 3))
    for cls, channels_first, groups in itertools.product(
        ["Conv1D", "Conv2D"], [False, True], [1, 3])
]


@pytest.mark.parametrize("cls,channels_first,groups,with_bias,masked,unbatched", OPTION_GRID)
def test_conv_options_match_haiku_and_reference(cls, channels_first, groups, with_bias, masked,
                                                unbatched):
    n = int(cls[4])
    fmt = {1: "NCW", 2: "NCHW"}[n] if channels_first else {1: "NWC", 2: "NHWC"}[n]
    x_last = rand((2, *SPATIAL[n], 6), seed=1)
    w_shape = KERNEL[n] + (6 // groups, 9)
    mask = (np.random.RandomState(3).rand(*w_shape) > 0.5).astype(np.float32) if masked else None
    x = to_first(x_last, channels_first)
    if unbatched:
        x = x[0]

    def build(lib):
        return lambda x: getattr(lib, cls)(9, KERNEL[n], stride=(2,) + (1,) * (n - 1),
                                           with_bias=with_bias, data_format=fmt, mask=mask,
                                           feature_group_count=groups, w_init=W_INIT,
                                           b_init=B_INIT)(x)

    params, out, _ = run_both(build, x)
    name = cls.lower().replace("d", "_d")
    assert list(params) == [name]
    assert sorted(params[name]) == (["b", "w"] if with_bias else ["w"])
    w = params[name]["w"]
    assert w.shape == w_shape
    if masked:
        w = w * mask
    stride = (2,) + (1,) * (n - 1)
    pads = lax.padtype_to_pads(SPATIAL[n], KERNEL[n], stride, "SAME")
    expected = ref_conv(x_last, w, stride, (1,) * n, pads, groups)
    if with_bias:
        expected = expected + np.ravel(params[name]["b"])
    if unbatched:
        expected = expected[0]
        out = to_last(out[None], channels_first)[0]
    else:
        out = to_last(out, channels_first)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_conv_default_initializer_is_truncated_normal_over_fan_in():
    x = jnp.ones([1, 5, 5, 4])
    params = hk.transform(lambda x: hk.Conv2D(8, (3, 2), feature_group_count=2)(x)).init(KEY, x)
    manual = hk.transform(lambda: hk.get_parameter(
        "w", [3, 2, 2, 8], init=hk.initializers.TruncatedNormal(1 / np.sqrt(3 * 2 * 2)))).init(KEY)
    np.testing.assert_array_equal(params["conv2_d"]["w"], manual["~"]["w"])
    np.testing.assert_array_equal(params["conv2_d"]["b"], np.zeros(8))


def test_conv_subclasses_are_convnd_with_their_formats():
    for cls, n, fmt in [(hk.Conv1D, 1, "NWC"), (hk.Conv2D, 2, "NHWC"), (hk.Conv3D, 3, "NDHWC")]:
        def f():
            mod = cls(2, 3)
            assert isinstance(mod, hk.ConvND)
            assert mod.num_spatial_dims == n and mod.data_format == fmt
            assert mod.kernel_shape == (3,) * n and mod.stride == (1,) * n
            assert mod.channel_index == -1
        hk.transform(f).init(None)
    for cls, n, fmt in [(hk.Conv1DTranspose, 1, "NWC"), (hk.Conv2DTranspose, 2, "NHWC"),
                        (hk.Conv3DTranspose, 3, "NDHWC")]:
        def g():
            mod = cls(2, 3)
            assert isinstance(mod, hk.ConvNDTranspose)
            assert mod.num_spatial_dims == n and mod.data_format == fmt and mod.padding == "SAME"
        hk.transform(g).init(None)


def test_conv_padding_function_is_resolved_with_the_dilated_kernel():
    def f():
        mod = hk.Conv2D(1, (3, 2), rate=(1, 3), padding=hk.pad.causal)
        assert mod.padding == ((2, 0), (3, 0))
    hk.transform(f).init(None)


def test_conv4d_matches_haiku():
    x = rand((1, 3, 2, 3, 2, 2))
    run_both(lambda lib: lambda x: lib.ConvND(4, 2, 2, stride=(1, 2, 1, 1), w_init=W_INIT,
                                              b_init=B_INIT)(x), x)


# ----------------------------------------------------------------------------- transposes

# Channels-first only with stride 2 (the format is orthogonal to the rest).
TRANSPOSE_GRID = [
    (n, stride == 2, stride, kernel, padding, output_shape)
    for n, stride, kernel, padding, output_shape in itertools.product(
        [1, 2], [1, 2, 3], [1, 3], ["SAME", "VALID", "pairs"], [None, "other"])
    if not (padding == "pairs" and output_shape is not None)
    and (n == 1 or (kernel, stride) == (3, 2))
]


def transpose_out_sizes(in_sizes, kernel, stride, padding, output_shape):
    """Output sizes: the default, or the other size a strided convolution maps back to ``in``."""
    sizes = []
    for i, k, s in zip(in_sizes, kernel, stride):
        default = i * s if padding == "SAME" else (i - 1) * s + max(k, s)
        if output_shape is None:
            sizes.append(default)
            continue
        ok = [o for o in range(1, 40) if o != default and (
            (padding == "SAME" and -(-o // s) == i) or
            (padding == "VALID" and o >= k and -(-(o - k + 1) // s) == i))]
        sizes.append(ok[0] if ok else default)
    return tuple(sizes)


@pytest.mark.parametrize("n,channels_first,stride,kernel,padding,output_shape", TRANSPOSE_GRID)
def test_conv_transpose_matches_haiku_and_references(n, channels_first, stride, kernel, padding,
                                                     output_shape):
    in_sizes = SPATIAL[n][:n]
    x_last = rand((2, *in_sizes, 3), seed=2)
    x = to_first(x_last, channels_first)
    fmt = "channels_first" if channels_first else "channels_last"
    kernel_shape = (kernel,) + (max(kernel - 1, 1),) * (n - 1)
    strides = (stride,) * n
    pairs = tuple([(1, 2), (0, 1)][:n])
    pad_arg = pairs if padding == "pairs" else padding
    out_sizes = (None if padding == "pairs" else
                 transpose_out_sizes(in_sizes, kernel_shape, strides, padding, output_shape))
    os_arg = out_sizes if output_shape is not None else None

    w_init = None if kernel == 3 else W_INIT

    def build(lib):
        return lambda x: lib.ConvNDTranspose(n, 4, kernel_shape, stride=stride, output_shape=os_arg,
                                             padding=pad_arg, data_format=fmt, w_init=w_init,
                                             b_init=B_INIT)(x)

    params, out, _ = run_both(build, x)
    w, b = params["conv_nd_transpose"]["w"], params["conv_nd_transpose"]["b"]
    assert w.shape == kernel_shape + (4, 3)
    out = to_last(out, channels_first)
    if padding == "pairs":
        expected = ref_conv_transpose_explicit(x_last, w, strides, pairs)
    else:
        assert out.shape[1:-1] == out_sizes
        expected = ref_conv_transpose_grad(x_last, w, strides, padding, out_sizes)
    np.testing.assert_allclose(out, expected + np.ravel(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls,unbatched", list(itertools.product(
    ["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"], [False, True])))
def test_conv_transpose_classes_match_haiku(cls, unbatched):
    masked = unbatched
    n = int(cls[4])
    x = rand((2, *SPATIAL[n], 3), seed=4)
    if unbatched:
        x = x[0]
    w_shape = KERNEL[n] + (5, 3)
    mask = (np.random.RandomState(5).rand(*w_shape) > 0.5).astype(np.float32) if masked else None

    def build(lib):
        return lambda x: getattr(lib, cls)(5, KERNEL[n], stride=2, mask=mask, w_init=W_INIT,
                                           b_init=B_INIT)(x)

    params, out, _ = run_both(build, x)
    assert out.shape == ((2,) if not unbatched else ()) + tuple(2 * s for s in SPATIAL[n]) + (5,)


def test_conv_transpose_default_initializer():
    x = jnp.ones([1, 4, 4, 3])
    params = hk.transform(lambda x: hk.Conv2DTranspose(5, (3, 2))(x)).init(KEY, x)
    manual = hk.transform(lambda: hk.get_parameter(
        "w", [3, 2, 5, 3], init=hk.initializers.TruncatedNormal(1 / np.sqrt(3 * 2 * 3)))).init(KEY)
    np.testing.assert_array_equal(params["conv2_d_transpose"]["w"], manual["~"]["w"])


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("cls", ["Conv2D", "Conv2DTranspose"])
def test_float64_keeps_dtype_and_matches_haiku(cls):
    with jax.enable_x64(True):
        x = rand((2, 5, 4, 3), dtype=np.float64)
        params, out, _ = run_both(lambda lib: lambda x: getattr(lib, cls)(4, 3, stride=2)(x), x,
                                  rtol=1e-12, atol=1e-12)
        assert out.dtype == jnp.float64
        assert all(p.dtype == jnp.float64 for p in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("cls", ["Conv2D", "Conv1DTranspose"])
def test_bfloat16_keeps_dtype_and_matches_haiku(cls):
    n = int(cls[4])
    x = rand((2, *SPATIAL[n], 3), dtype=jnp.bfloat16)
    params, out, _ = run_both(lambda lib: lambda x: getattr(lib, cls)(4, 3)(x), x,
                              rtol=1e-2, atol=1e-2)
    assert out.dtype == jnp.bfloat16
    assert all(p.dtype == jnp.bfloat16 for p in jax.tree_util.tree_leaves(params))


# ----------------------------------------------------------------------------- jit and grad


@pytest.mark.parametrize("cls,kwargs", [
    ("Conv2D", dict(stride=2, rate=2, padding=haiku.pad.causal, feature_group_count=3)),
    ("Conv1D", dict(stride=3, data_format="NCW")),
    ("Conv2DTranspose", dict(stride=2, output_shape=(14, 12), padding="VALID")),
    ("Conv1DTranspose", dict(stride=2, padding=((1, 2),))),
])
def test_jit_and_grad_match_haiku(cls, kwargs):
    n = int(cls[4])
    x = rand((2, *SPATIAL[n], 3), seed=6)
    kw = lambda lib: {k: (getattr(lib.pad, v.__name__) if callable(v) else v)  # noqa: E731
                      for k, v in kwargs.items()}
    theirs = haiku.transform(lambda x: getattr(haiku, cls)(6, 3, w_init=W_INIT, **kw(haiku))(x))
    ours = hk.transform(lambda x: getattr(hk, cls)(6, 3, w_init=W_INIT, **kw(hk))(x))
    params = theirs.init(KEY, x)
    eager = ours.apply(params, None, x)
    jitted = jax.jit(ours.apply)(params, None, x)
    assert_close(jitted, eager)

    def loss(apply):
        return lambda p, x: jnp.sum(jnp.sin(apply(p, None, x)))

    g_ours = jax.jit(jax.grad(loss(ours.apply), argnums=(0, 1)))(params, x)
    g_theirs = jax.grad(loss(theirs.apply), argnums=(0, 1))(params, x)
    assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-5)


def test_jitted_init_matches_eager_init():
    x = rand((1, 4, 4, 2))
    f = hk.transform(lambda x: hk.Conv2D(2, 3)(x))
    assert_close(jax.jit(f.init)(KEY, x), f.init(KEY, x), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- errors


NAMES = {"Conv2D": "conv2_d", "Conv2DTranspose": "conv2_d_transpose", "ConvND": "conv_nd"}


def init_error(f, *args):
    return hk.transform(f).init(KEY, *args)


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"conv2_d: Conv2D expects inputs of rank 4 \(batched\) "
                                         r"or 3 \(unbatched\), but got an input of shape \(3, 2\)"):
        init_error(lambda: hk.Conv2D(2, 3)(jnp.ones([3, 2])))
    with pytest.raises(ValueError, match=r"conv1_d_transpose: Conv1DTranspose expects inputs of "
                                         r"rank 3 .* shape \(1, 2, 3, 4\)"):
        init_error(lambda: hk.Conv1DTranspose(2, 3)(jnp.ones([1, 2, 3, 4])))


def test_channel_count_change_is_rejected():
    def twice():
        conv = hk.Conv2D(4, 3, w_init=W_INIT)
        conv(jnp.ones([1, 5, 5, 3]))
        return conv(jnp.ones([1, 5, 5, 2]))

    with pytest.raises(ValueError, match=r"conv2_d: Conv2D got inputs with 2 channels, which needs "
                                         r"'w' of shape \(3, 3, 2, 4\), but its parameter "
                                         r"'conv2_d/w' has shape \(3, 3, 3, 4\)"):
        init_error(twice)

    f = hk.transform(lambda x: hk.Conv1DTranspose(4, 3, name="up", w_init=W_INIT)(x))
    params = f.init(KEY, jnp.ones([1, 5, 3]))
    with pytest.raises(ValueError, match=r"up: Conv1DTranspose got inputs with 7 channels.*"
                                         r"'up/w' has shape \(3, 4, 3\)"):
        f.apply(params, None, jnp.ones([1, 5, 7]))


@pytest.mark.parametrize("cls", ["Conv2D", "Conv2DTranspose"])
def test_unknown_padding_string_is_rejected(cls):
    name = NAMES[cls]
    with pytest.raises(ValueError, match=rf"{name}: unknown padding 'FOO'; use one of 'SAME', "
                                         "'VALID'"):
        init_error(lambda: getattr(hk, cls)(2, 3, padding="FOO"))


@pytest.mark.parametrize("cls", ["Conv2D", "Conv2DTranspose", "ConvND"])
def test_unknown_data_format_is_rejected(cls):
    args = (2, 2, 3) if cls == "ConvND" else (2, 3)
    name = NAMES[cls]
    with pytest.raises(ValueError, match=rf"{name}: Unable to extract channel information from "
                                         r"data_format 'NHCW'"):
        init_error(lambda: getattr(hk, cls)(*args, data_format="NHCW"))


def test_kernel_larger_than_valid_input_is_rejected():
    with pytest.raises(ValueError, match=r"conv2_d: the effective kernel size \(5, 5\) "
                                         r"\(kernel_shape \(3, 3\), rate \(2, 2\)\) is larger than "
                                         r"the padded input \(spatial size \(4, 6\), padding "
                                         r"'VALID'\)"):
        init_error(lambda: hk.Conv2D(2, 3, rate=2, padding="VALID", w_init=W_INIT)(
            jnp.ones([1, 4, 6, 1])))
    with pytest.raises(ValueError, match=r"conv1_d: the effective kernel size \(4,\)"):
        init_error(lambda: hk.Conv1D(2, 4, padding=[(1, 0)], w_init=W_INIT)(jnp.ones([1, 2, 1])))


def test_rate_and_stride_above_one_together_are_supported_like_haiku():
    x = rand((1, 9, 8, 2))
    _, out, _ = run_both(lambda lib: lambda x: lib.Conv2D(3, 3, stride=2, rate=2, w_init=W_INIT)(x),
                         x)
    assert out.shape == (1, 5, 4, 3)


def test_bad_constructor_arguments_are_rejected():
    with pytest.raises(TypeError, match=r"conv2_d: kernel_shape must be an int or a sequence of 1 "
                                        r"or 2 ints.*got \(3, 3, 3\)"):
        init_error(lambda: hk.Conv2D(2, (3, 3, 3)))
    with pytest.raises(TypeError, match=r"conv2_d: stride must be an int or a sequence"):
        init_error(lambda: hk.Conv2D(2, 3, stride=(1, 1, 1)))
    with pytest.raises(ValueError, match=r"conv2_d: every rate must be >= 1, got 0"):
        init_error(lambda: hk.Conv2D(2, 3, rate=0))
    with pytest.raises(ValueError, match=r"conv_nd: num_spatial_dims must be an int >= 1, got 0"):
        init_error(lambda: hk.ConvND(0, 2, 3))
    with pytest.raises(TypeError, match=r"conv2_d: invalid padding .*padding must be a scalar or "
                                        r"a sequence of length 1 or 2"):
        init_error(lambda: hk.Conv2D(2, 3, padding=(hk.pad.same,) * 3))
    with pytest.raises(TypeError, match=r"conv2_d_transpose: padding functions are not supported"):
        init_error(lambda: hk.Conv2DTranspose(2, 3, padding=hk.pad.same))
    with pytest.raises(ValueError, match=r"conv2_d_transpose: output_shape can only be given with "
                                         r"padding 'SAME' or 'VALID'"):
        init_error(lambda: hk.Conv2DTranspose(2, 3, output_shape=5, padding=[(1, 1)]))


def test_bad_groups_and_mask_are_rejected():
    with pytest.raises(ValueError, match=r"conv2_d: the number of input channels \(3\) must be a "
                                         r"multiple of feature_group_count \(2\)"):
        init_error(lambda: hk.Conv2D(4, 3, feature_group_count=2)(jnp.ones([1, 4, 4, 3])))
    with pytest.raises(ValueError, match=r"conv2_d: output_channels \(3\) must be a multiple of "
                                         r"feature_group_count \(2\)"):
        init_error(lambda: hk.Conv2D(3, 3, feature_group_count=2)(jnp.ones([1, 4, 4, 4])))
    with pytest.raises(ValueError, match=r"conv2_d: mask must have the kernel's shape "
                                         r"\(3, 3, 3, 4\), got \(3, 3, 3, 5\)"):
        init_error(lambda: hk.Conv2D(4, 3, mask=jnp.ones([3, 3, 3, 5]))(jnp.ones([1, 4, 4, 3])))
    with pytest.raises(ValueError, match=r"conv2_d_transpose: mask must have the kernel's shape "
                                         r"\(3, 3, 4, 3\)"):
        init_error(lambda: hk.Conv2DTranspose(4, 3, mask=jnp.ones([3, 3, 3, 4]))(
            jnp.ones([1, 4, 4, 3])))


def test_inconsistent_output_shape_is_rejected():
    with pytest.raises(ValueError, match=r"conv2_d_transpose: output_shape \(10, 10\) is "
                                         r"inconsistent with the input.*an output of size 10 in "
                                         r"spatial dimension 1 needs an input of size 5, but the "
                                         r"input has size 6"):
        init_error(lambda: hk.Conv2DTranspose(4, 3, stride=2, output_shape=10, w_init=W_INIT)(
            jnp.ones([1, 5, 6, 3])))


# ----------------------------------------------------------------------------- get_channel_index


def test_get_channel_index_matches_haiku_on_generated_formats():
    formats = ["channels_first", "channels_last", "N...C", "NC...", "BTHWD", "TBD", "NCHWC", "",
               "nchw", "NXC", "NCX"]
    formats += ["".join(t) for length in range(1, 5) for t in itertools.product("NCHWDBT.",
                                                                              repeat=length)]
    for fmt in formats:
        try:
            expected = haiku.get_channel_index(fmt)
        except ValueError:
            with pytest.raises(ValueError, match="Unable to extract channel information"):
                hk.get_channel_index(fmt)
        else:
            assert hk.get_channel_index(fmt) == expected, fmt


def test_get_channel_index_documented_examples():
    assert hk.get_channel_index("channels_last") == -1
    assert hk.get_channel_index("channels_first") == 1
    assert hk.get_channel_index("N...C") == -1
    assert hk.get_channel_index("NCHW") == 1
