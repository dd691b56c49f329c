"""Convolutions: ``ConvND``/``Conv1D``/``Conv2D``/``Conv3D`` and their transposes."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from senryu import core
from senryu import initializers
from senryu import pad as pad_lib

__all__ = [
    "ConvND",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "ConvNDTranspose",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "get_channel_index",
]

PaddingLike = Union[str, Sequence[tuple[int, int]], pad_lib.PadFn, Sequence[pad_lib.PadFn]]
IntLike = Union[int, Sequence[int]]

_CHANNELS_FIRST = re.compile(r"NC[^C]*")
_CHANNELS_LAST = re.compile(r"N[^C]*C|(BT|TB)[^D]*D")


def get_channel_index(data_format: str) -> int:
    """Returns the axis of the channels for ``data_format``: ``1`` or ``-1``.

    Valid formats are ``"channels_first"``, ``"channels_last"``, spatial layouts such as
    ``"NCHW"``/``"NHWC"``/``"NC..."``/``"N...C"`` and sequential ones such as ``"BTHWD"``.

    >>> import senryu as hk
    >>> hk.get_channel_index("channels_last"), hk.get_channel_index("NCHW")
    (-1, 1)
    >>> hk.get_channel_index("N...C")
    -1

    Raises:
      ValueError: if the format is not recognised.
    """
    if data_format == "channels_first" or (isinstance(data_format, str)
                                           and _CHANNELS_FIRST.fullmatch(data_format)):
        return 1
    if data_format == "channels_last" or (isinstance(data_format, str)
                                          and _CHANNELS_LAST.fullmatch(data_format)):
        return -1
    raise ValueError(
        f"Unable to extract channel information from data_format {data_format!r}. Valid data "
        "formats are 'channels_first', 'channels_last', spatial ones whose channels come second or "
        "last (e.g. 'NCHW', 'NHWC', 'NC...', 'N...C') and sequential ones (e.g. 'BTHWD').")


# ---------------------------------------------------------------------------------------------
# Helpers shared with depthwise_conv.py (private to the layers package).


def _channel_index(module_name: str, data_format: str) -> int:
    try:
        return get_channel_index(data_format)
    except ValueError as e:
        raise ValueError(f"{module_name}: {e}") from None


def _to_tuple(module_name: str, value: Any, n: int, what: str, positive: bool = True
              ) -> tuple[int, ...]:
    """Broadcasts an int or a sequence of 1 or ``n`` ints to an ``n``-tuple of ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (1, n):
        out = tuple(int(v) for v in value) * (n if len(value) == 1 else 1)
    else:
        raise TypeError(
            f"{module_name}: {what} must be an int or a sequence of 1 or {n} ints (one per spatial "
            f"dimension), got {value!r}.")
    if positive and any(v < 1 for v in out):
        raise ValueError(f"{module_name}: every {what} must be >= 1, got {value!r}.")
    return out


_STRING_PADDINGS = ("SAME", "VALID", "SAME_LOWER")


def _resolve_padding(module_name: str, padding: Any, kernel: tuple[int, ...],
                     rate: tuple[int, ...], n: int,
                     allowed_strings: Sequence[str] = _STRING_PADDINGS,
                     allow_fns: bool = True) -> Union[str, tuple[tuple[int, int], ...]]:
    """Returns an upper-case padding string or explicit ``(before, after)`` pairs."""
    if isinstance(padding, str):
        if padding.upper() not in allowed_strings:
            raise ValueError(
                f"{module_name}: unknown padding {padding!r}; use one of "
                f"{', '.join(repr(s) for s in allowed_strings)}, a sequence of (low, high) integer "
                "pairs" + (", or a hk.pad function (e.g. hk.pad.causal)." if allow_fns else "."))
        return padding.upper()
    has_fn = callable(padding) or (isinstance(padding, Sequence)
                                   and any(callable(p) for p in padding))
    if has_fn and not allow_fns:
        raise TypeError(
            f"{module_name}: padding functions are not supported here; use 'SAME', 'VALID' or "
            f"a sequence of (low, high) pairs, got {padding!r}.")
    try:
        if has_fn:
            return pad_lib.create(padding, kernel, rate, n)
        return pad_lib.create_from_tuple(padding, n)
    except TypeError as e:
        raise TypeError(f"{module_name}: invalid padding {padding!r}: {e}") from None


def _explicit_padding(padding: Union[str, tuple], in_sizes: Sequence[int],
                      effective_kernel: Sequence[int], stride: Sequence[int]
                      ) -> list[tuple[int, int]]:
    """Converts a padding string to explicit pairs (TensorFlow/XLA semantics)."""
    if not isinstance(padding, str):
        return [tuple(p) for p in padding]
    if padding == "VALID":
        return [(0, 0)] * len(in_sizes)
    pads = []
    for size, k, s in zip(in_sizes, effective_kernel, stride):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        low = total // 2 if padding == "SAME" else total - total // 2
        pads.append((low, total - low))
    return pads


def _get_weight(module: core.Module, name: str, shape: tuple[int, ...], dtype: Any,
                init: initializers.Initializer, in_channels: int, layer: str) -> jax.Array:
    """``core.get_parameter``, with a clear error when the stored parameter was built for inputs
    with another number of channels."""
    try:
        return core.get_parameter(name, shape, dtype, init=init)
    except ValueError as e:
        try:
            existing = module.params_dict().get(f"{module.module_name}/{name}")
        except Exception:  # noqa: BLE001 - only used to improve the message
            existing = None
        if existing is None or tuple(existing.shape) == tuple(shape):
            raise
        raise ValueError(
            f"{module.module_name}: {layer} got inputs with {in_channels} channels, which needs "
            f"'{name}' of shape {tuple(shape)}, but its parameter "
            f"'{module.module_name}/{name}' has shape {tuple(existing.shape)} (it was created for "
            "inputs with a different number of channels). Apply the module to inputs like those "
            "it was initialised with, or re-run init.") from e


def _dimension_numbers(n: int, channel_index: int, rhs_out_dim: int, rhs_in_dim: int
                       ) -> lax.ConvDimensionNumbers:
    spatial = tuple(range(2, n + 2)) if channel_index == 1 else tuple(range(1, n + 1))
    feature = 1 if channel_index == 1 else n + 1
    lhs = (0, feature) + spatial
    rhs = (rhs_out_dim, rhs_in_dim) + tuple(range(n))
    return lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs)


def _spatial_sizes(shape: Sequence[int], n: int, channel_index: int) -> tuple[int, ...]:
    return tuple(shape[2:]) if channel_index == 1 else tuple(shape[1:n + 1])


def _bias_shape(channels: int, n: int, channel_index: int) -> tuple[int, ...]:
    return (channels,) + (1,) * n if channel_index == 1 else (channels,)


class ConvND(core.Module):
    """An N-dimensional convolution (cross-correlation, as in XLA) with an optional bias.

    The kernel ``w`` has shape ``kernel_shape + [input_channels // feature_group_count,
    output_channels]``; the bias ``b`` has shape ``[output_channels]`` (channels last) or
    ``[output_channels, 1, ..., 1]`` (channels first).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.ConvND(2, output_channels=4, kernel_shape=3, stride=2)(x))
    >>> x = jnp.ones([1, 8, 8, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> jax.tree.map(jnp.shape, params)
    {'conv_nd': {'b': (4,), 'w': (3, 3, 3, 4)}}
    >>> f.apply(params, None, x).shape
    (1, 4, 4, 4)

    Args:
      num_spatial_dims: number of spatial dimensions ``N`` (>= 1).
      output_channels: number of output channels.
      kernel_shape: kernel size, an int or a sequence of ``N`` ints.
      stride: stride, an int or a sequence of ``N`` ints (default 1).
      rate: dilation rate of the kernel, an int or a sequence of ``N`` ints (default 1).
      padding: ``"SAME"``, ``"VALID"`` (or ``"SAME_LOWER"``); a sequence of ``(low, high)`` pairs
        (one, or one per spatial dimension); a ``hk.pad`` function or a sequence of them, which get
        the effective kernel size ``(k - 1) * rate + 1``.
      with_bias: whether to add a bias.
      w_init: kernel initializer; default truncated normal with stddev ``1 / sqrt(fan_in)``,
        ``fan_in = prod(kernel_shape) * input_channels // feature_group_count``.
      b_init: bias initializer; default zeros.
      data_format: ``"channels_last"`` (``N...C``) or ``"channels_first"`` (``NC...``), or any
        format accepted by :func:`get_channel_index`.
      mask: optional array of the kernel's shape multiplied into the kernel.
      feature_group_count: number of groups of a grouped convolution (default 1).
      name: module name.
    """

    def __init__(self, num_spatial_dims: int, output_channels: int, kernel_shape: IntLike,
                 stride: IntLike = 1, rate: IntLike = 1, padding: PaddingLike = "SAME",
                 with_bias: bool = True, w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 data_format: str = "channels_last", mask: Optional[jax.Array] = None,
                 feature_group_count: int = 1, name: Optional[str] = None):
        super().__init__(name=name)
        if not isinstance(num_spatial_dims, (int, np.integer)) or num_spatial_dims < 1:
            raise ValueError(
                f"{self.module_name}: num_spatial_dims must be an int >= 1, got "
                f"{num_spatial_dims!r}.")
        n = self.num_spatial_dims = int(num_spatial_dims)
        self.output_channels = output_channels
        self.kernel_shape = _to_tuple(self.module_name, kernel_shape, n, "kernel_shape")
        self.stride = _to_tuple(self.module_name, stride, n, "stride")
        self.kernel_dilation = _to_tuple(self.module_name, rate, n, "rate")
        self.lhs_dilation = (1,) * n
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros
        self.mask = mask
        if not isinstance(feature_group_count, (int, np.integer)) or feature_group_count < 1:
            raise ValueError(f"{self.module_name}: feature_group_count must be an int >= 1, got "
                             f"{feature_group_count!r}.")
        self.feature_group_count = int(feature_group_count)
        self.data_format = data_format
        self.channel_index = _channel_index(self.module_name, data_format)
        self.dimension_numbers = _dimension_numbers(n, self.channel_index, n + 1, n)
        self.padding = _resolve_padding(self.module_name, padding, self.kernel_shape,
                                        self.kernel_dilation, n)

    def __call__(self, inputs: jax.Array, *, precision: Optional[lax.Precision] = None
                 ) -> jax.Array:
        """Convolves ``inputs`` of shape ``[N, *spatial, C]`` (or ``[*spatial, C]`` unbatched).

        For channels-first formats the channel axis comes right after the batch axis.
        """
        n = self.num_spatial_dims
        name = self.module_name
        layer = type(self).__name__
        if inputs.ndim not in (n + 1, n + 2):
            raise ValueError(
                f"{name}: {layer} expects inputs of rank {n + 2} (batched) or {n + 1} (unbatched), "
                f"but got an input of shape {inputs.shape}.")
        unbatched = inputs.ndim == n + 1
        if unbatched:
            inputs = jnp.expand_dims(inputs, 0)
        in_channels = inputs.shape[self.channel_index]
        groups = self.feature_group_count
        if in_channels % groups:
            raise ValueError(
                f"{name}: the number of input channels ({in_channels}) must be a multiple of "
                f"feature_group_count ({groups}).")
        if self.output_channels % groups:
            raise ValueError(
                f"{name}: output_channels ({self.output_channels}) must be a multiple of "
                f"feature_group_count ({groups}).")
        w_shape = self.kernel_shape + (in_channels // groups, self.output_channels)
        if self.mask is not None and tuple(self.mask.shape) != w_shape:
            raise ValueError(
                f"{name}: mask must have the kernel's shape {w_shape}, got "
                f"{tuple(self.mask.shape)}.")


        in_sizes = _spatial_sizes(inputs.shape, n, self.channel_index)
        effective = tuple((k - 1) * r + 1 for k, r in zip(self.kernel_shape, self.kernel_dilation))
        pads = _explicit_padding(self.padding, in_sizes, effective, self.stride)
        for size, k, (lo, hi) in zip(in_sizes, effective, pads):
            if size > 0 and size + lo + hi < k:
                raise ValueError(
                    f"{name}: the effective kernel size {effective} (kernel_shape "
                    f"{self.kernel_shape}, rate {self.kernel_dilation}) is larger than the padded "
                    f"input (spatial size {in_sizes}, padding {self.padding!r}), which would give "
                    "an empty output. Use a smaller kernel or rate, larger inputs, or "
                    "padding='SAME'.")

        w_init = self.w_init
        if w_init is None:
            fan_in = math.prod(w_shape[:-1])
            w_init = initializers.TruncatedNormal(stddev=1. / np.sqrt(fan_in))
        w = _get_weight(self, "w", w_shape, inputs.dtype, w_init, in_channels, layer)
        if self.mask is not None:
            w = w * self.mask
        out = lax.conv_general_dilated(
            inputs, w, window_strides=self.stride, padding=pads,
            lhs_dilation=self.lhs_dilation, rhs_dilation=self.kernel_dilation,
            dimension_numbers=self.dimension_numbers, feature_group_count=groups,
            precision=precision)

        if self.with_bias:
            b = core.get_parameter(
                "b", _bias_shape(self.output_channels, n, self.channel_index), inputs.dtype,
                init=self.b_init)
            out = out + jnp.broadcast_to(b, out.shape)
        if unbatched:
            out = jnp.squeeze(out, axis=0)
        return out


class Conv1D(ConvND):
    """A 1D convolution over inputs of shape ``[N, W, C]`` (``NWC``) or ``[N, C, W]`` (``NCW``).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv1D(output_channels=2, kernel_shape=3)(x))
    >>> x = jnp.ones([1, 5, 3])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 5, 2)

    Arguments are those of :class:`ConvND` with ``num_spatial_dims=1``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: PaddingLike = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NWC",
                 mask: Optional[jax.Array] = None, feature_group_count: int = 1,
                 name: Optional[str] = None):
        super().__init__(1, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)


class Conv2D(ConvND):
    """A 2D convolution over inputs of shape ``[N, H, W, C]`` (``NHWC``) or ``[N, C, H, W]``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv2D(output_channels=2, kernel_shape=3, stride=2)(x))
    >>> x = jnp.ones([1, 6, 6, 3])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 3, 3, 2)

    Arguments are those of :class:`ConvND` with ``num_spatial_dims=2``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: PaddingLike = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NHWC",
                 mask: Optional[jax.Array] = None, feature_group_count: int = 1,
                 name: Optional[str] = None):
        super().__init__(2, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)


class Conv3D(ConvND):
    """A 3D convolution over inputs of shape ``[N, D, H, W, C]`` (``NDHWC``) or ``NCDHW``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv3D(output_channels=2, kernel_shape=2)(x))
    >>> x = jnp.ones([1, 3, 3, 3, 1])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 3, 3, 3, 2)

    Arguments are those of :class:`ConvND` with ``num_spatial_dims=3``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 rate: IntLike = 1, padding: PaddingLike = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NDHWC",
                 mask: Optional[jax.Array] = None, feature_group_count: int = 1,
                 name: Optional[str] = None):
        super().__init__(3, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)


def _transpose_padding(conv: "ConvNDTranspose", in_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Padding of the stride-dilated input that gives the requested output size."""
    if not isinstance(conv.padding, str):
        return [tuple(p) for p in conv.padding]
    pads = []
    for d, (size, k, s) in enumerate(zip(in_sizes, conv.kernel_shape, conv.stride)):
        if conv.output_shape is not None:
            out = conv.output_shape[d]
        elif conv.padding == "SAME":
            out = size * s
        else:
            out = (size - 1) * s + max(k, s)
        # The forward (strided) convolution that this op is the transpose of maps `out` to
        # `expected`; its padding determines ours.
        if conv.padding == "SAME":
            expected = -(-out // s)
            total = max((expected - 1) * s + k - out, 0)
            lo = total // 2
        else:
            expected = -(-(out - k + 1) // s) if out >= k else 0
            total = lo = 0
        if expected != size:
            raise ValueError(
                f"{conv.module_name}: output_shape {conv.output_shape} is inconsistent with "
                f"the input: with kernel {conv.kernel_shape}, stride {conv.stride} and padding "
                f"{conv.padding!r}, an output of size {out} in spatial dimension {d} needs an "
                f"input of size {expected}, but the input has size {size}.")
        hi = total - lo
        remainder = (out + total - k) % s
        pads.append((k - 1 - lo, k - 1 - hi + remainder))
    return pads


class ConvNDTranspose(core.Module):
    """An N-dimensional transposed convolution (a.k.a. deconvolution).

    With ``SAME`` padding each spatial size is multiplied by the stride; with ``VALID`` it becomes
    ``(size - 1) * stride + max(kernel, stride)``. ``output_shape`` picks another output size among
    those a strided convolution would map back to the input size. The kernel ``w`` has shape
    ``kernel_shape + [output_channels, input_channels]``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.ConvNDTranspose(2, output_channels=4, kernel_shape=3,
    ...                                                stride=2)(x))
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> jax.tree.map(jnp.shape, params)
    {'conv_nd_transpose': {'b': (4,), 'w': (3, 3, 4, 3)}}
    >>> f.apply(params, None, x).shape
    (1, 8, 8, 4)

    Args:
      num_spatial_dims: number of spatial dimensions ``N`` (>= 1).
      output_channels: number of output channels.
      kernel_shape: kernel size, an int or a sequence of ``N`` ints.
      stride: stride, an int or a sequence of ``N`` ints (default 1).
      output_shape: spatial output size, an int or a sequence of ``N`` ints; default computed from
        the padding as above. Only with ``"SAME"`` or ``"VALID"`` padding.
      padding: ``"SAME"`` or ``"VALID"``, or a sequence of ``(low, high)`` pairs (one, or one per
        spatial dimension) that pad the stride-dilated input.
      with_bias: whether to add a bias.
      w_init: kernel initializer; default truncated normal with stddev ``1 / sqrt(fan_in)``,
        ``fan_in = prod(kernel_shape) * input_channels``.
      b_init: bias initializer; default zeros.
      data_format: ``"channels_last"`` or ``"channels_first"`` (see :func:`get_channel_index`).
      mask: optional array of the kernel's shape multiplied into the kernel.
      name: module name.
    """

    def __init__(self, num_spatial_dims: int, output_channels: int, kernel_shape: IntLike,
                 stride: IntLike = 1, output_shape: Optional[IntLike] = None,
                 padding: Union[str, Sequence[tuple[int, int]]] = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 data_format: str = "channels_last", mask: Optional[jax.Array] = None,
                 name: Optional[str] = None):
        super().__init__(name=name)
        if not isinstance(num_spatial_dims, (int, np.integer)) or num_spatial_dims < 1:
            raise ValueError(
                f"{self.module_name}: num_spatial_dims must be an int >= 1, got "
                f"{num_spatial_dims!r}.")
        n = self.num_spatial_dims = int(num_spatial_dims)
        self.output_channels = output_channels
        self.kernel_shape = _to_tuple(self.module_name, kernel_shape, n, "kernel_shape")
        self.stride = _to_tuple(self.module_name, stride, n, "stride")
        self.output_shape = (None if output_shape is None else
                             _to_tuple(self.module_name, output_shape, n, "output_shape",
                                       positive=False))
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros
        self.mask = mask
        self.data_format = data_format
        self.channel_index = _channel_index(self.module_name, data_format)
        self.dimension_numbers = _dimension_numbers(n, self.channel_index, n, n + 1)
        self.padding = _resolve_padding(self.module_name, padding, self.kernel_shape, (1,) * n, n,
                                        allowed_strings=("SAME", "VALID"), allow_fns=False)
        if self.output_shape is not None and not isinstance(self.padding, str):
            raise ValueError(
                f"{self.module_name}: output_shape can only be given with padding 'SAME' or "
                f"'VALID', got padding {padding!r}.")

    def __call__(self, inputs: jax.Array, *, precision: Optional[lax.Precision] = None
                 ) -> jax.Array:
        """Applies the transposed convolution to ``[N, *spatial, C]`` (or unbatched) inputs."""
        n = self.num_spatial_dims
        name = self.module_name
        layer = type(self).__name__
        if inputs.ndim not in (n + 1, n + 2):
            raise ValueError(
                f"{name}: {layer} expects inputs of rank {n + 2} (batched) or {n + 1} (unbatched), "
                f"but got an input of shape {inputs.shape}.")
        unbatched = inputs.ndim == n + 1
        if unbatched:
            inputs = jnp.expand_dims(inputs, 0)
        in_channels = inputs.shape[self.channel_index]
        w_shape = self.kernel_shape + (self.output_channels, in_channels)
        if self.mask is not None and tuple(self.mask.shape) != w_shape:
            raise ValueError(
                f"{name}: mask must have the kernel's shape {w_shape}, got "
                f"{tuple(self.mask.shape)}.")

        in_sizes = _spatial_sizes(inputs.shape, n, self.channel_index)
        pads = _transpose_padding(self, in_sizes)
        for size, k, s, (lo, hi) in zip(in_sizes, self.kernel_shape, self.stride, pads):
            if size > 0 and (size - 1) * s + 1 + lo + hi < k:
                raise ValueError(
                    f"{name}: padding {self.padding!r} with kernel {self.kernel_shape} gives an "
                    f"empty output for inputs of spatial size {in_sizes}; use larger padding.")
        w_init = self.w_init
        if w_init is None:
            fan_in = math.prod(self.kernel_shape) * in_channels
            w_init = initializers.TruncatedNormal(stddev=1. / np.sqrt(fan_in))
        w = _get_weight(self, "w", w_shape, inputs.dtype, w_init, in_channels, layer)
        if self.mask is not None:
            w = w * self.mask
        out = lax.conv_general_dilated(
            inputs, w, window_strides=(1,) * n, padding=pads, lhs_dilation=self.stride,
            rhs_dilation=(1,) * n, dimension_numbers=self.dimension_numbers, precision=precision)

        if self.with_bias:
            b = core.get_parameter(
                "b", _bias_shape(self.output_channels, n, self.channel_index), inputs.dtype,
                init=self.b_init)
            out = out + jnp.broadcast_to(b, out.shape)
        if unbatched:
            out = jnp.squeeze(out, axis=0)
        return out


class Conv1DTranspose(ConvNDTranspose):
    """A 1D transposed convolution over ``NWC`` (or ``NCW``) inputs.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv1DTranspose(output_channels=2, kernel_shape=3,
    ...                                                stride=2)(x))
    >>> x = jnp.ones([1, 5, 3])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 10, 2)

    Arguments are those of :class:`ConvNDTranspose` with ``num_spatial_dims=1``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 output_shape: Optional[IntLike] = None,
                 padding: Union[str, Sequence[tuple[int, int]]] = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NWC",
                 mask: Optional[jax.Array] = None, name: Optional[str] = None):
        super().__init__(1, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)


class Conv2DTranspose(ConvNDTranspose):
    """A 2D transposed convolution over ``NHWC`` (or ``NCHW``) inputs.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv2DTranspose(2, 3, stride=2, output_shape=(7, 7))(x))
    >>> x = jnp.ones([1, 4, 4, 3])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 7, 7, 2)

    Arguments are those of :class:`ConvNDTranspose` with ``num_spatial_dims=2``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 output_shape: Optional[IntLike] = None,
                 padding: Union[str, Sequence[tuple[int, int]]] = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NHWC",
                 mask: Optional[jax.Array] = None, name: Optional[str] = None):
        super().__init__(2, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)


class Conv3DTranspose(ConvNDTranspose):
    """A 3D transposed convolution over ``NDHWC`` (or ``NCDHW``) inputs.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Conv3DTranspose(2, 2, stride=2, padding="VALID")(x))
    >>> x = jnp.ones([1, 2, 2, 2, 1])
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (1, 4, 4, 4, 2)

    Arguments are those of :class:`ConvNDTranspose` with ``num_spatial_dims=3``.
    """

    def __init__(self, output_channels: int, kernel_shape: IntLike, stride: IntLike = 1,
                 output_shape: Optional[IntLike] = None,
                 padding: Union[str, Sequence[tuple[int, int]]] = "SAME", with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None, data_format: str = "NDHWC",
                 mask: Optional[jax.Array] = None, name: Optional[str] = None):
        super().__init__(3, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)
