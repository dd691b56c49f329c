"""Depthwise convolutions: each input channel is convolved with its own filters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from senryu import core
from senryu import initializers
from senryu.layers import conv as conv_lib

__all__ = [
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "DepthwiseConv3D",
    "SeparableDepthwiseConv2D",
]

IntLike = Union[int, Sequence[int]]


class _DepthwiseConvND(core.Module):
    """Shared implementation of the ``DepthwiseConv{1,2,3}D`` modules."""

    _NUM_SPATIAL_DIMS = 0

    def __init__(self, channel_multiplier: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: conv_lib.PaddingLike = "SAME",
                 with_bias: bool = True, w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 data_format: str = "channels_last", name: Optional[str] = None):
        super().__init__(name=name)
        n = self.num_spatial_dims = self._NUM_SPATIAL_DIMS
        if not isinstance(channel_multiplier, (int, np.integer)) or channel_multiplier < 1:
            raise ValueError(f"{self.module_name}: channel_multiplier must be an int >= 1, got "
                             f"{channel_multiplier!r}.")
        self.channel_multiplier = int(channel_multiplier)
        self.kernel_shape = conv_lib._to_tuple(self.module_name, kernel_shape, n, "kernel_shape")
        self.stride = conv_lib._to_tuple(self.module_name, stride, n, "stride")
        self.rhs_dilation = conv_lib._to_tuple(self.module_name, rate, n, "rate")
        self.lhs_dilation = (1,) * n
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros
        self.data_format = data_format
        self.channel_index = conv_lib._channel_index(self.module_name, data_format)
        self.padding = conv_lib._resolve_padding(self.module_name, padding, self.kernel_shape,
                                                 self.rhs_dilation, n)
        self.dimension_numbers = conv_lib._dimension_numbers(n, self.channel_index, n + 1, n)

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Convolves batched ``inputs`` (rank ``N + 2``), each channel separately."""
        n = self.num_spatial_dims
        name = self.module_name
        layer = type(self).__name__
        if inputs.ndim != n + 2:
            raise ValueError(
                f"{name}: {layer} expects batched inputs of rank {n + 2} (batch, {n} spatial "
                f"dimension(s) and channels), but got an input of shape {inputs.shape}.")
        in_channels = inputs.shape[self.channel_index]
        out_channels = self.channel_multiplier * in_channels
        w_shape = self.kernel_shape + (1, out_channels)

        in_sizes = conv_lib._spatial_sizes(inputs.shape, n, self.channel_index)
        effective = tuple((k - 1) * r + 1 for k, r in zip(self.kernel_shape, self.rhs_dilation))
        pads = conv_lib._explicit_padding(self.padding, in_sizes, effective, self.stride)
        for size, k, (lo, hi) in zip(in_sizes, effective, pads):
            if size > 0 and size + lo + hi < k:
                raise ValueError(
                    f"{name}: the effective kernel size {effective} (kernel_shape "
                    f"{self.kernel_shape}, rate {self.rhs_dilation}) is larger than the padded "
                    f"input (spatial size {in_sizes}, padding {self.padding!r}), which would give "
                    "an empty output. Use a smaller kernel or rate, larger inputs, or "
                    "padding='SAME'.")
        w_init = self.w_init
        if w_init is None:
            w_init = initializers.TruncatedNormal(stddev=1. / np.sqrt(math.prod(self.kernel_shape)))
        w = conv_lib._get_weight(self, "w", w_shape, inputs.dtype, w_init, in_channels, layer)
        out = lax.conv_general_dilated(
            inputs, w, window_strides=self.stride, padding=pads, lhs_dilation=self.lhs_dilation,
            rhs_dilation=self.rhs_dilation, dimension_numbers=self.dimension_numbers,
            feature_group_count=in_channels)
        if self.with_bias:
            b = core.get_parameter("b", conv_lib._bias_shape(out_channels, n, self.channel_index),
                                   inputs.dtype, init=self.b_init)
            out = out + jnp.broadcast_to(b, out.shape)
        return out


class DepthwiseConv1D(_DepthwiseConvND):
    """A 1D depthwise convolution: each input channel gets ``channel_multiplier`` own filters.

    The kernel ``w`` has shape ``kernel_shape + [1, channel_multiplier * input_channels]``; output
    channel ``j`` comes from input channel ``j // channel_multiplier``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.DepthwiseConv1D(channel_multiplier=2, kernel_shape=3)(x))
    >>> x = jnp.ones([1, 5, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> jax.tree.map(jnp.shape, params)
    {'depthwise_conv1_d': {'b': (6,), 'w': (3, 1, 6)}}
    >>> f.apply(params, None, x).shape
    (1, 5, 6)

    Args:
      channel_multiplier: number of output channels per input channel.
      kernel_shape: kernel size, an int or a sequence of 1 int.
      stride: stride, an int or a sequence of 1 int.
      rate: kernel dilation rate, an int or a sequence of 1 int.
      padding: ``"SAME"``, ``"VALID"``, ``(low, high)`` pairs or ``hk.pad`` functions, as for
        :class:`ConvND`.
      with_bias: whether to add a bias.
      w_init: kernel initializer; default truncated normal with stddev
        ``1 / sqrt(prod(kernel_shape))``.
      b_init: bias initializer; default zeros.
      data_format: ``"NWC"``/``"channels_last"`` or ``"NCW"``/``"channels_first"``.
      name: module name.
    """

    _NUM_SPATIAL_DIMS = 1

    def __init__(self, channel_multiplier: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: conv_lib.PaddingLike = "SAME",
                 with_bias: bool = True, w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NWC",
                 name: Optional[str] = None):
        super().__init__(channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class DepthwiseConv2D(_DepthwiseConvND):
    """A 2D depthwise convolution (see :class:`DepthwiseConv1D`).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.DepthwiseConv2D(channel_multiplier=1, kernel_shape=3)(x))
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> jax.tree.map(jnp.shape, params)
    {'depthwise_conv2_d': {'b': (3,), 'w': (3, 3, 1, 3)}}

    Arguments are those of :class:`DepthwiseConv1D` with two spatial dimensions
    (``data_format`` ``"NHWC"`` or ``"NCHW"``).
    """

    _NUM_SPATIAL_DIMS = 2

    def __init__(self, channel_multiplier: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: conv_lib.PaddingLike = "SAME",
                 with_bias: bool = True, w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NHWC",
                 name: Optional[str] = None):
        super().__init__(channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class DepthwiseConv3D(_DepthwiseConvND):
    """A 3D depthwise convolution (see :class:`DepthwiseConv1D`).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.DepthwiseConv3D(channel_multiplier=2, kernel_shape=2)(x))
    >>> x = jnp.ones([1, 3, 3, 3, 1])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 3, 3, 3, 2)

    Arguments are those of :class:`DepthwiseConv1D` with three spatial dimensions
    (``data_format`` ``"NDHWC"`` or ``"NCDHW"``).
    """

    _NUM_SPATIAL_DIMS = 3

    def __init__(self, channel_multiplier: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: conv_lib.PaddingLike = "SAME",
                 with_bias: bool = True, w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NDHWC",
                 name: Optional[str] = None):
        super().__init__(channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class SeparableDepthwiseConv2D(core.Module):
    """A 2D depthwise convolution factored into a ``k x 1`` and a ``1 x k`` depthwise convolution.

    The first (``depthwise_conv2_d``, kernel ``[kernel_shape[0], 1]``, the stride, no bias)
    multiplies the channels by ``channel_multiplier``; the second (``depthwise_conv2_d_1``,
    kernel ``[1, kernel_shape[1]]``, stride 1) holds the bias.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.SeparableDepthwiseConv2D(2, kernel_shape=3)(x))
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> for name, p in params.items():
    ...     print(name, jax.tree.map(jnp.shape, p))
    separable_depthwise_conv2_d/~/depthwise_conv2_d {'w': (3, 1, 1, 6)}
    separable_depthwise_conv2_d/~/depthwise_conv2_d_1 {'b': (6,), 'w': (1, 3, 1, 6)}

    Args:
      channel_multiplier: number of output channels per input channel.
      kernel_shape: kernel size, an int or a sequence of 2 ints.
      stride: stride, an int or a sequence of 2 ints (applied by the first convolution).
      padding: padding of both convolutions (see :class:`DepthwiseConv2D`).
      with_bias: whether to add a bias (to the second convolution).
      w_init: kernel initializer of both convolutions.
      b_init: bias initializer.
      data_format: ``"NHWC"``/``"channels_last"`` or ``"NCHW"``/``"channels_first"``.
      name: module name.
    """

    def __init__(self, channel_multiplier: int, kernel_shape: IntLike, stride: IntLike = 1,
                 padding: conv_lib.PaddingLike = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NHWC",
                 name: Optional[str] = None):
        super().__init__(name=name)
        kernel_shape = conv_lib._to_tuple(self.module_name, kernel_shape, 2, "kernel_shape")
        self._conv1 = DepthwiseConv2D(
            channel_multiplier=channel_multiplier, kernel_shape=[kernel_shape[0], 1],
            stride=stride, padding=padding, with_bias=False, w_init=w_init,
            data_format=data_format)
        self._conv2 = DepthwiseConv2D(
            channel_multiplier=1, kernel_shape=[1, kernel_shape[1]], stride=1, padding=padding,
            with_bias=with_bias, w_init=w_init, b_init=b_init, data_format=data_format)
        self.data_format = data_format
        self.channel_index = self._conv1.channel_index

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Applies both depthwise convolutions to batched ``inputs`` of rank 4."""
        if inputs.ndim != 4:
            raise ValueError(
                f"{self.module_name}: SeparableDepthwiseConv2D expects batched inputs of rank 4, "
                f"but got an input of shape {inputs.shape}.")
        return self._conv2(self._conv1(inputs))
