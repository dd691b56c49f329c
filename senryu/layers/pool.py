"""Pooling: ``avg_pool``, ``max_pool`` and their module forms ``AvgPool``, ``MaxPool``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from senryu import core

__all__ = ["avg_pool", "AvgPool", "max_pool", "MaxPool"]

IntLike = Union[int, Sequence[int]]


def _infer_shape(who: str, value: jax.Array, size: IntLike, channel_axis: Optional[int],
                 what: str) -> tuple[int, ...]:
    """Expands a window/stride spec to one entry per axis of ``value``.

    An int applies to every axis except the first (batch) axis and ``channel_axis``; a sequence
    shorter than the rank covers the trailing axes.
    """
    rank = value.ndim
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if channel_axis is not None and not -rank < channel_axis < rank:
            raise ValueError(
                f"{who}: invalid channel_axis {channel_axis} for an input of shape {value.shape}: "
                f"it must be in ({-rank}, {rank}) and may not be the batch axis 0 given as "
                f"{-rank}. Use channel_axis=None if the input has no channel axis.")
        skip = {0}
        if channel_axis is not None:
            skip.add(channel_axis % rank)
        return tuple(1 if axis in skip else int(size) for axis in range(rank))
    if not isinstance(size, Sequence) or isinstance(size, str):
        raise TypeError(f"{who}: {what} must be an int or a sequence of ints, got {size!r}.")
    size = tuple(int(s) for s in size)
    if len(size) > rank:
        raise ValueError(
            f"{who}: {what} {size} has more entries than the input has dimensions "
            f"(shape {value.shape}); give at most one per dimension.")
    return (1,) * (rank - len(size)) + size


def _check_args(who: str, value: jax.Array, window_shape: IntLike, strides: IntLike,
                padding: str, channel_axis: Optional[int]):
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"{who}: invalid padding {padding!r}, it must be 'SAME' or 'VALID'.")
    window = _infer_shape(who, value, window_shape, channel_axis, "window_shape")
    stride = _infer_shape(who, value, strides, channel_axis, "strides")
    if any(w < 1 for w in window) or any(s < 1 for s in stride):
        raise ValueError(
            f"{who}: window_shape and strides must be >= 1, got window {window} and strides "
            f"{stride} for an input of shape {value.shape}.")
    return window, stride


def max_pool(value: jax.Array, window_shape: IntLike, strides: IntLike, padding: str,
             channel_axis: Optional[int] = -1) -> jax.Array:
    """Takes the maximum over sliding windows of ``value``.

    An int ``window_shape``/``strides`` applies to every axis except the first (batch) axis and
    ``channel_axis``; a sequence covers the trailing axes (length at most the rank).

    >>> import jax.numpy as jnp, senryu as hk
    >>> x = jnp.arange(8.).reshape([1, 4, 2, 1])
    >>> hk.max_pool(x, window_shape=2, strides=2, padding="VALID")[..., 0]
    Array([[[3.],
            [7.]]], dtype=float32)

    Args:
      value: the array to pool.
      window_shape: window size, an int or a sequence of ints.
      strides: window stride, an int or a sequence of ints.
      padding: ``"SAME"`` or ``"VALID"``.
      channel_axis: axis left unpooled when ``window_shape``/``strides`` is an int (or None).

    Returns:
      The pooled array, of the same rank and dtype as ``value``.

    Raises:
      ValueError: on an unknown padding, a bad ``channel_axis`` or too long a window.
    """
    return _max_pool("max_pool", value, window_shape, strides, padding, channel_axis)


def _max_pool(who, value, window_shape, strides, padding, channel_axis):
    value = jnp.asarray(value)
    window, stride = _check_args(who, value, window_shape, strides, padding, channel_axis)
    if jnp.issubdtype(value.dtype, jnp.inexact):
        init = -np.inf
    elif value.dtype == jnp.bool_:
        init = False
    else:
        init = jnp.iinfo(value.dtype).min
    # A NumPy (not jnp) init value stays a constant under jit, so JAX recognises the reduction
    # as a max-pool and can differentiate it.
    return lax.reduce_window(value, np.array(init, value.dtype), lax.max, window, stride,
                             padding)


def avg_pool(value: jax.Array, window_shape: IntLike, strides: IntLike, padding: str,
             channel_axis: Optional[int] = -1) -> jax.Array:
    """Averages over sliding windows of ``value``.

    With ``"SAME"`` padding, windows at the border average only the elements inside the input.
    Window and stride conventions are those of :func:`max_pool`.

    >>> import jax.numpy as jnp, senryu as hk
    >>> x = jnp.arange(1., 6.).reshape([1, 5, 1])
    >>> hk.avg_pool(x, window_shape=3, strides=1, padding="SAME")[0, :, 0]
    Array([1.5, 2. , 3. , 4. , 4.5], dtype=float32)

    Args:
      value: the array to pool.
      window_shape: window size, an int or a sequence of ints.
      strides: window stride, an int or a sequence of ints.
      padding: ``"SAME"`` or ``"VALID"``.
      channel_axis: axis left unpooled when ``window_shape``/``strides`` is an int (or None).

    Returns:
      The pooled array, of the same rank as ``value`` (integer inputs give floats).

    Raises:
      ValueError: on an unknown padding, a bad ``channel_axis`` or too long a window.
    """
    return _avg_pool("avg_pool", value, window_shape, strides, padding, channel_axis)


def _avg_pool(who, value, window_shape, strides, padding, channel_axis):
    value = jnp.asarray(value)
    if value.dtype == jnp.bool_:
        raise TypeError(
            f"{who}: cannot average boolean inputs; cast them first, e.g. "
            "`x.astype(jnp.float32)`.")
    window, stride = _check_args(who, value, window_shape, strides, padding, channel_axis)
    total = lax.reduce_window(value, np.array(0, value.dtype), lax.add, window, stride, padding)
    if padding == "VALID":
        return total / np.prod(window)
    # Count the real (unpadded) elements of every window; only the pooled axes matter.
    ones = np.ones([d if w > 1 or s > 1 else 1 for d, w, s in zip(value.shape, window, stride)],
                   dtype=value.dtype)
    counts = lax.reduce_window(ones, np.array(0, value.dtype), lax.add, window, stride, padding)
    return total / counts


class MaxPool(core.Module):
    """Max pooling as a module (:func:`max_pool` with fixed arguments).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.MaxPool(window_shape=2, strides=2, padding="SAME")(x))
    >>> f.apply({}, None, jnp.ones([1, 5, 5, 3])).shape
    (1, 3, 3, 3)

    Args:
      window_shape: window size, an int or a sequence of ints.
      strides: window stride, an int or a sequence of ints.
      padding: ``"SAME"`` or ``"VALID"``.
      channel_axis: axis left unpooled when ``window_shape``/``strides`` is an int (or None).
      name: module name.
    """

    def __init__(self, window_shape: IntLike, strides: IntLike, padding: str,
                 channel_axis: Optional[int] = -1, name: Optional[str] = None):
        super().__init__(name=name)
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding
        self.channel_axis = channel_axis

    def __call__(self, value: jax.Array) -> jax.Array:
        """Max-pools ``value``."""
        return _max_pool(f"{self.module_name} (MaxPool)", value, self.window_shape, self.strides,
                         self.padding, self.channel_axis)


class AvgPool(core.Module):
    """Average pooling as a module (:func:`avg_pool` with fixed arguments).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.AvgPool(window_shape=2, strides=1, padding="VALID")(x))
    >>> f.apply({}, None, jnp.ones([1, 5, 5, 3])).shape
    (1, 4, 4, 3)

    Args:
      window_shape: window size, an int or a sequence of ints.
      strides: window stride, an int or a sequence of ints.
      padding: ``"SAME"`` or ``"VALID"``.
      channel_axis: axis left unpooled when ``window_shape``/``strides`` is an int (or None).
      name: module name.
    """

    def __init__(self, window_shape: IntLike, strides: IntLike, padding: str,
                 channel_axis: Optional[int] = -1, name: Optional[str] = None):
        super().__init__(name=name)
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding
        self.channel_axis = channel_axis

    def __call__(self, value: jax.Array) -> jax.Array:
        """Average-pools ``value``."""
        return _avg_pool(f"{self.module_name} (AvgPool)", value, self.window_shape, self.strides,
                         self.padding, self.channel_axis)
