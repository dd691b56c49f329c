"""Layer and instance normalisation: ``LayerNorm`` and ``InstanceNorm``.

This file also holds the small private helpers that every normalisation layer shares (resolving
``axis`` arguments, reading ``data_format``, checking scale/offset options).
"""

from __future__ import annotations

import collections.abc
import re
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers

__all__ = ["LayerNorm", "InstanceNorm"]

AxisOrAxes = Union[int, Sequence[int], slice]

_AXIS_TYPE_MESSAGE = "`axis` should be an int, slice or iterable of ints."


# ---------------------------------------------------------------------------------------------
# Helpers shared by the normalisation layers (batch_norm, group_norm, rms_norm import them).
# ---------------------------------------------------------------------------------------------


def _describe(module: Any) -> str:
    """``"LayerNorm 'encoder/~/layer_norm'"``: names the module in error messages."""
    try:
        name = module.module_name
    except Exception:  # pragma: no cover - module not fully constructed yet
        name = getattr(module, "name", "?")
    return f"{type(module).__name__} {name!r}"


def _check_axis_type(axis: Any, who: str, param: str = "axis") -> Any:
    """Validates an int / slice / sequence-of-ints axis argument and returns it in a stable form."""
    if isinstance(axis, slice):
        return axis
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, collections.abc.Iterable) and not isinstance(axis, (str, bytes)):
        axis = tuple(axis)
        if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            return tuple(int(a) for a in axis)
    message = _AXIS_TYPE_MESSAGE.replace("`axis`", f"`{param}`")
    raise ValueError(f"{message} Got: {axis} (in {who}).")


def _resolve_axes(axis: Any, ndim: int, who: str, shape: Sequence[int],
                  param: str = "axis") -> tuple[int, ...]:
    """Turns an int / slice / sequence of ints into sorted-as-given non-negative axis indices.

    Out-of-range axes raise ``numpy.exceptions.AxisError`` (a ``ValueError`` and an
    ``IndexError``), so the error is clear rather than an obscure indexing failure.
    """
    if isinstance(axis, slice):
        return tuple(range(ndim)[axis])
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(
                f"{who}: {param}={a} is out of range for inputs of shape {tuple(shape)} "
                f"(rank {ndim}); valid values are {-ndim}..{ndim - 1}.")
        out.append(a % ndim)
    return tuple(out)


def _param_shape(param_axes: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of scale/offset: ``(C,)`` when only the last axis is kept, otherwise full rank."""
    ndim = len(shape)
    if ndim and set(param_axes) == {ndim - 1}:
        return (shape[-1],)
    return tuple(shape[i] if i in param_axes else 1 for i in range(ndim))


_CHANNELS_FIRST = re.compile(r"^NC[^C]*$")
_CHANNELS_LAST = re.compile(r"^N[^C]*C$")
_SEQUENTIAL = re.compile(r"^BT[^C]*D$")


def _channel_index(data_format: str, who: str = "") -> int:
    """Index of the channel axis for a data format string (``hk.get_channel_index`` rules)."""
    if data_format == "channels_first":
        return 1
    if data_format == "channels_last":
        return -1
    if isinstance(data_format, str):
        if _CHANNELS_FIRST.match(data_format):
            return 1
        if _CHANNELS_LAST.match(data_format) or _SEQUENTIAL.match(data_format):
            return -1
    where = f" (in {who})" if who else ""
    raise ValueError(
        f"Unable to extract channel information from {data_format!r}{where}. Valid data formats "
        "are spatial (e.g. `NCHW` or `NHWC`), sequential (e.g. `BTHWD`), `channels_first` and "
        "`channels_last`.")


def _check_scale_offset_options(module: Any, create_scale: bool, create_offset: bool,
                                scale_init: Any, offset_init: Any) -> None:
    if not create_scale and scale_init is not None:
        raise ValueError(
            f"Cannot set `scale_init` if `create_scale=False` ({_describe(module)}): pass "
            "create_scale=True or leave scale_init unset.")
    if not create_offset and offset_init is not None:
        raise ValueError(
            f"Cannot set `offset_init` if `create_offset=False` ({_describe(module)}): pass "
            "create_offset=True or leave offset_init unset.")


def _check_call_scale_offset(module: Any, create_scale: bool, create_offset: bool,
                             scale: Any, offset: Any) -> None:
    if create_scale and scale is not None:
        raise ValueError(
            f"Cannot pass `scale` at call time if `create_scale=True`. ({_describe(module)} "
            "owns its scale parameter; construct it with create_scale=False to feed one in.)")
    if create_offset and offset is not None:
        raise ValueError(
            f"Cannot pass `offset` at call time if `create_offset=True`. ({_describe(module)} "
            "owns its offset parameter; construct it with create_offset=False to feed one in.)")


def _check_rank(module: Any, inputs: jax.Array, minimum: int = 1) -> None:
    if inputs.ndim < minimum:
        raise ValueError(
            f"{_describe(module)}: inputs must have rank >= {minimum}, got shape "
            f"{tuple(inputs.shape)}.")


# ---------------------------------------------------------------------------------------------



def _broadcast_to_rank(x, ndim: int):
    """``x`` with leading axes of size 1 up to ``ndim`` (what implicit rank promotion does)."""
    x = jnp.asarray(x)
    return x if x.ndim in (0, ndim) else jax.lax.broadcast_to_rank(x, ndim)

class LayerNorm(core.Module):
    """Layer normalisation (https://arxiv.org/abs/1607.06450).

    Normalises ``inputs`` to zero mean and unit variance over ``axis``, then applies an optional
    learned (or passed-in) ``scale`` and ``offset``. The parameter shape is set by ``param_axis``
    (default ``-1``): ``[C]`` when it is the last axis only, otherwise the input rank with size 1
    on every axis not in ``param_axis``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.LayerNorm(axis=-1, create_scale=True,
    ...                                         create_offset=True)(x))
    >>> x = jnp.array([[1., 2., 3.]])
    >>> params = f.init(None, x)
    >>> jax.tree.map(jnp.shape, params)
    {'layer_norm': {'offset': (3,), 'scale': (3,)}}
    >>> f.apply(params, None, x).tolist()
    [[-1.225, 0.0, 1.225]]

    Args:
      axis: int, sequence of ints or slice: the axes to normalise over.
      create_scale: whether to create a trainable ``scale`` parameter.
      create_offset: whether to create a trainable ``offset`` parameter.
      eps: added to the variance before the square root.
      scale_init: initializer for ``scale`` (default ones); only with ``create_scale=True``.
      offset_init: initializer for ``offset`` (default zeros); only with ``create_offset=True``.
      use_fast_variance: compute the variance as ``E[x^2] - E[x]^2`` (faster, less stable).
      name: module name.
      param_axis: axes whose sizes the ``scale``/``offset`` parameters keep (default ``-1``).
    """

    def __init__(self, axis: AxisOrAxes, create_scale: bool, create_offset: bool,
                 eps: float = 1e-5,
                 scale_init: Optional[initializers.Initializer] = None,
                 offset_init: Optional[initializers.Initializer] = None,
                 use_fast_variance: bool = False,
                 name: Optional[str] = None,
                 *,
                 param_axis: Optional[AxisOrAxes] = None):
        super().__init__(name=name)
        _check_scale_offset_options(self, create_scale, create_offset, scale_init, offset_init)
        self.axis = _check_axis_type(axis, _describe(self))
        self.param_axis = (-1 if param_axis is None
                           else _check_axis_type(param_axis, _describe(self), "param_axis"))
        self.eps = eps
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.scale_init = scale_init or jnp.ones
        self.offset_init = offset_init or jnp.zeros
        self.use_fast_variance = use_fast_variance

    def __call__(self, inputs: jax.Array, scale: Optional[jax.Array] = None,
                 offset: Optional[jax.Array] = None) -> jax.Array:
        """Normalises ``inputs``; ``scale``/``offset`` may be passed only if not created here."""
        _check_call_scale_offset(self, self.create_scale, self.create_offset, scale, offset)
        inputs = jnp.asarray(inputs)
        who = _describe(self)
        axes = _resolve_axes(self.axis, inputs.ndim, who, inputs.shape)
        param_axes = _resolve_axes(self.param_axis, inputs.ndim, who, inputs.shape,
                                   "param_axis")

        mean = jnp.mean(inputs, axis=axes, keepdims=True)
        if self.use_fast_variance:
            variance = jnp.mean(jnp.square(inputs), axis=axes, keepdims=True) - jnp.square(mean)
        else:
            variance = jnp.var(inputs, axis=axes, keepdims=True)

        param_shape = _param_shape(param_axes, inputs.shape)
        if self.create_scale:
            scale = core.get_parameter("scale", param_shape, inputs.dtype, init=self.scale_init)
        elif scale is None:
            scale = np.array(1., dtype=inputs.dtype)
        if self.create_offset:
            offset = core.get_parameter("offset", param_shape, inputs.dtype,
                                        init=self.offset_init)
        elif offset is None:
            offset = np.array(0., dtype=inputs.dtype)

        eps = jax.lax.convert_element_type(self.eps, variance.dtype)
        # Explicit broadcasts: the same arithmetic, and no implicit rank promotion (the library
        # runs under jax_numpy_rank_promotion='raise').
        inv = _broadcast_to_rank(scale, inputs.ndim) * jax.lax.rsqrt(variance + eps)
        return inv * (inputs - mean) + _broadcast_to_rank(offset, inputs.ndim)


class InstanceNorm(LayerNorm):
    """Instance normalisation: normalises each example and channel over the spatial axes.

    For ``channels_last`` inputs ``[N, ..., C]`` the statistics are taken over axes ``1..-2``;
    for ``channels_first`` inputs ``[N, C, ...]`` over axes ``2..``. ``scale``/``offset`` are
    per channel.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.InstanceNorm(create_scale=True, create_offset=True)(x))
    >>> x = jnp.arange(8.).reshape([1, 4, 2])
    >>> params = f.init(None, x)
    >>> jax.tree.map(jnp.shape, params)
    {'instance_norm': {'offset': (2,), 'scale': (2,)}}
    >>> f.apply(params, None, x)[0, :, 0].tolist()
    [-1.342, -0.447, 0.447, 1.342]

    Args:
      create_scale: whether to create a trainable per-channel ``scale``.
      create_offset: whether to create a trainable per-channel ``offset``.
      eps: added to the variance before the square root.
      scale_init: initializer for ``scale`` (default ones).
      offset_init: initializer for ``offset`` (default zeros).
      data_format: ``channels_last`` (default), ``channels_first``, or a string such as
        ``NHWC`` / ``NCHW``.
      name: module name.
    """

    def __init__(self, create_scale: bool, create_offset: bool, eps: float = 1e-5,
                 scale_init: Optional[initializers.Initializer] = None,
                 offset_init: Optional[initializers.Initializer] = None,
                 data_format: str = "channels_last",
                 name: Optional[str] = None):
        channel_index = _channel_index(data_format, "InstanceNorm")
        axis = slice(1, -1) if channel_index == -1 else slice(2, None)
        super().__init__(axis=axis, create_scale=create_scale, create_offset=create_offset,
                         eps=eps, scale_init=scale_init, offset_init=offset_init,
                         use_fast_variance=False, name=name, param_axis=channel_index)
        self.data_format = data_format
