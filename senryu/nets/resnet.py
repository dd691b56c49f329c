"""ResNet v1/v2 (https://arxiv.org/abs/1512.03385, https://arxiv.org/abs/1603.05027).

``ResNet`` is the configurable network; ``ResNet18`` ... ``ResNet200`` fix the depth, width and
bottleneck setting of the published models. Blocks are available as ``ResNet.BlockV1``,
``ResNet.BlockV2`` and ``ResNet.BlockGroup``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from senryu import core
from senryu.layers.basic import Linear
from senryu.layers.batch_norm import BatchNorm
from senryu.layers.conv import Conv2D
from senryu.layers.pool import max_pool

__all__ = [
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet200",
]

FloatStrOrBool = Union[str, float, bool]


def _bn_config(bn_config: Optional[Mapping[str, FloatStrOrBool]]) -> dict[str, Any]:
    """A copy of ``bn_config`` with the ResNet defaults filled in."""
    config = dict(bn_config or {})
    config.setdefault("decay_rate", 0.9)
    config.setdefault("eps", 1e-5)
    config.setdefault("create_scale", True)
    config.setdefault("create_offset", True)
    return config


def _check_length(who: str, length: int, value: Sequence[Any], name: str) -> None:
    try:
        actual = len(value)
    except TypeError:
        raise TypeError(
            f"{who}: `{name}` must be a sequence of length {length}, got {value!r}.") from None
    if actual != length:
        raise ValueError(
            f"{who}: `{name}` must be of length {length} not {actual} (got {tuple(value)!r}); "
            f"give one value per block group.")


def _check_nhwc(who: str, inputs: jax.Array) -> None:
    if jnp.ndim(inputs) != 4:
        raise ValueError(
            f"{who}: inputs must be a batch of images of shape [N, H, W, C], got shape "
            f"{tuple(jnp.shape(inputs))}; add a batch dimension with `x[None]`.")


class BlockV1(core.Module):
    """A ResNet v1 residual block: conv, batch norm and ReLU layers plus a shortcut.

    With ``bottleneck`` the block is a 1x1 conv to ``channels // 4``, a 3x3 conv (carrying the
    stride) and a 1x1 conv back to ``channels`` (whose batch-norm scale starts at zero);
    without, two 3x3 convs of ``channels`` (the first carrying the stride). With
    ``use_projection`` the shortcut is a strided 1x1 conv and batch norm, otherwise the
    identity (the input must then already have ``channels`` channels and ``stride`` be 1).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     block = hk.nets.ResNet.BlockV1(channels=8, stride=2, use_projection=True,
    ...                                    bn_config={"decay_rate": 0.9}, bottleneck=True)
    ...     return block(x, is_training, test_local_stats=False)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
    >>> list(params)  # doctest: +NORMALIZE_WHITESPACE
    ['block_v1/~/shortcut_conv', 'block_v1/~/shortcut_batchnorm', 'block_v1/~/conv_0',
     'block_v1/~/batchnorm_0', 'block_v1/~/conv_1', 'block_v1/~/batchnorm_1',
     'block_v1/~/conv_2', 'block_v1/~/batchnorm_2']
    >>> f.apply(params, state, None, x, True)[0].shape
    (1, 2, 2, 8)

    Args:
      channels: output channels of the block.
      stride: stride of the block (of its strided conv and of the projection).
      use_projection: whether the shortcut is a 1x1 conv + batch norm.
      bn_config: keyword arguments of every ``BatchNorm`` (``decay_rate`` is required unless
        defaults apply; ``eps``, ``create_scale`` and ``create_offset`` default to ``1e-5``,
        ``True`` and ``True``).
      bottleneck: whether to use the three-layer bottleneck design.
      name: module name.
    """

    def __init__(self, channels: int, stride: Union[int, Sequence[int]], use_projection: bool,
                 bn_config: Mapping[str, FloatStrOrBool], bottleneck: bool,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.use_projection = use_projection
        bn_config = _bn_config(bn_config)
        if use_projection:
            self.proj_conv = Conv2D(output_channels=channels, kernel_shape=1, stride=stride,
                                    with_bias=False, padding="SAME", name="shortcut_conv")
            self.proj_batchnorm = BatchNorm(name="shortcut_batchnorm", **bn_config)

        channel_div = 4 if bottleneck else 1
        conv_0 = Conv2D(output_channels=channels // channel_div,
                        kernel_shape=1 if bottleneck else 3,
                        stride=1 if bottleneck else stride,
                        with_bias=False, padding="SAME", name="conv_0")
        bn_0 = BatchNorm(name="batchnorm_0", **bn_config)
        conv_1 = Conv2D(output_channels=channels // channel_div, kernel_shape=3,
                        stride=stride if bottleneck else 1,
                        with_bias=False, padding="SAME", name="conv_1")
        bn_1 = BatchNorm(name="batchnorm_1", **bn_config)
        layers = [(conv_0, bn_0), (conv_1, bn_1)]
        if bottleneck:
            conv_2 = Conv2D(output_channels=channels, kernel_shape=1, stride=1,
                            with_bias=False, padding="SAME", name="conv_2")
            # A zero scale makes the residual branch start as the identity (Goyal et al. 2017).
            bn_2 = BatchNorm(name="batchnorm_2", scale_init=jnp.zeros, **bn_config)
            layers.append((conv_2, bn_2))
        self.layers = tuple(layers)

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the block; ``is_training``/``test_local_stats`` go to the batch norms."""
        out = shortcut = inputs
        if self.use_projection:
            shortcut = self.proj_conv(shortcut)
            shortcut = self.proj_batchnorm(shortcut, is_training, test_local_stats)
        for i, (conv, bn) in enumerate(self.layers):
            out = conv(out)
            out = bn(out, is_training, test_local_stats)
            if i < len(self.layers) - 1:
                out = jax.nn.relu(out)
        if out.shape != shortcut.shape:
            raise ValueError(
                f"{self.module_name}: the residual branch has shape {tuple(out.shape)} but the "
                f"shortcut has shape {tuple(shortcut.shape)}; use `use_projection=True` when the "
                "block changes the number of channels or has a stride.")
        return jax.nn.relu(out + shortcut)


class BlockV2(core.Module):
    """A ResNet v2 (pre-activation) residual block: batch norm and ReLU come before each conv.

    The layers are those of :class:`BlockV1` but ordered batch norm, ReLU, conv; the projection
    shortcut (a strided 1x1 conv, no batch norm) takes the first activation as input, and the
    block output is not activated.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     block = hk.nets.ResNet.BlockV2(channels=4, stride=1, use_projection=True,
    ...                                    bn_config={"decay_rate": 0.9}, bottleneck=False)
    ...     return block(x, is_training, test_local_stats=False)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
    >>> list(params)  # doctest: +NORMALIZE_WHITESPACE
    ['block_v2/~/batchnorm_0', 'block_v2/~/shortcut_conv', 'block_v2/~/conv_0',
     'block_v2/~/batchnorm_1', 'block_v2/~/conv_1']

    Args: as for :class:`BlockV1`.
    """

    def __init__(self, channels: int, stride: Union[int, Sequence[int]], use_projection: bool,
                 bn_config: Mapping[str, FloatStrOrBool], bottleneck: bool,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.use_projection = use_projection
        bn_config = _bn_config(bn_config)
        if use_projection:
            self.proj_conv = Conv2D(output_channels=channels, kernel_shape=1, stride=stride,
                                    with_bias=False, padding="SAME", name="shortcut_conv")

        channel_div = 4 if bottleneck else 1
        conv_0 = Conv2D(output_channels=channels // channel_div,
                        kernel_shape=1 if bottleneck else 3,
                        stride=1 if bottleneck else stride,
                        with_bias=False, padding="SAME", name="conv_0")
        bn_0 = BatchNorm(name="batchnorm_0", **bn_config)
        conv_1 = Conv2D(output_channels=channels // channel_div, kernel_shape=3,
                        stride=stride if bottleneck else 1,
                        with_bias=False, padding="SAME", name="conv_1")
        bn_1 = BatchNorm(name="batchnorm_1", **bn_config)
        layers = [(conv_0, bn_0), (conv_1, bn_1)]
        if bottleneck:
            conv_2 = Conv2D(output_channels=channels, kernel_shape=1, stride=1,
                            with_bias=False, padding="SAME", name="conv_2")
            bn_2 = BatchNorm(name="batchnorm_2", **bn_config)
            layers.append((conv_2, bn_2))
        self.layers = tuple(layers)

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the block; ``is_training``/``test_local_stats`` go to the batch norms."""
        x = shortcut = inputs
        for i, (conv, bn) in enumerate(self.layers):
            x = bn(x, is_training, test_local_stats)
            x = jax.nn.relu(x)
            if i == 0 and self.use_projection:
                shortcut = self.proj_conv(x)
            x = conv(x)
        if x.shape != shortcut.shape:
            raise ValueError(
                f"{self.module_name}: the residual branch has shape {tuple(x.shape)} but the "
                f"shortcut has shape {tuple(shortcut.shape)}; use `use_projection=True` when the "
                "block changes the number of channels or has a stride.")
        return x + shortcut


class BlockGroup(core.Module):
    """``num_blocks`` residual blocks (``block_0``, ``block_1``, ...) of the same width.

    Only the first block has the ``stride`` and (if ``use_projection``) a projection shortcut.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     group = hk.nets.ResNet.BlockGroup(
    ...         channels=8, num_blocks=2, stride=2, bn_config={"decay_rate": 0.9},
    ...         resnet_v2=False, bottleneck=False, use_projection=True)
    ...     return group(x, is_training, test_local_stats=False)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
    >>> sorted({name.split("/~/")[1] for name in params})
    ['block_0', 'block_1']
    >>> f.apply(params, state, None, x, True)[0].shape
    (1, 2, 2, 8)

    Args:
      channels: output channels of every block.
      num_blocks: number of blocks.
      stride: stride of the first block.
      bn_config: keyword arguments of the ``BatchNorm`` layers.
      resnet_v2: whether to use :class:`BlockV2` (else :class:`BlockV1`).
      bottleneck: whether the blocks use the bottleneck design.
      use_projection: whether the first block has a projection shortcut.
      name: module name.
    """

    def __init__(self, channels: int, num_blocks: int, stride: Union[int, Sequence[int]],
                 bn_config: Mapping[str, FloatStrOrBool], resnet_v2: bool, bottleneck: bool,
                 use_projection: bool, name: Optional[str] = None):
        super().__init__(name=name)
        block_cls = BlockV2 if resnet_v2 else BlockV1
        self.blocks = tuple(
            block_cls(channels=channels, stride=(1 if i else stride),
                      use_projection=(i == 0 and use_projection), bottleneck=bottleneck,
                      bn_config=bn_config, name=f"block_{i}")
            for i in range(num_blocks))

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the blocks in order."""
        out = inputs
        for block in self.blocks:
            out = block(out, is_training, test_local_stats)
        return out


class ResNet(core.Module):
    """A ResNet: an initial 7x7 strided conv and max pool, four block groups, mean pooling and a
    linear classifier (``logits``, zero-initialised by default).

    v1 (default) applies batch norm and ReLU after the initial conv; v2 (``resnet_v2=True``)
    uses pre-activation blocks and applies a final batch norm and ReLU before pooling.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     net = hk.nets.ResNet(blocks_per_group=(1, 1, 1, 1), num_classes=3,
    ...                          bottleneck=False, channels_per_group=(4, 8, 8, 8))
    ...     return net(x, is_training)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones([2, 16, 16, 3])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
    >>> logits, state = f.apply(params, state, None, x, True)
    >>> logits
    Array([[0., 0., 0.],
           [0., 0., 0.]], dtype=float32)

    Args:
      blocks_per_group: number of blocks in each of the 4 groups.
      num_classes: number of output logits.
      bn_config: keyword arguments of every ``BatchNorm``; ``decay_rate`` defaults to 0.9,
        ``eps`` to 1e-5, ``create_scale`` and ``create_offset`` to ``True``.
      resnet_v2: whether to build the v2 (pre-activation) network.
      bottleneck: whether the blocks use the bottleneck design.
      channels_per_group: output channels of each of the 4 groups.
      use_projection: whether the first block of each of the 4 groups has a projection
        shortcut.
      logits_config: keyword arguments of the final ``Linear`` (defaults: ``w_init`` zeros,
        ``name="logits"``).
      name: module name.
      initial_conv_config: keyword arguments of the initial ``Conv2D`` (defaults: 64 channels,
        7x7 kernel, stride 2, no bias, ``SAME`` padding, ``name="initial_conv"``).
      strides: stride of each of the 4 groups.
    """

    BlockGroup = BlockGroup
    BlockV1 = BlockV1
    BlockV2 = BlockV2

    def __init__(self, blocks_per_group: Sequence[int], num_classes: int,
                 bn_config: Optional[Mapping[str, FloatStrOrBool]] = None,
                 resnet_v2: bool = False, bottleneck: bool = True,
                 channels_per_group: Sequence[int] = (256, 512, 1024, 2048),
                 use_projection: Sequence[bool] = (True, True, True, True),
                 logits_config: Optional[Mapping[str, Any]] = None,
                 name: Optional[str] = None,
                 initial_conv_config: Optional[Mapping[str, FloatStrOrBool]] = None,
                 strides: Sequence[int] = (1, 2, 2, 2)):
        super().__init__(name=name)
        self.resnet_v2 = resnet_v2
        who = f"{type(self).__name__} {self.module_name!r}"
        _check_length(who, 4, blocks_per_group, "blocks_per_group")
        _check_length(who, 4, channels_per_group, "channels_per_group")
        _check_length(who, 4, use_projection, "use_projection")
        _check_length(who, 4, strides, "strides")

        bn_config = _bn_config(bn_config)
        logits_config = dict(logits_config or {})
        logits_config.setdefault("w_init", jnp.zeros)
        logits_config.setdefault("name", "logits")
        initial_conv_config = dict(initial_conv_config or {})
        initial_conv_config.setdefault("output_channels", 64)
        initial_conv_config.setdefault("kernel_shape", 7)
        initial_conv_config.setdefault("stride", 2)
        initial_conv_config.setdefault("with_bias", False)
        initial_conv_config.setdefault("padding", "SAME")
        initial_conv_config.setdefault("name", "initial_conv")

        self.initial_conv = Conv2D(**initial_conv_config)
        if not resnet_v2:
            self.initial_batchnorm = BatchNorm(name="initial_batchnorm", **bn_config)

        self.block_groups = tuple(
            BlockGroup(channels=channels_per_group[i], num_blocks=blocks_per_group[i],
                       stride=strides[i], bn_config=bn_config, resnet_v2=resnet_v2,
                       bottleneck=bottleneck, use_projection=use_projection[i],
                       name=f"block_group_{i}")
            for i in range(4))

        if resnet_v2:
            self.final_batchnorm = BatchNorm(name="final_batchnorm", **bn_config)
        self.logits = Linear(num_classes, **logits_config)

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool = False) -> jax.Array:
        """Returns logits of shape ``[N, num_classes]`` for images of shape ``[N, H, W, C]``.

        ``is_training`` selects batch statistics (and updates the moving averages); with
        ``test_local_stats`` evaluation also uses batch statistics.
        """
        _check_nhwc(self.module_name, inputs)
        out = self.initial_conv(inputs)
        if not self.resnet_v2:
            out = self.initial_batchnorm(out, is_training, test_local_stats)
            out = jax.nn.relu(out)
        out = max_pool(out, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
        for block_group in self.block_groups:
            out = block_group(out, is_training, test_local_stats)
        if self.resnet_v2:
            out = self.final_batchnorm(out, is_training, test_local_stats)
            out = jax.nn.relu(out)
        out = jnp.mean(out, axis=(1, 2))
        return self.logits(out)


def _basic(blocks_per_group: tuple[int, int, int, int]) -> dict[str, Any]:
    return {"blocks_per_group": blocks_per_group, "bottleneck": False,
            "channels_per_group": (64, 128, 256, 512),
            "use_projection": (False, True, True, True)}


def _bottlenecked(blocks_per_group: tuple[int, int, int, int]) -> dict[str, Any]:
    return {"blocks_per_group": blocks_per_group, "bottleneck": True,
            "channels_per_group": (256, 512, 1024, 2048),
            "use_projection": (True, True, True, True)}


# The depth, width, bottleneck and projection settings of the published ResNets, by depth.
ResNet.CONFIGS = {
    18: _basic((2, 2, 2, 2)),
    34: _basic((3, 4, 6, 3)),
    50: _bottlenecked((3, 4, 6, 3)),
    101: _bottlenecked((3, 4, 23, 3)),
    152: _bottlenecked((3, 8, 36, 3)),
    200: _bottlenecked((3, 24, 36, 3)),
}


class _FixedResNet(ResNet):
    """A ResNet whose depth, width, bottleneck and projections are ``CONFIGS[_DEPTH]``."""

    _DEPTH: int

    def __init__(self, num_classes: int,
                 bn_config: Optional[Mapping[str, FloatStrOrBool]] = None,
                 resnet_v2: bool = False,
                 logits_config: Optional[Mapping[str, Any]] = None,
                 name: Optional[str] = None,
                 initial_conv_config: Optional[Mapping[str, FloatStrOrBool]] = None,
                 strides: Sequence[int] = (1, 2, 2, 2)):
        super().__init__(num_classes=num_classes, bn_config=bn_config, resnet_v2=resnet_v2,
                         logits_config=logits_config, name=name,
                         initial_conv_config=initial_conv_config, strides=strides,
                         **ResNet.CONFIGS[self._DEPTH])


_ARGS_DOC = """
    Args:
      num_classes: number of output logits.
      bn_config: keyword arguments of every ``BatchNorm`` (see :class:`ResNet`).
      resnet_v2: whether to build the v2 (pre-activation) network.
      logits_config: keyword arguments of the final ``Linear``.
      name: module name.
      initial_conv_config: keyword arguments of the initial ``Conv2D``.
      strides: stride of each of the 4 block groups.
"""


class ResNet18(_FixedResNet):
    """ResNet18: basic (non-bottleneck) blocks ``(2, 2, 2, 2)``, channels ``(64, ..., 512)``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet18(10)(x, is_training=True))
    >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), jnp.ones([1, 32, 32, 3]))
    >>> sum(p.size for p in jax.tree.leaves(params))
    11181642
    """
    _DEPTH = 18


class ResNet34(_FixedResNet):
    """ResNet34: basic (non-bottleneck) blocks ``(3, 4, 6, 3)``, channels ``(64, ..., 512)``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet34(10)(x, is_training=True))
    >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), jnp.ones([1, 32, 32, 3]))
    >>> sum(p.size for p in jax.tree.leaves(params))
    21289802
    """
    _DEPTH = 34


class ResNet50(_FixedResNet):
    """ResNet50: bottleneck blocks ``(3, 4, 6, 3)``, channels ``(256, ..., 2048)``.

    With 1000 classes it has the published 25.6M parameters:

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet50(1000)(x, is_training=True))
    >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), jnp.ones([1, 32, 32, 3]))
    >>> sum(p.size for p in jax.tree.leaves(params))
    25557032
    """
    _DEPTH = 50


class ResNet101(_FixedResNet):
    """ResNet101: bottleneck blocks ``(3, 4, 23, 3)``, channels ``(256, ..., 2048)``.

    >>> import senryu as hk
    >>> hk.nets.ResNet.CONFIGS[101]["blocks_per_group"]
    (3, 4, 23, 3)
    """
    _DEPTH = 101


class ResNet152(_FixedResNet):
    """ResNet152: bottleneck blocks ``(3, 8, 36, 3)``, channels ``(256, ..., 2048)``.

    >>> import senryu as hk
    >>> hk.nets.ResNet.CONFIGS[152]["blocks_per_group"]
    (3, 8, 36, 3)
    """
    _DEPTH = 152


class ResNet200(_FixedResNet):
    """ResNet200: bottleneck blocks ``(3, 24, 36, 3)``, channels ``(256, ..., 2048)``.

    >>> import senryu as hk
    >>> hk.nets.ResNet.CONFIGS[200]["blocks_per_group"]
    (3, 24, 36, 3)
    """
    _DEPTH = 200


for _cls in (ResNet18, ResNet34, ResNet50, ResNet101, ResNet152, ResNet200):
    _cls.__doc__ += _ARGS_DOC
del _cls
