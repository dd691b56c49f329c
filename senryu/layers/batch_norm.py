"""Batch normalisation: ``BatchNorm``."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers
from senryu.layers.layer_norm import (
    _check_call_scale_offset,
    _check_scale_offset_options,
    _channel_index,
    _describe,
    _resolve_axes,
)
from senryu.layers.moving_averages import ExponentialMovingAverage, _check_decay

__all__ = ["BatchNorm"]


class BatchNorm(core.Module):
    """Batch normalisation (https://arxiv.org/abs/1502.03167).

    In training (``is_training=True``) the inputs are normalised with the statistics of the
    batch (all axes but the channel axis, or ``axis``), and exponential moving averages of the
    mean and variance are updated in state (submodules ``mean_ema`` and ``var_ema``). In
    evaluation the moving averages are used instead, unless ``test_local_stats=True``.

    With ``cross_replica_axis`` the statistics are averaged over that named axis (of a
    ``jax.pmap`` or ``jax.vmap`` wrapped around the pure function), so every replica normalises
    with the statistics of the whole replicated batch.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(
    ...     lambda x, is_training: hk.BatchNorm(True, True, decay_rate=0.9)(x, is_training))
    >>> x = jnp.array([[1., 10.], [3., 30.]])
    >>> params, state = f.init(None, x, is_training=True)
    >>> jax.tree.map(jnp.shape, params)
    {'batch_norm': {'offset': (1, 2), 'scale': (1, 2)}}
    >>> y, state = f.apply(params, state, None, x, is_training=True)
    >>> y.round(3)
    Array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> state['batch_norm/~/mean_ema']['average']
    Array([[ 2., 20.]], dtype=float32)

    Args:
      create_scale: whether to create a trainable ``scale``.
      create_offset: whether to create a trainable ``offset``.
      decay_rate: decay of the moving averages.
      eps: added to the variance before the square root.
      scale_init: initializer for ``scale`` (default ones); only with ``create_scale=True``.
      offset_init: initializer for ``offset`` (default zeros); only with ``create_offset=True``.
      axis: the axes to reduce over; default all but the channel axis.
      cross_replica_axis: name (or names) of a mapped axis to average the statistics over.
      cross_replica_axis_index_groups: groups of replica indices to average within.
      data_format: ``channels_last`` (default), ``channels_first``, ``N...C``, ``NC...`` or a
        string such as ``NHWC``.
      name: module name.
    """

    def __init__(self, create_scale: bool, create_offset: bool, decay_rate: float,
                 eps: float = 1e-5,
                 scale_init: Optional[initializers.Initializer] = None,
                 offset_init: Optional[initializers.Initializer] = None,
                 axis: Optional[Sequence[int]] = None,
                 cross_replica_axis: Optional[Union[str, Sequence[str]]] = None,
                 cross_replica_axis_index_groups: Optional[Sequence[Sequence[int]]] = None,
                 data_format: str = "channels_last",
                 name: Optional[str] = None):
        super().__init__(name=name)
        _check_scale_offset_options(self, create_scale, create_offset, scale_init, offset_init)
        _check_decay(decay_rate, _describe(self), "decay_rate")
        if cross_replica_axis is None and cross_replica_axis_index_groups is not None:
            raise ValueError(
                "`cross_replica_axis` name must be specified if "
                "`cross_replica_axis_index_groups` are used.")
        if axis is not None:
            if isinstance(axis, (int, np.integer)):
                axis = (axis,)
            axis = tuple(axis)
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                       for a in axis):
                raise ValueError(
                    f"BatchNorm: `axis` should be None or a sequence of ints, got {axis}.")
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.eps = eps
        self.scale_init = scale_init or jnp.ones
        self.offset_init = offset_init or jnp.zeros
        self.axis = axis
        if cross_replica_axis is not None and not isinstance(cross_replica_axis, str):
            cross_replica_axis = tuple(cross_replica_axis)  # axis names must be hashable
        self.cross_replica_axis = cross_replica_axis
        self.cross_replica_axis_index_groups = cross_replica_axis_index_groups
        self.channel_index = _channel_index(data_format, "BatchNorm")
        self.data_format = data_format
        self.mean_ema = ExponentialMovingAverage(decay_rate, name="mean_ema")
        self.var_ema = ExponentialMovingAverage(decay_rate, name="var_ema")

    def __call__(self, inputs: jax.Array, is_training: bool, test_local_stats: bool = False,
                 scale: Optional[jax.Array] = None,
                 offset: Optional[jax.Array] = None) -> jax.Array:
        """Normalises ``inputs``; updates the moving averages when ``is_training``."""
        _check_call_scale_offset(self, self.create_scale, self.create_offset, scale, offset)
        inputs = jnp.asarray(inputs)
        who = _describe(self)
        if inputs.ndim == 0:
            raise ValueError(f"{who}: inputs must have at least one dimension, got a scalar.")
        channel_index = self.channel_index
        if channel_index < 0:
            channel_index += inputs.ndim
        if self.axis is not None:
            axes = _resolve_axes(self.axis, inputs.ndim, who, inputs.shape)
        else:
            if channel_index >= inputs.ndim:
                raise ValueError(
                    f"{who}: data_format {self.data_format!r} puts the channels on axis 1 but "
                    f"the inputs have shape {tuple(inputs.shape)}.")
            axes = tuple(i for i in range(inputs.ndim) if i != channel_index)

        if is_training or test_local_stats:
            mean = jnp.mean(inputs, axes, keepdims=True)
            mean_of_squares = jnp.mean(jnp.square(inputs), axes, keepdims=True)
            if self.cross_replica_axis:
                mean = jax.lax.pmean(
                    mean, axis_name=self.cross_replica_axis,
                    axis_index_groups=self.cross_replica_axis_index_groups)
                mean_of_squares = jax.lax.pmean(
                    mean_of_squares, axis_name=self.cross_replica_axis,
                    axis_index_groups=self.cross_replica_axis_index_groups)
            var = mean_of_squares - jnp.square(mean)
        else:
            mean = self.mean_ema.average.astype(inputs.dtype)
            var = self.var_ema.average.astype(inputs.dtype)
            stats_shape = tuple(1 if i in axes else inputs.shape[i] for i in range(inputs.ndim))
            if mean.shape != stats_shape:
                raise ValueError(
                    f"{who}: the moving averages have shape {tuple(mean.shape)} but inputs of "
                    f"shape {tuple(inputs.shape)} need statistics of shape {stats_shape}; the "
                    "number of channels must not change after init.")

        if is_training:
            self.mean_ema(mean)
            self.var_ema(var)

        w_shape = tuple(1 if i in axes else inputs.shape[i] for i in range(inputs.ndim))
        w_dtype = inputs.dtype
        if self.create_scale:
            scale = core.get_parameter("scale", w_shape, w_dtype, init=self.scale_init)
        elif scale is None:
            scale = np.ones([], dtype=w_dtype)
        if self.create_offset:
            offset = core.get_parameter("offset", w_shape, w_dtype, init=self.offset_init)
        elif offset is None:
            offset = np.zeros([], dtype=w_dtype)

        eps = jax.lax.convert_element_type(self.eps, var.dtype)
        inv = scale * jax.lax.rsqrt(var + eps)
        return (inputs - mean) * inv + offset
