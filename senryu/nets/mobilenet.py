"""MobileNetV1 (https://arxiv.org/abs/1704.04861)."""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from senryu import core
from senryu.layers.basic import Linear
from senryu.layers.batch_norm import BatchNorm
from senryu.layers.conv import Conv2D
from senryu.layers.reshape import Flatten
from senryu.layers.depthwise_conv import DepthwiseConv2D

__all__ = ["MobileNetV1"]

_BN_DECAY_RATE = 0.999


class MobileNetV1Block(core.Module):
    """A depthwise-separable block: 3x3 depthwise conv, 1x1 pointwise conv, each followed by
    batch norm (if ``use_bn``) and ReLU.

    >>> import jax, jax.numpy as jnp
    >>> import senryu as hk
    >>> from senryu.nets.mobilenet import MobileNetV1Block
    >>> f = hk.transform_with_state(lambda x: MobileNetV1Block(8, stride=2)(x, True))
    >>> params, state = f.init(jax.random.PRNGKey(0), jnp.ones([1, 6, 6, 4]))
    >>> jax.tree.map(jnp.shape, params)  # doctest: +NORMALIZE_WHITESPACE
    {'mobile_net_v1_block/batch_norm': {'offset': (1, 1, 1, 4), 'scale': (1, 1, 1, 4)},
     'mobile_net_v1_block/batch_norm_1': {'offset': (1, 1, 1, 8), 'scale': (1, 1, 1, 8)},
     'mobile_net_v1_block/depthwise_conv': {'w': (3, 3, 1, 4)},
     'mobile_net_v1_block/pointwise_conv': {'w': (1, 1, 4, 8)}}

    Args:
      channels: output channels of the pointwise conv.
      stride: stride of the depthwise conv.
      use_bn: whether to use batch norm (the convs then have no bias).
      name: module name.
    """

    def __init__(self, channels: int, stride: int, use_bn: bool = True,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.channels = channels
        self.stride = stride
        self.use_bn = use_bn
        self.with_bias = not use_bn

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        """Applies the block to ``[N, H, W, C]`` inputs."""
        depthwise = DepthwiseConv2D(channel_multiplier=1, kernel_shape=3, stride=self.stride,
                                    padding=((1, 1), (1, 1)), with_bias=self.with_bias,
                                    name="depthwise_conv")
        pointwise = Conv2D(output_channels=self.channels, kernel_shape=(1, 1), stride=1,
                           padding="VALID", with_bias=self.with_bias, name="pointwise_conv")
        out = depthwise(inputs)
        if self.use_bn:
            out = BatchNorm(create_scale=True, create_offset=True,
                            decay_rate=_BN_DECAY_RATE)(out, is_training)
        out = jax.nn.relu(out)
        out = pointwise(out)
        if self.use_bn:
            out = BatchNorm(create_scale=True, create_offset=True,
                            decay_rate=_BN_DECAY_RATE)(out, is_training)
        return jax.nn.relu(out)


class MobileNetV1(core.Module):
    """MobileNetV1: a 3x3 stride-2 conv to 32 channels, a stack of depthwise-separable blocks,
    mean pooling and a linear classifier named ``logits``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     net = hk.nets.MobileNetV1(strides=(1, 2), channels=(8, 16), num_classes=5)
    ...     return net(x, is_training)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones([2, 16, 16, 3])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
    >>> list(params)  # doctest: +NORMALIZE_WHITESPACE
    ['mobile_net_v1/conv2_d', 'mobile_net_v1/batch_norm',
     'mobile_net_v1/mobile_net_v1_block/depthwise_conv',
     'mobile_net_v1/mobile_net_v1_block/batch_norm',
     'mobile_net_v1/mobile_net_v1_block/pointwise_conv',
     'mobile_net_v1/mobile_net_v1_block/batch_norm_1',
     'mobile_net_v1/mobile_net_v1_block_1/depthwise_conv',
     'mobile_net_v1/mobile_net_v1_block_1/batch_norm',
     'mobile_net_v1/mobile_net_v1_block_1/pointwise_conv',
     'mobile_net_v1/mobile_net_v1_block_1/batch_norm_1', 'mobile_net_v1/logits']
    >>> f.apply(params, state, None, x, False)[0].shape
    (2, 5)

    Args:
      strides: stride of the depthwise conv of each block.
      channels: output channels of the pointwise conv of each block (same length as
        ``strides``).
      num_classes: number of output logits.
      use_bn: whether to use batch normalisation; if ``True`` the convs have no bias, if
        ``False`` they have one.
      name: module name.
    """

    def __init__(self,
                 strides: Sequence[int] = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1),
                 channels: Sequence[int] = (64, 128, 128, 256, 256, 512, 512,
                                            512, 512, 512, 512, 1024, 1024),
                 num_classes: int = 1000,
                 use_bn: bool = True,
                 name: Optional[str] = None):
        super().__init__(name=name)
        strides = tuple(strides)
        channels = tuple(channels)
        if len(strides) != len(channels):
            raise ValueError(
                f"{type(self).__name__} {self.module_name!r}: `strides` and `channels` must "
                f"have the same length, "
                f"got {len(strides)} strides {strides} and {len(channels)} channels "
                f"{channels}; give one stride and one channel count per block.")
        self.strides = strides
        self.channels = channels
        self.num_classes = num_classes
        self.use_bn = use_bn
        self.with_bias = not use_bn

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        """Returns logits of shape ``[N, num_classes]`` for images of shape ``[N, H, W, C]``."""
        if jnp.ndim(inputs) != 4:
            raise ValueError(
                f"{self.module_name}: inputs must be a batch of images of shape [N, H, W, C], "
                f"got shape {tuple(jnp.shape(inputs))}; add a batch dimension with `x[None]`.")
        out = Conv2D(output_channels=32, kernel_shape=(3, 3), stride=2, padding="VALID",
                     with_bias=self.with_bias)(inputs)
        if self.use_bn:
            out = BatchNorm(create_scale=True, create_offset=True,
                            decay_rate=_BN_DECAY_RATE)(out, is_training)
        out = jax.nn.relu(out)
        for channels, stride in zip(self.channels, self.strides):
            out = MobileNetV1Block(channels, stride, self.use_bn)(out, is_training)
        out = jnp.mean(out, axis=(1, 2))
        out = Flatten()(out)
        return Linear(self.num_classes, name="logits")(out)
