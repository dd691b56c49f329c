"""Tests for ``senryu.initializers`` against dm-haiku 0.0.17 (imported as ``haiku``) as an oracle.

Each random initializer must give bit-identical values to Haiku's for the same transform key. The
shape/dtype grid is kept small on purpose: every new (shape, dtype) pair costs an XLA compilation.
"""

import collections.abc
import itertools
import warnings

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
import senryu.initializers  # noqa: F401  (makes hk.initializers available)

# (shape, dtype) pairs for the random initializers; each new pair costs several compilations.
SHAPE_DTYPES = [((3, 4), jnp.float32), ((3, 4), jnp.bfloat16), ((2, 3, 4), jnp.float32)]
SCALES = [0.1, 0.3, 1.0, 2.0, 5.0]

# Haiku (the oracle) warns when it casts complex values to real; ours must not (checked below).
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Casting complex values to real:numpy.exceptions.ComplexWarning"),
    pytest.mark.filterwarnings("ignore:Casting from complex to real:DeprecationWarning"),
]


def _make(name, *args, **kwargs):
    return (getattr(haiku.initializers, name)(*args, **kwargs),
            getattr(hk.initializers, name)(*args, **kwargs))


def _init_both(inits, shape, dtype, seed=0):
    h_init, s_init = inits
    h_f = haiku.transform(lambda: haiku.get_parameter("w", shape, dtype, init=h_init))
    s_f = hk.transform(lambda: hk.get_parameter("w", shape, dtype, init=s_init))
    key = jax.random.PRNGKey(seed)
    return h_f.init(key)["~"]["w"], s_f.init(key)["~"]["w"]


def _as_np(x):
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def assert_identical(expected, actual):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(_as_np(actual), _as_np(expected))


def check_same(name, args, kwargs, shape, dtype, seed=0):
    expected, actual = _init_both(_make(name, *args, **kwargs), shape, dtype, seed)
    assert_identical(expected, actual)
    return actual


# ---------------------------------------------------------------------------------------------
# Deterministic initializers.


@pytest.mark.parametrize("constant,shape,dtype", [
    (3, (2, 2), jnp.float32),
    (3, (2, 2), jnp.int32),
    (3.7, (2,), jnp.int32),
    (1.5, (), jnp.float32),
    (0.1, (3, 4), jnp.bfloat16),
    (np.arange(2.0), (3, 2), jnp.bfloat16),
    (jnp.arange(2.0), (3, 2), jnp.float32),
    (1 + 2j, (2,), jnp.complex64),
    (1 + 2j, (2,), jnp.float32),  # the real part is kept, like Haiku
])
def test_constant_matches_haiku(constant, shape, dtype):
    check_same("Constant", (constant,), {}, shape, dtype)


def test_constant_bad_shape():
    with pytest.raises(ValueError, match=r"constant has shape \(3,\).*requested shape \(3, 2\)"):
        hk.initializers.Constant(jnp.arange(3.0))((3, 2), jnp.float32)


@pytest.mark.parametrize("gain,shape,dtype", [
    (1.0, (3, 4), jnp.float32),
    (2.0, (4, 3), jnp.float32),
    (-1.5, (2, 3, 4), jnp.float32),
    (2.5, (3, 4), jnp.int32),
    (2.5, (3, 4), jnp.bfloat16),
    (jnp.arange(4.0), (3, 4), jnp.float32),
    (jnp.arange(4.0), (3, 4), jnp.bfloat16),
    (1.0, (3, 4), jnp.complex64),
])
def test_identity_matches_haiku(gain, shape, dtype):
    check_same("Identity", (gain,), {}, shape, dtype)


@pytest.mark.parametrize("shape", [(), (3,)])
def test_identity_needs_rank_2(shape):
    with pytest.raises(ValueError, match=r"Identity initializer requires at least a 2D shape"):
        hk.initializers.Identity()(shape, jnp.float32)


# ---------------------------------------------------------------------------------------------
# Simple random initializers.


@pytest.mark.parametrize("shape,dtype", SHAPE_DTYPES)
def test_random_normal_matches_haiku(shape, dtype):
    check_same("RandomNormal", (), {}, shape, dtype)
    check_same("RandomNormal", (0.3, 0.7), {}, shape, dtype, seed=1)
    check_same("RandomNormal", (), dict(stddev=jnp.array(0.3), mean=np.array(-2.0)), shape, dtype)


@pytest.mark.parametrize("shape,dtype", SHAPE_DTYPES)
def test_random_uniform_matches_haiku(shape, dtype):
    check_same("RandomUniform", (), {}, shape, dtype)
    check_same("RandomUniform", (-0.3, 0.7), {}, shape, dtype, seed=1)
    check_same("RandomUniform", (jnp.array(-1.0), jnp.array(3.0)), {}, shape, dtype)


@pytest.mark.parametrize("shape,dtype", SHAPE_DTYPES)
def test_truncated_normal_matches_haiku(shape, dtype):
    check_same("TruncatedNormal", (), {}, shape, dtype)
    check_same("TruncatedNormal", (0.3, 0.7), {}, shape, dtype, seed=1)
    w = check_same("TruncatedNormal", (), dict(stddev=0.5, mean=1.0, lower=-1.0, upper=3.0),
                   shape, dtype)
    assert float(jnp.min(w)) >= 0.5 and float(jnp.max(w)) <= 2.5


def test_broadcast_hyperparameters_match_haiku():
    stddev = jnp.array([0.1, 1.0, 10.0, 100.0])
    check_same("RandomNormal", (stddev, jnp.arange(4.0)), {}, (3, 4), jnp.float32)
    check_same("TruncatedNormal", (stddev, jnp.arange(4.0)), {}, (3, 4), jnp.float32)
    check_same("RandomUniform", (jnp.zeros(4), stddev), {}, (3, 4), jnp.float32)


@pytest.mark.parametrize("name,args", [
    ("RandomNormal", ()),
    ("RandomNormal", (0.5, 1.0)),
    ("TruncatedNormal", ()),
    ("TruncatedNormal", (0.5, 1 + 1j)),
])
def test_complex_matches_haiku(name, args):
    w = check_same(name, args, {}, (3, 4), jnp.complex64)
    assert float(jnp.abs(w.imag).max()) > 0


@pytest.mark.parametrize("shape,dtype", SHAPE_DTYPES)
def test_uniform_scaling_matches_haiku(shape, dtype):
    for scale in (1.0, 0.3, 2.0):
        check_same("UniformScaling", (scale,), {}, shape, dtype)


# ---------------------------------------------------------------------------------------------
# VarianceScaling.


@pytest.mark.parametrize("shape_dtype,distribution", list(itertools.product(
    SHAPE_DTYPES, ["truncated_normal", "normal", "uniform"])))
def test_variance_scaling_matches_haiku(shape_dtype, distribution):
    shape, dtype = shape_dtype
    for mode, scale in itertools.product(["fan_in", "fan_out", "fan_avg"], SCALES):
        check_same("VarianceScaling", (scale, mode, distribution), {}, shape, dtype)


@pytest.mark.parametrize("shape", [(), (5,)])
def test_variance_scaling_low_rank_matches_haiku(shape):
    for mode, scale in itertools.product(["fan_in", "fan_out", "fan_avg"], SCALES):
        check_same("VarianceScaling", (scale, mode, "normal"), {}, shape, jnp.float32)


# fan_in_axes on a (2, 3, 4) weight gives fans 1, 2, 3, 4, 6, 8, 12, 24 without new compilations,
# which also sweeps the float32 rounding of the truncated-normal standard deviation.
@pytest.mark.parametrize("fan_in_axes", [(0,), (1,), (-1,), (0, 1), (0, 0), (2, 0), (), [1, 2]])
def test_variance_scaling_fan_in_axes_matches_haiku(fan_in_axes):
    for mode, distribution in itertools.product(["fan_in", "fan_out", "fan_avg"],
                                                ["truncated_normal", "normal", "uniform"]):
        scales = SCALES if distribution == "truncated_normal" else [1.5]
        for scale in scales:
            check_same("VarianceScaling", (scale, mode, distribution),
                       dict(fan_in_axes=fan_in_axes), (2, 3, 4), jnp.float32)
    # Rank <= 2 shapes ignore fan_in_axes, as in Haiku.
    check_same("VarianceScaling", (1.0, "fan_out", "normal"), dict(fan_in_axes=fan_in_axes),
               (3, 4), jnp.float32)


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal"])
def test_variance_scaling_complex_matches_haiku(distribution):
    for mode in ["fan_in", "fan_out", "fan_avg"]:
        check_same("VarianceScaling", (2.0, mode, distribution), {}, (3, 4), jnp.complex64)


def test_variance_scaling_float16_matches_haiku():
    for mode, scale in itertools.product(["fan_in", "fan_avg"], SCALES):
        check_same("VarianceScaling", (scale, mode), {}, (3, 4), jnp.float16)


def test_variance_scaling_attributes_match_haiku():
    h, s = _make("VarianceScaling", 2.0, "fan_avg", "uniform", fan_in_axes=(0, 1))
    assert vars(s) == vars(h)
    for name, args in [("Constant", (2.0,)), ("Identity", (3.0,)), ("Orthogonal", (2.0, 0)),
                       ("RandomNormal", (2.0, 1.0)), ("RandomUniform", (1.0, 2.0)),
                       ("TruncatedNormal", (1.0, 2.0, -1.0, 1.0)), ("UniformScaling", (3.0,))]:
        h, s = _make(name, *args)
        assert vars(s) == vars(h), name


@pytest.mark.parametrize("kwargs,match", [
    (dict(scale=-1.0), r"`scale` must be a non-negative float, got scale=-1.0"),
    (dict(mode="fan_sum"), r"invalid `mode` argument 'fan_sum'; expected one of 'fan_in'"),
    (dict(distribution="untruncated_normal"),
     r"invalid `distribution` argument 'untruncated_normal'; expected one of 'truncated_normal'"),
])
def test_variance_scaling_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hk.initializers.VarianceScaling(**kwargs)


def test_variance_scaling_zero_scale_is_allowed():
    check_same("VarianceScaling", (0.0,), {}, (3, 4), jnp.float32)


def test_variance_scaling_bad_fan_in_axes():
    init = hk.initializers.VarianceScaling(fan_in_axes=(5,))
    f = hk.transform(lambda: hk.get_parameter("w", [2, 3, 4], init=init))
    with pytest.raises(ValueError, match=r"fan_in_axes=\(5,\) contains axis 5, out of range for "
                                         r"shape \(2, 3, 4\)"):
        f.init(jax.random.PRNGKey(0))


# ---------------------------------------------------------------------------------------------
# Orthogonal.


# These all decompose a 5x3 or a 6x4 matrix (one QR compilation each).
@pytest.mark.parametrize("shape,axis", [
    ((3, 5), -1), ((5, 3), -1), ((5, 3), 0), ((2, 3, 4), -1), ((4, 3, 2), 0), ((2, 4, 3), -2),
])
def test_orthogonal_matches_haiku(shape, axis):
    w = check_same("Orthogonal", (1.5, axis), {}, shape, jnp.float32)
    # Orthonormal rows or columns of the (shape[axis], rest) matrix, times the scale.
    m = jnp.moveaxis(w, axis, 0).reshape(shape[axis], -1) / 1.5
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)


def test_orthogonal_complex_matches_haiku():
    for shape in [(3, 5), (5, 3)]:
        check_same("Orthogonal", (), {}, shape, jnp.complex64)


def test_orthogonal_bfloat16():
    # Haiku fails here on CPU (no bfloat16 QR); we decompose in float32 and cast back.
    init = hk.initializers.Orthogonal()
    f = hk.transform(lambda: hk.get_parameter("w", [5, 3], jnp.bfloat16, init=init))
    w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    assert w.dtype == jnp.bfloat16
    w = np.asarray(w.astype(jnp.float32))
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=2e-2)


@pytest.mark.parametrize("shape", [(), (3,)])
def test_orthogonal_needs_rank_2(shape):
    with pytest.raises(ValueError, match=r"Orthogonal initializer requires at least a 2D shape"):
        hk.initializers.Orthogonal()(shape, jnp.float32)


def test_orthogonal_bad_axis():
    with pytest.raises(ValueError, match=r"axis=3 is out of range for shape \(3, 2\)"):
        hk.initializers.Orthogonal(axis=3)((3, 2), jnp.float32)


# ---------------------------------------------------------------------------------------------
# Whole programs, dtype errors, float64.


def test_program_with_many_initializers_matches_haiku():
    def program(lib):
        i = lib.initializers
        return [
            lib.get_parameter("a", [3, 4], init=i.VarianceScaling()),
            lib.get_parameter("b", [3, 4], init=i.RandomNormal()),
            lib.get_parameter("c", [4], init=i.Constant(0.5)),
            lib.get_parameter("d", [3, 4], init=i.TruncatedNormal()),
            lib.get_parameter("e", [3, 4], init=i.Orthogonal()),
            lib.get_parameter("f", [3, 4], init=i.UniformScaling()),
            lib.get_parameter("g", [3, 4], init=i.RandomUniform()),
        ]

    key = jax.random.PRNGKey(42)
    expected = haiku.transform(lambda: program(haiku)).init(key)
    actual = hk.transform(lambda: program(hk)).init(key)
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
    jax.tree_util.tree_map(assert_identical, expected, actual)


@pytest.mark.parametrize("name,args", [
    ("RandomNormal", ()), ("TruncatedNormal", ()), ("VarianceScaling", ()),
    ("Orthogonal", ()), ("RandomUniform", ()), ("UniformScaling", ()),
])
def test_integer_dtype_is_rejected(name, args):
    init = getattr(hk.initializers, name)(*args)
    with pytest.raises(ValueError, match=r"needs a floating point.* dtype, got dtype=int32"):
        init((3, 4), jnp.int32)


@pytest.mark.parametrize("init", [
    hk.initializers.RandomUniform(), hk.initializers.UniformScaling(),
    hk.initializers.VarianceScaling(distribution="uniform"),
])
def test_uniform_rejects_complex(init):
    with pytest.raises(ValueError, match=r"needs a floating point dtype, got dtype=complex64"):
        init((3, 4), jnp.complex64)


def test_float64_matches_haiku():
    with jax.enable_x64(True):
        for name, args in [("RandomNormal", (0.3, 0.7)), ("RandomUniform", (-1.0, 2.0)),
                           ("TruncatedNormal", (0.3, 0.7)), ("UniformScaling", (2.0,))]:
            w = check_same(name, args, {}, (3, 4), jnp.float64)
            assert w.dtype == jnp.float64
        for mode, dist in itertools.product(["fan_in", "fan_avg"],
                                            ["truncated_normal", "normal", "uniform"]):
            for scale in SCALES:
                check_same("VarianceScaling", (scale, mode, dist), {}, (3, 4), jnp.float64)


def test_no_warnings_on_complex_values():
    key = jax.random.PRNGKey(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hk.initializers.Constant(1 + 2j)((2,), jnp.float32)
        for init in [hk.initializers.VarianceScaling(), hk.initializers.TruncatedNormal(1.0, 1j)]:
            hk.transform(lambda: hk.get_parameter("w", [3, 4], jnp.complex64, init=init)).init(key)


def test_initializer_protocol():
    # Any callable (shape, dtype) -> array is an initializer; ours subclass the alias, like Haiku's.
    assert issubclass(hk.initializers.VarianceScaling, collections.abc.Callable)
    assert hk.initializers.Initializer.__origin__ is haiku.initializers.Initializer.__origin__
    f = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.ones))
    np.testing.assert_array_equal(f.init(None)["~"]["w"], np.ones(2))


def test_jitted_init_matches_haiku():
    for name, args in [("VarianceScaling", (2.0, "fan_avg")), ("RandomNormal", (0.3, 0.7))]:
        h_init, s_init = _make(name, *args)
        h_f = haiku.transform(lambda: haiku.get_parameter("w", [3, 4], init=h_init))
        s_f = hk.transform(lambda: hk.get_parameter("w", [3, 4], init=s_init))
        key = jax.random.PRNGKey(3)
        assert_identical(jax.jit(h_f.init)(key)["~"]["w"], jax.jit(s_f.init)(key)["~"]["w"])
