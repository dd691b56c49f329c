"""Group normalisation: ``GroupNorm``."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp

from senryu import core
from senryu import initializers
from senryu.layers.layer_norm import (
    _broadcast_to_rank,
    _check_axis_type,
    _check_call_scale_offset,
    _check_scale_offset_options,
    _channel_index,
    _describe,
    _resolve_axes,
)

__all__ = ["GroupNorm"]


class GroupNorm(core.Module):
    """Group normalisation (https://arxiv.org/abs/1803.08494).

    The channels are split into ``groups`` groups; each group is normalised to zero mean and unit
    variance over ``axis`` (by default every axis but the batch axis), never across groups. A
    per-channel ``scale`` and ``offset`` follow: ``scale * (x - mean) / sqrt(var + eps) +
    offset``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.GroupNorm(groups=2)(x))
    >>> x = jnp.array([[1., 3., 10., 30.]])
    >>> params = f.init(None, x)
    >>> jax.tree.map(jnp.shape, params)
    {'group_norm': {'offset': (4,), 'scale': (4,)}}
    >>> f.apply(params, None, x).round(3)
    Array([[-1., 1., -1., 1.]], dtype=float32)

    Args:
      groups: number of groups; must divide the number of channels.
      axis: int, slice or sequence of ints: the axes (of the input) to normalise over. Default
        ``slice(1, None)``, all but the batch axis.
      create_scale: whether to create a trainable per-channel ``scale``.
      create_offset: whether to create a trainable per-channel ``offset``.
      eps: added to the variance before the square root.
      scale_init: initializer for ``scale`` (default ones); only with ``create_scale=True``.
      offset_init: initializer for ``offset`` (default zeros); only with ``create_offset=True``.
      data_format: ``channels_last`` (default), ``channels_first`` or e.g. ``NHWC``/``NCHW``.
      name: module name.
    """

    def __init__(self, groups: int,
                 axis: Union[int, slice, Sequence[int]] = slice(1, None),
                 create_scale: bool = True,
                 create_offset: bool = True,
                 eps: float = 1e-5,
                 scale_init: Optional[initializers.Initializer] = None,
                 offset_init: Optional[initializers.Initializer] = None,
                 data_format: str = "channels_last",
                 name: Optional[str] = None):
        super().__init__(name=name)
        who = _describe(self)
        if (not isinstance(groups, numbers.Integral) or isinstance(groups, bool)
                or groups < 1):
            raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}.")
        _check_scale_offset_options(self, create_scale, create_offset, scale_init, offset_init)
        self.groups = int(groups)
        self.axis = _check_axis_type(axis, who)
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.eps = eps
        self.scale_init = scale_init or jnp.ones
        self.offset_init = offset_init or jnp.zeros
        self.data_format = data_format
        self.channel_index = _channel_index(data_format, "GroupNorm")

    def _initialize(self, x: jax.Array, channel_index: int) -> None:
        # A separate (wrapped) method so that eval_summary/tabulate list the same invocations as
        # dm-haiku's GroupNorm: __call__, then _initialize.
        who = _describe(self)
        if channel_index >= x.ndim:
            raise ValueError(
                f"{who}: data_format {self.data_format!r} puts the channels on axis "
                f"{channel_index} but the inputs have shape {tuple(x.shape)}.")
        channels = x.shape[channel_index]
        if channels % self.groups:
            raise ValueError(
                "The number of channels must be divisible by the number of groups, was "
                f"channels={channels}, groups={self.groups} ({who}, inputs of shape "
                f"{tuple(x.shape)}).")

    def __call__(self, x: jax.Array, scale: Optional[jax.Array] = None,
                 offset: Optional[jax.Array] = None) -> jax.Array:
        """Normalises ``x``; ``scale``/``offset`` may be passed only if not created here."""
        _check_call_scale_offset(self, self.create_scale, self.create_offset, scale, offset)
        x = jnp.asarray(x)
        who = _describe(self)
        if x.ndim == 0:
            raise ValueError(f"{who}: inputs must have at least one dimension, got a scalar.")
        channel_index = self.channel_index
        if channel_index < 0:
            channel_index += x.ndim
        self._initialize(x, channel_index)
        channels = x.shape[channel_index]
        axes = _resolve_axes(self.axis, x.ndim, who, x.shape)

        # Split the channel axis into [groups, channels // groups]. Axes before it keep their
        # index, the channel axis becomes the within-group axis, later axes shift by one; the
        # groups axis itself is never reduced over.
        grouped_shape = (x.shape[:channel_index] + (self.groups, channels // self.groups)
                         + x.shape[channel_index + 1:])
        grouped_axes = tuple(a if a < channel_index else a + 1 for a in axes)
        x_grouped = jnp.reshape(x, grouped_shape)
        mean = jnp.mean(x_grouped, grouped_axes, keepdims=True)
        var = jnp.var(x_grouped, grouped_axes, keepdims=True)
        eps = jax.lax.convert_element_type(self.eps, var.dtype)
        normalized = (x_grouped - mean) * jax.lax.rsqrt(var + eps)
        normalized = jnp.reshape(normalized, x.shape)

        param_shape = (channels,) + (1,) * (x.ndim - channel_index - 1)
        if self.create_scale:
            scale = core.get_parameter("scale", param_shape, x.dtype, init=self.scale_init)
        if self.create_offset:
            offset = core.get_parameter("offset", param_shape, x.dtype, init=self.offset_init)
        if scale is not None:
            normalized = normalized * _broadcast_to_rank(scale, normalized.ndim)
        if offset is not None:
            normalized = normalized + _broadcast_to_rank(offset, normalized.ndim)
        return normalized
