"""Convolutional LSTM cores: ``Conv1DLSTM``, ``Conv2DLSTM``, ``Conv3DLSTM``."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp

from senryu.layers import conv
from senryu.layers.recurrent import (LSTMState, RNNCore, _add_batch, _check_array,
                                     _check_lstm_state, _where)

__all__ = ["Conv1DLSTM", "Conv2DLSTM", "Conv3DLSTM"]


class ConvNDLSTM(RNNCore):
    r"""An LSTM whose linear maps are ``num_spatial_dims``-D convolutions (Shi et al., 2015).

    The gates are computed as in :class:`~senryu.LSTM`, with ``*`` a ``SAME``-padded convolution::

        [i, g, f, o] = W_i * x_t + W_h * h_{t-1} + b
        c_t = sigmoid(f + 1) c_{t-1} + sigmoid(i) tanh(g)
        h_t = sigmoid(o) tanh(c_t)

    The two convolutions are ``input_to_hidden`` and ``hidden_to_hidden``, each with a bias and
    ``4 * output_channels`` output channels. Inputs are channels-last: ``[B, *input_shape, C]``
    (or ``[*input_shape, C]`` unbatched); the state has shape ``[B, *input_shape, output_channels]``.
    """

    def __init__(
        self,
        num_spatial_dims: int,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: Union[int, Sequence[int]],
        name: Optional[str] = None,
    ):
        """Builds the core.

        Args:
          num_spatial_dims: number of spatial dimensions (1, 2 or 3).
          input_shape: spatial shape of the inputs, without batch and channel axes.
          output_channels: number of channels of the hidden and cell states (and of the output).
          kernel_shape: kernel size, an int or one int per spatial dimension.
          name: module name.
        """
        super().__init__(name=name)
        self.num_spatial_dims = num_spatial_dims
        self.input_shape = tuple(input_shape)
        self.output_channels = output_channels
        self.kernel_shape = kernel_shape
        if len(self.input_shape) != num_spatial_dims:
            raise ValueError(
                f"{_where(self)}: input_shape {self.input_shape} must have {num_spatial_dims} "
                "entries (the spatial shape, without batch and channel axes).")

    def __call__(self, inputs, state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """Runs one step; returns ``(h_t, LSTMState(h_t, c_t))``."""
        _check_array(self, "inputs", inputs,
                     f"Pass a single array of shape [batch, *{list(self.input_shape)}, channels].")
        n = self.num_spatial_dims
        shape = tuple(inputs.shape)
        if len(shape) not in (n + 1, n + 2) or shape[-1 - n:-1] != self.input_shape:
            raise ValueError(
                f"{_where(self)}: inputs have shape {shape}, expected "
                f"[batch, *{list(self.input_shape)}, channels] or [*{list(self.input_shape)}, "
                "channels] (input_shape is the spatial shape given to the constructor).")
        _check_lstm_state(self, state, shape[:-1] + (self.output_channels,))
        input_to_hidden = conv.ConvND(
            num_spatial_dims=n, output_channels=4 * self.output_channels,
            kernel_shape=self.kernel_shape, name="input_to_hidden")
        hidden_to_hidden = conv.ConvND(
            num_spatial_dims=n, output_channels=4 * self.output_channels,
            kernel_shape=self.kernel_shape, name="hidden_to_hidden")
        gates = input_to_hidden(inputs) + hidden_to_hidden(state.hidden)
        i, g, f, o = jnp.split(gates, 4, axis=-1)
        f = jax.nn.sigmoid(f + 1)
        c = f * state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, LSTMState(h, c)

    def initial_state(self, batch_size: Optional[int]) -> LSTMState:
        """Zero state of shape ``[batch_size, *input_shape, output_channels]`` (no batch if None)."""
        shape = _add_batch(self.input_shape + (self.output_channels,), batch_size)
        return LSTMState(hidden=jnp.zeros(shape), cell=jnp.zeros(shape))


class Conv1DLSTM(ConvNDLSTM):
    """1-D convolutional LSTM (see :class:`ConvNDLSTM` for the equations).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.Conv1DLSTM(input_shape=[6], output_channels=4, kernel_shape=3)
    ...   return core(x, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 6, 3]))
    >>> sorted((k, v['w'].shape) for k, v in params.items())
    [('conv1_dlstm/hidden_to_hidden', (3, 4, 16)), ('conv1_dlstm/input_to_hidden', (3, 3, 16))]
    >>> out, state = f.apply(params, None, jnp.ones([2, 6, 3]))
    >>> out.shape
    (2, 6, 4)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: Union[int, Sequence[int]],
        name: Optional[str] = None,
    ):
        """Builds the core.

        Args:
          input_shape: spatial shape of the inputs (one int), without batch and channel axes.
          output_channels: number of channels of the state and output.
          kernel_shape: kernel size, an int or a sequence of one int.
          name: module name; defaults to ``conv1_dlstm``.
        """
        super().__init__(1, input_shape, output_channels, kernel_shape, name=name)


class Conv2DLSTM(ConvNDLSTM):
    """2-D convolutional LSTM (see :class:`ConvNDLSTM` for the equations).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.Conv2DLSTM(input_shape=[5, 5], output_channels=4, kernel_shape=3)
    ...   return core(x, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 5, 5, 3]))
    >>> out, state = f.apply(params, None, jnp.ones([2, 5, 5, 3]))
    >>> out.shape, state.cell.shape
    ((2, 5, 5, 4), (2, 5, 5, 4))
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: Union[int, Sequence[int]],
        name: Optional[str] = None,
    ):
        """Builds the core.

        Args:
          input_shape: spatial shape of the inputs (two ints), without batch and channel axes.
          output_channels: number of channels of the state and output.
          kernel_shape: kernel size, an int or a sequence of two ints.
          name: module name; defaults to ``conv2_dlstm``.
        """
        super().__init__(2, input_shape, output_channels, kernel_shape, name=name)


class Conv3DLSTM(ConvNDLSTM):
    """3-D convolutional LSTM (see :class:`ConvNDLSTM` for the equations).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.Conv3DLSTM(input_shape=[3, 3, 3], output_channels=2, kernel_shape=[3, 1, 2])
    ...   return core(x, core.initial_state(batch_size=None))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([3, 3, 3, 1]))
    >>> params['conv3_dlstm/input_to_hidden']['w'].shape
    (3, 1, 2, 1, 8)
    >>> out, state = f.apply(params, None, jnp.ones([3, 3, 3, 1]))
    >>> out.shape
    (3, 3, 3, 2)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: Union[int, Sequence[int]],
        name: Optional[str] = None,
    ):
        """Builds the core.

        Args:
          input_shape: spatial shape of the inputs (three ints), without batch and channel axes.
          output_channels: number of channels of the state and output.
          kernel_shape: kernel size, an int or a sequence of three ints.
          name: module name; defaults to ``conv3_dlstm``.
        """
        super().__init__(3, input_shape, output_channels, kernel_shape, name=name)
