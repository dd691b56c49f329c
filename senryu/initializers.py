"""Initializers: callables ``(shape, dtype) -> array`` used to create parameters and state.

Every initializer in this module gives the same values as its dm-haiku 0.0.17 namesake for the same
transform key. The random ones draw exactly one key with :func:`senryu.next_rng_key`, so they
must be called inside a transformed function (typically through :func:`senryu.get_parameter`).

An initializer is any callable ``init(shape, dtype) -> jax.Array`` (the :data:`Initializer` type):

>>> import senryu as hk
>>> import jax
>>> import jax.numpy as jnp
>>> init: hk.initializers.Initializer = jnp.zeros
>>> f = hk.transform(lambda: hk.get_parameter("w", [2], init=init))
>>> f.init(jax.random.PRNGKey(0))
{'~': {'w': Array([0., 0.], dtype=float32)}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core

__all__ = [
    "Initializer",
    "Constant",
    "Identity",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "UniformScaling",
    "VarianceScaling",
]

# ``typing.Callable`` (unlike ``collections.abc.Callable``) lets the alias carry a docstring.
Initializer = Callable[[Sequence[int], Any], jax.Array]
Initializer.__doc__ = """The initializer protocol: any callable ``init(shape, dtype) -> jax.Array``.

Plain functions such as ``jnp.zeros`` qualify, as do the classes of ``hk.initializers``:

>>> import senryu as hk
>>> import jax
>>> import jax.numpy as jnp
>>> init: hk.initializers.Initializer = hk.initializers.Constant(0.5)
>>> init([2], jnp.float32)
Array([0.5, 0.5], dtype=float32)
"""

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it makes the truncated
# distribution used by VarianceScaling have the requested standard deviation.
_TRUNCATED_NORMAL_STDDEV = 0.87962566103423978

_VALID_MODES = ("fan_in", "fan_out", "fan_avg")
_VALID_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def _as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def _is_complex(dtype: Any) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def _real_dtype(dtype: Any) -> np.dtype:
    """float32 for complex64, float64 for complex128, the dtype itself otherwise."""
    return np.finfo(dtype).dtype if _is_complex(dtype) else np.dtype(dtype)


def _check_inexact(who: str, dtype: Any, allow_complex: bool = True) -> None:
    kinds = "floating point or complex" if allow_complex else "floating point"
    ok = jnp.issubdtype(dtype, jnp.floating) or (allow_complex and _is_complex(dtype))
    if not ok:
        raise ValueError(
            f"{who} samples random values and needs a {kinds} dtype, got dtype={np.dtype(dtype)}. "
            f"Create the parameter with e.g. dtype=jnp.float32, or use hk.initializers.Constant "
            f"for integer parameters."
        )


def _cast(value: Any, dtype: Any) -> jax.Array:
    """Converts a hyper-parameter to ``dtype``; a complex value cast to a real dtype keeps its real
    part (what an implicit cast would do, minus the warning)."""
    value = jnp.asarray(value)
    if _is_complex(value.dtype) and not _is_complex(dtype):
        value = jnp.real(value)
    return value.astype(dtype)


def _truncated_normal(key: jax.Array, lower: Any, upper: Any, shape: tuple[int, ...],
                      dtype: Any) -> jax.Array:
    """Unit truncated normal samples; complex dtypes get independent real and imaginary parts."""
    if _is_complex(dtype):
        parts = jax.random.truncated_normal(key, lower, upper, (2,) + shape, _real_dtype(dtype))
        return jax.lax.complex(parts[0], parts[1])
    return jax.random.truncated_normal(key, lower, upper, shape, dtype)


class Constant(Initializer):
    """Initializes with a constant (broadcast to the requested shape).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> hk.initializers.Constant(3)([2, 2], jnp.int32)
    Array([[3, 3],
           [3, 3]], dtype=int32)
    >>> hk.initializers.Constant(jnp.array([0.0, 1.0]))([3, 2], jnp.float32)
    Array([[0., 1.],
           [0., 1.],
           [0., 1.]], dtype=float32)
    """

    def __init__(self, constant: Union[float, int, complex, np.ndarray, jax.Array]):
        """Constructs a Constant initializer.

        Args:
          constant: value (scalar or array broadcastable to the parameter shape) to fill with.
        """
        self.constant = constant

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        value = jnp.asarray(self.constant)
        try:
            value = jnp.broadcast_to(value, shape)
        except ValueError:
            raise ValueError(
                f"Constant initializer: the constant has shape {value.shape}, which cannot be "
                f"broadcast to the requested shape {shape}. Pass a scalar or an array whose shape "
                f"broadcasts to {shape}."
            ) from None
        return _cast(value, dtype)


class Identity(Initializer):
    """Initializer that generates the identity matrix (or a batch of them, over leading axes).

    The last two axes hold ``gain * eye(shape[-2], shape[-1])``; non-square shapes get ones on the
    main diagonal.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> hk.initializers.Identity(2.0)([2, 3], jnp.float32)
    Array([[2., 0., 0.],
           [0., 2., 0.]], dtype=float32)
    """

    def __init__(self, gain: Union[float, np.ndarray, jax.Array] = 1.0):
        """Constructs an Identity initializer.

        Args:
          gain: multiplicative factor applied to the identity matrix.
        """
        self.gain = gain

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Identity initializer requires at least a 2D shape, got shape {shape} "
                f"(rank {len(shape)}). Use a shape such as (n, n), or a batch (..., n, m)."
            )
        eye = jnp.eye(shape[-2], shape[-1], dtype=dtype)
        if len(shape) > 2:
            eye = jnp.broadcast_to(eye, shape)
        return _cast(self.gain * eye, dtype)


class Orthogonal(Initializer):
    """Initializer for (semi-)orthogonal matrices, optionally scaled.

    The array is viewed as a matrix with ``shape[axis]`` rows and all other axes flattened into
    columns; that matrix has orthonormal rows if it has fewer rows than columns, orthonormal
    columns otherwise.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> f = hk.transform(lambda: hk.get_parameter("w", [4, 3], init=hk.initializers.Orthogonal()))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(jnp.allclose(w.T @ w, jnp.eye(3), atol=1e-5))
    True
    """

    def __init__(self, scale: float = 1.0, axis: int = -1):
        """Constructs an Orthogonal initializer.

        Args:
          scale: factor multiplying the orthogonal matrix.
          axis: the axis of the parameter holding the "output dimension" (the matrix rows).
        """
        self.scale = scale
        self.axis = axis

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Orthogonal initializer requires at least a 2D shape, got shape {shape} "
                f"(rank {len(shape)})."
            )
        rank = len(shape)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Orthogonal initializer: axis={self.axis} is out of range for shape {shape} "
                f"(rank {rank}); pass an axis in [{-rank}, {rank - 1}]."
            )
        _check_inexact("Orthogonal initializer", dtype)
        axis = self.axis % rank
        n_rows = shape[axis]
        n_cols = math.prod(shape) // n_rows if n_rows else 0
        matrix_shape = (n_rows, n_cols) if n_rows > n_cols else (n_cols, n_rows)
        sample = jax.random.normal(core.next_rng_key(), matrix_shape, dtype)
        # LAPACK has no half-precision QR: decompose in float32 and cast back.
        if np.dtype(dtype).itemsize < 4 and not _is_complex(dtype):
            sample = sample.astype(jnp.float32)
        q, r = jnp.linalg.qr(sample)
        # Fix the sign ambiguity of QR so the result is uniformly distributed (Haar measure).
        q = q * jnp.sign(jnp.diag(r))
        if n_rows < n_cols:
            q = q.T
        q = q.reshape((n_rows,) + shape[:axis] + shape[axis + 1:])
        q = jnp.moveaxis(q, 0, axis)
        return (self.scale * q).astype(dtype)


class RandomNormal(Initializer):
    """Initializes by sampling from a normal distribution ``mean + stddev * N(0, 1)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> init = hk.initializers.RandomNormal(stddev=0.01, mean=1.0)
    >>> f = hk.transform(lambda: hk.get_parameter("w", [1000], init=init))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(abs(w.mean() - 1.0) < 0.01), bool(abs(w.std() - 0.01) < 0.001)
    (True, True)
    """

    def __init__(self, stddev: Union[float, jax.Array] = 1.0, mean: Union[float, jax.Array] = 0.0):
        """Constructs a RandomNormal initializer.

        Args:
          stddev: standard deviation of the normal distribution.
          mean: mean of the normal distribution.
        """
        self.stddev = stddev
        self.mean = mean

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        _check_inexact("RandomNormal initializer", dtype)
        mean = _cast(self.mean, dtype)
        stddev = _cast(self.stddev, dtype)
        return mean + stddev * jax.random.normal(core.next_rng_key(), shape, dtype)


class RandomUniform(Initializer):
    """Initializes by sampling from a uniform distribution over ``[minval, maxval)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> init = hk.initializers.RandomUniform(-1.0, 1.0)
    >>> f = hk.transform(lambda: hk.get_parameter("w", [100], init=init))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(w.min() >= -1.0), bool(w.max() < 1.0)
    (True, True)
    """

    def __init__(self, minval: Union[float, jax.Array] = 0.0,
                 maxval: Union[float, jax.Array] = 1.0):
        """Constructs a RandomUniform initializer.

        Args:
          minval: lower bound (inclusive) of the uniform distribution.
          maxval: upper bound (exclusive) of the uniform distribution.
        """
        self.minval = minval
        self.maxval = maxval

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        _check_inexact("RandomUniform initializer", dtype, allow_complex=False)
        return jax.random.uniform(core.next_rng_key(), shape, dtype, self.minval, self.maxval)


class TruncatedNormal(Initializer):
    """Initializes by sampling from a truncated normal distribution.

    Samples are ``mean + stddev * z`` with ``z`` a unit normal truncated to ``[lower, upper]``
    (note: ``stddev`` is the scale before truncation). For complex dtypes the real and imaginary
    parts of ``z`` are drawn independently.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> init = hk.initializers.TruncatedNormal(stddev=0.5, mean=1.0)
    >>> f = hk.transform(lambda: hk.get_parameter("w", [100], init=init))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(w.min() >= 0.0), bool(w.max() <= 2.0)
    (True, True)
    """

    def __init__(self, stddev: Union[float, jax.Array] = 1.0,
                 mean: Union[float, complex, jax.Array] = 0.0,
                 lower: Union[float, jax.Array] = -2.0,
                 upper: Union[float, jax.Array] = 2.0):
        """Constructs a TruncatedNormal initializer.

        Args:
          stddev: scale of the distribution (standard deviation before truncation).
          mean: mean (centre) of the distribution; may be complex for complex parameters.
          lower: lower truncation bound, in units of ``stddev`` around ``mean``.
          upper: upper truncation bound, in units of ``stddev`` around ``mean``.
        """
        self.stddev = stddev
        self.mean = mean
        self.lower = lower
        self.upper = upper

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        _check_inexact("TruncatedNormal initializer", dtype)
        unscaled = _truncated_normal(core.next_rng_key(), self.lower, self.upper, shape, dtype)
        return _cast(self.stddev, dtype) * unscaled + _cast(self.mean, dtype)


def _compute_fans(shape: tuple[int, ...],
                  fan_in_axes: Sequence[int] | None = None) -> tuple[float, float]:
    """Number of input and output units of a weight of the given shape."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    if fan_in_axes is not None:
        rank = len(shape)
        for a in fan_in_axes:
            if not -rank <= a < rank:
                raise ValueError(
                    f"VarianceScaling: fan_in_axes={tuple(fan_in_axes)} contains axis {a}, out of "
                    f"range for shape {shape} (rank {rank})."
                )
        fan_in = math.prod(shape[a] for a in fan_in_axes)
        # Like Haiku 0.0.17: the output axes are those whose *non-negative* index is not listed,
        # so a negative entry counts towards fan_in without being removed from fan_out.
        fan_out = math.prod(d for i, d in enumerate(shape) if i not in fan_in_axes)
        return fan_in, fan_out
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(Initializer):
    """Initializer whose scale adapts to the shape of the array it initializes.

    With ``n`` the number of input units (``mode="fan_in"``), output units (``"fan_out"``) or their
    average (``"fan_avg"``) and ``s = scale / n``, samples are drawn from:

    * ``"truncated_normal"``: a normal truncated to two standard deviations, rescaled so that its
      standard deviation after truncation is ``sqrt(s)``;
    * ``"normal"``: a normal with standard deviation ``sqrt(s)``;
    * ``"uniform"``: a uniform over ``[-sqrt(3 s), sqrt(3 s)]``.

    For rank > 2 weights (e.g. convolution kernels) the leading axes form the receptive field:
    ``fan_in = shape[-2] * prod(shape[:-2])`` and ``fan_out = shape[-1] * prod(shape[:-2])``,
    unless ``fan_in_axes`` lists the input axes explicitly. Common configurations: Glorot
    ``(1.0, "fan_avg", ...)``, LeCun ``(1.0, "fan_in", ...)``, He ``(2.0, "fan_in", ...)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> init = hk.initializers.VarianceScaling(2.0, "fan_in", "uniform")
    >>> f = hk.transform(lambda: hk.get_parameter("w", [6, 100], init=init))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(jnp.abs(w).max() <= 1.0)  # limit = sqrt(3 * 2.0 / 6)
    True
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal",
                 fan_in_axes: Sequence[int] | None = None):
        """Constructs a VarianceScaling initializer.

        Args:
          scale: non-negative factor multiplying the variance.
          mode: one of ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``.
          distribution: one of ``"truncated_normal"``, ``"normal"``, ``"uniform"``.
          fan_in_axes: for rank > 2 shapes, the axes whose product is the number of input units
            (the remaining axes give the output units). ``None``: all but the last axis.
        """
        if scale < 0.0:
            raise ValueError(
                f"VarianceScaling: `scale` must be a non-negative float, got scale={scale!r}."
            )
        if mode not in _VALID_MODES:
            raise ValueError(
                f"VarianceScaling: invalid `mode` argument {mode!r}; expected one of "
                f"{', '.join(repr(m) for m in _VALID_MODES)}."
            )
        if distribution not in _VALID_DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: invalid `distribution` argument {distribution!r}; expected one "
                f"of {', '.join(repr(d) for d in _VALID_DISTRIBUTIONS)}."
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.fan_in_axes = fan_in_axes

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        allow_complex = self.distribution != "uniform"
        _check_inexact(f"VarianceScaling(distribution={self.distribution!r})", dtype,
                       allow_complex=allow_complex)
        fan_in, fan_out = _compute_fans(shape, self.fan_in_axes)
        if self.mode == "fan_in":
            n = fan_in
        elif self.mode == "fan_out":
            n = fan_out
        else:
            n = (fan_in + fan_out) / 2.0
        variance = self.scale / max(1.0, n)
        key = core.next_rng_key()
        if self.distribution == "truncated_normal":
            # The correction constant is first rounded to the parameter's (real) dtype and the
            # division is done in float64; this reproduces Haiku's values bit for bit.
            constant = np.float64(np.asarray(_TRUNCATED_NORMAL_STDDEV, _real_dtype(dtype)))
            stddev = np.float64(math.sqrt(variance)) / constant
            return _cast(stddev, dtype) * _truncated_normal(key, -2.0, 2.0, shape, dtype)
        if self.distribution == "normal":
            stddev = _cast(math.sqrt(variance), dtype)
            return stddev * jax.random.normal(key, shape, dtype)
        limit = math.sqrt(3.0 * variance)
        return jax.random.uniform(key, shape, dtype, -limit, limit)


class UniformScaling(Initializer):
    """Uniform initializer scaled by the number of input units.

    Samples uniformly from ``[-m, m]`` with ``m = scale * sqrt(3 / fan_in)`` and
    ``fan_in = prod(shape[:-1])``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> init = hk.initializers.UniformScaling(scale=2.0)
    >>> f = hk.transform(lambda: hk.get_parameter("w", [3, 50], init=init))
    >>> w = f.init(jax.random.PRNGKey(0))["~"]["w"]
    >>> bool(jnp.abs(w).max() <= 2.0)  # m = 2 * sqrt(3 / 3)
    True
    """

    def __init__(self, scale: float = 1.0):
        """Constructs a UniformScaling initializer.

        Args:
          scale: factor multiplying the upper limit of the uniform distribution.
        """
        self.scale = scale

    def __call__(self, shape: Sequence[int], dtype: Any) -> jax.Array:
        shape = _as_shape(shape)
        _check_inexact("UniformScaling initializer", dtype, allow_complex=False)
        input_size = max(1, math.prod(shape[:-1]))
        max_val = math.sqrt(3 / input_size) * self.scale
        return jax.random.uniform(core.next_rng_key(), shape, dtype, -max_val, max_val)
