"""Recurrent cores and the functions that unroll them over a sequence.

A recurrent core is a module with two methods: ``initial_state(batch_size)`` builds the state for
the first step and ``__call__(inputs, prev_state)`` returns ``(output, next_state)``.
``static_unroll`` and ``dynamic_unroll`` run a core over the time axis of a sequence.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from senryu import core
from senryu import initializers
from senryu import wrappers
from senryu.layers import basic

__all__ = [
    "RNNCore",
    "LSTMState",
    "VanillaRNN",
    "LSTM",
    "GRU",
    "IdentityCore",
    "ResetCore",
    "DeepRNN",
    "deep_rnn_with_skip_connections",
    "static_unroll",
    "dynamic_unroll",
]


# --------------------------------------------------------------------------------------------------
# Helpers shared by the cores (also used by ``senryu.layers.conv_lstm``).
# --------------------------------------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _describe(x: Any) -> str:
    if _is_array(x):
        return f"an array of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def _where(module: core.Module) -> str:
    return f"{type(module).__name__} {module.module_name!r}"


def _check_array(module: core.Module, what: str, x: Any, hint: str) -> None:
    if not _is_array(x):
        raise TypeError(f"{_where(module)}: {what} must be an array, got {_describe(x)}. {hint}")


def _check_lstm_state(module: core.Module, state: Any, expected_shape: tuple) -> None:
    """Checks ``state`` is an ``LSTMState`` whose hidden and cell have shape ``expected_shape``."""
    if not (hasattr(state, "hidden") and hasattr(state, "cell")):
        raise TypeError(
            f"{_where(module)}: prev_state must be an LSTMState(hidden, cell), got {_describe(state)}. "
            f"Build it with `{type(module).__name__}.initial_state(batch_size)` or "
            "`LSTMState(hidden=..., cell=...)`.")
    for field in ("hidden", "cell"):
        value = getattr(state, field)
        _check_array(module, f"prev_state.{field}", value,
                     "Build the state with `initial_state(batch_size)`.")
        if tuple(value.shape) != tuple(expected_shape):
            raise ValueError(
                f"{_where(module)}: prev_state.{field} has shape {tuple(value.shape)} but the inputs "
                f"need shape {tuple(expected_shape)} (batch dimensions of the inputs followed by the "
                "core's state shape). Check the hidden size and the batch size of the state.")


def _add_batch(shape: Sequence[int], batch_size: Optional[int]) -> tuple:
    shape = tuple(shape)
    return shape if batch_size is None else (batch_size,) + shape


# --------------------------------------------------------------------------------------------------
# Base class and simple cores.
# --------------------------------------------------------------------------------------------------


class RNNCore(core.Module, abc.ABC):
    """Abstract base class of recurrent cores.

    Subclasses implement ``__call__(inputs, prev_state) -> (output, next_state)`` and
    ``initial_state(batch_size)``; the cores can then be run over sequences with
    :func:`static_unroll` and :func:`dynamic_unroll`.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> class Counter(hk.RNNCore):
    ...   def __call__(self, inputs, prev_state):
    ...     return inputs + prev_state, prev_state + 1
    ...   def initial_state(self, batch_size):
    ...     return jnp.zeros([] if batch_size is None else [batch_size])
    >>> def f(xs):
    ...   core = Counter()
    ...   return hk.static_unroll(core, xs, core.initial_state(None))
    >>> out, final = hk.transform(f).apply({}, None, jnp.zeros([3]))
    >>> out.tolist(), float(final)
    ([0.0, 1.0, 2.0], 3.0)
    """

    @abc.abstractmethod
    def __call__(self, inputs, prev_state) -> tuple[Any, Any]:
        """Runs one step of the core: returns ``(output, next_state)``.

        ``next_state`` must have the same structure and shapes as ``prev_state``.
        """

    @abc.abstractmethod
    def initial_state(self, batch_size: Optional[int]):
        """Returns the state for the first step, with a leading ``batch_size`` axis.

        With ``batch_size=None`` the state has no batch axis (unbatched cores).
        """


class LSTMState(NamedTuple):
    """The state of an :class:`LSTM`: its ``hidden`` output and its ``cell`` memory.

    >>> import senryu as hk
    >>> import jax.numpy as jnp
    >>> state = hk.LSTMState(hidden=jnp.zeros([2, 3]), cell=jnp.ones([2, 3]))
    >>> state._fields, state.cell.shape
    (('hidden', 'cell'), (2, 3))
    """

    hidden: jax.Array
    cell: jax.Array


# Exported functions (jax.export) that take or return an LSTMState can be serialised.
jax.export.register_namedtuple_serialization(LSTMState, serialized_name="senryu.LSTMState")


class VanillaRNN(RNNCore):
    r"""Fully connected RNN core: ``h_t = relu(w_i x_t + b_i + w_h h_{t-1} + b_h)``.

    The output is the new state ``h_t``. The two linear maps are ``linear`` (input to hidden) and
    ``linear_1`` (hidden to hidden); with ``double_bias=False`` the second one has no bias.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.VanillaRNN(hidden_size=4)
    ...   return core(x, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    >>> params['vanilla_rnn/linear']['w'].shape, params['vanilla_rnn/linear_1']['w'].shape
    ((3, 4), (4, 4))
    >>> out, state = f.apply(params, None, jnp.ones([2, 3]))
    >>> out.shape, bool((out == state).all())
    ((2, 4), True)
    """

    def __init__(self, hidden_size: int, double_bias: bool = True, name: Optional[str] = None):
        """Builds the core.

        Args:
          hidden_size: size of the hidden state (and of the output).
          double_bias: whether the hidden-to-hidden map also has a bias. Two biases learn nothing
            more than one; the option only changes the parameter tree.
          name: module name; defaults to ``vanilla_rnn``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.double_bias = double_bias

    def __call__(self, inputs, prev_state):
        """Runs one step; returns ``(h_t, h_t)``."""
        _check_array(self, "inputs", inputs, "Pass a single array of shape [..., input_size].")
        _check_array(self, "prev_state", prev_state,
                     "Build the state with `initial_state(batch_size)`.")
        if prev_state.ndim < 1 or prev_state.shape[-1] != self.hidden_size:
            raise ValueError(
                f"{_where(self)}: prev_state has shape {tuple(prev_state.shape)}, its last axis must "
                f"be hidden_size={self.hidden_size}. Build it with `initial_state(batch_size)`.")
        _check_batch_broadcast(self, inputs, prev_state)
        input_to_hidden = basic.Linear(self.hidden_size)
        hidden_to_hidden = basic.Linear(self.hidden_size, with_bias=self.double_bias)
        out = jax.nn.relu(input_to_hidden(inputs) + hidden_to_hidden(prev_state))
        return out, out

    def initial_state(self, batch_size: Optional[int]):
        """Zeros of shape ``[batch_size, hidden_size]`` (``[hidden_size]`` if ``batch_size`` is None)."""
        return jnp.zeros(_add_batch([self.hidden_size], batch_size))


def _check_batch_broadcast(module: core.Module, inputs, prev_state) -> None:
    """Checks the batch axes of ``inputs`` and ``prev_state`` (all but the last) broadcast together."""
    if inputs.ndim < 1:
        raise ValueError(f"{_where(module)}: inputs must have a feature axis, got a scalar.")
    try:
        jnp.broadcast_shapes(tuple(inputs.shape[:-1]), tuple(prev_state.shape[:-1]))
    except ValueError:
        raise ValueError(
            f"{_where(module)}: the batch axes of inputs {tuple(inputs.shape)} and of prev_state "
            f"{tuple(prev_state.shape)} do not match. Build the state with "
            "`initial_state(batch_size)` using the inputs' batch size.") from None


class LSTM(RNNCore):
    r"""Long short-term memory core (Zaremba et al., 2014).

    One linear map of ``[x_t, h_{t-1}]`` gives the input gate ``i``, the cell update ``g``, the forget
    gate ``f`` and the output gate ``o`` (in that order along the last axis); then
    ``c_t = sigmoid(f + 1) c_{t-1} + sigmoid(i) tanh(g)`` and ``h_t = sigmoid(o) tanh(c_t)``. The
    ``+ 1`` on the forget gate (Jozefowicz et al., 2015) makes the core forget less early in training.
    The output is ``h_t``; the state is ``LSTMState(h_t, c_t)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.LSTM(hidden_size=4)
    ...   return core(x, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    >>> {n: v.shape for n, v in sorted(params['lstm/linear'].items())}
    {'b': (16,), 'w': (7, 16)}
    >>> out, state = f.apply(params, None, jnp.ones([2, 3]))
    >>> out.shape, state.hidden.shape, state.cell.shape
    ((2, 4), (2, 4), (2, 4))
    """

    def __init__(self, hidden_size: int, name: Optional[str] = None):
        """Builds the core.

        Args:
          hidden_size: size of the hidden and cell states (and of the output).
          name: module name; defaults to ``lstm``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size

    def __call__(self, inputs: jax.Array, prev_state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """Runs one step; returns ``(h_t, LSTMState(h_t, c_t))``."""
        _check_array(self, "inputs", inputs, "Pass a single array of shape [..., input_size].")
        if inputs.ndim < 1:
            raise ValueError(f"{_where(self)}: inputs must have a feature axis, got a scalar.")
        _check_lstm_state(self, prev_state, tuple(inputs.shape[:-1]) + (self.hidden_size,))
        x_and_h = jnp.concatenate([inputs, prev_state.hidden], axis=-1)
        gated = basic.Linear(4 * self.hidden_size)(x_and_h)
        i, g, f, o = jnp.split(gated, 4, axis=-1)
        f = jax.nn.sigmoid(f + 1)
        c = f * prev_state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, LSTMState(h, c)

    def initial_state(self, batch_size: Optional[int]) -> LSTMState:
        """Zero ``hidden`` and ``cell`` of shape ``[batch_size, hidden_size]`` (no batch if None)."""
        shape = _add_batch([self.hidden_size], batch_size)
        return LSTMState(hidden=jnp.zeros(shape), cell=jnp.zeros(shape))


class GRU(RNNCore):
    r"""Gated recurrent unit (Chung et al., 2014), with biases.

    With ``z`` the update gate and ``r`` the reset gate::

        z_t = sigmoid(W_iz x_t + W_hz h_{t-1} + b_z)
        r_t = sigmoid(W_ir x_t + W_hr h_{t-1} + b_r)
        a_t = tanh(W_ia x_t + W_ha (r_t * h_{t-1}) + b_a)
        h_t = (1 - z_t) * h_{t-1} + z_t * a_t

    The parameters are ``w_i`` (``[input_size, 3 * hidden_size]``), ``w_h``
    (``[hidden_size, 3 * hidden_size]``) and ``b`` (``[3 * hidden_size]``), the gates laid out as
    ``z, r, a`` along the last axis. The output is ``h_t``, which is also the new state.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.GRU(hidden_size=4)
    ...   return core(x, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    >>> {n: v.shape for n, v in sorted(params['gru'].items())}
    {'b': (12,), 'w_h': (4, 12), 'w_i': (3, 12)}
    >>> out, state = f.apply(params, None, jnp.ones([2, 3]))
    >>> out.shape
    (2, 4)
    """

    def __init__(
        self,
        hidden_size: int,
        w_i_init: Optional[initializers.Initializer] = None,
        w_h_init: Optional[initializers.Initializer] = None,
        b_init: Optional[initializers.Initializer] = None,
        name: Optional[str] = None,
    ):
        """Builds the core.

        Args:
          hidden_size: size of the hidden state (and of the output).
          w_i_init: initializer of ``w_i``; defaults to ``VarianceScaling()``.
          w_h_init: initializer of ``w_h``; defaults to ``VarianceScaling()``.
          b_init: initializer of ``b``; defaults to zeros.
          name: module name; defaults to ``gru``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.w_i_init = w_i_init or initializers.VarianceScaling()
        self.w_h_init = w_h_init or initializers.VarianceScaling()
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs, state):
        """Runs one step; returns ``(h_t, h_t)``."""
        _check_array(self, "inputs", inputs, "Pass a single array of shape [..., input_size].")
        _check_array(self, "state", state, "Build the state with `initial_state(batch_size)`.")
        if state.ndim < 1 or state.shape[-1] != self.hidden_size:
            raise ValueError(
                f"{_where(self)}: state has shape {tuple(state.shape)}, its last axis must be "
                f"hidden_size={self.hidden_size}. Build it with `initial_state(batch_size)`.")
        _check_batch_broadcast(self, inputs, state)
        hidden_size = self.hidden_size
        input_size = inputs.shape[-1]
        dtype = inputs.dtype
        w_i = core.get_parameter("w_i", [input_size, 3 * hidden_size], dtype, init=self.w_i_init)
        w_h = core.get_parameter("w_h", [hidden_size, 3 * hidden_size], dtype, init=self.w_h_init)
        b = core.get_parameter("b", [3 * hidden_size], dtype, init=self.b_init)
        w_h_zr, w_h_a = jnp.split(w_h, [2 * hidden_size], axis=1)
        b_zr, b_a = jnp.split(b, [2 * hidden_size])
        x_zr, x_a = jnp.split(inputs @ w_i, [2 * hidden_size], axis=-1)
        gates_zr = x_zr + state @ w_h_zr
        z, r = jnp.split(jax.nn.sigmoid(gates_zr + jnp.broadcast_to(b_zr, gates_zr.shape)), 2,
                         axis=-1)
        gate_a = x_a + (r * state) @ w_h_a
        a = jnp.tanh(gate_a + jnp.broadcast_to(b_a, gate_a.shape))
        next_state = (1 - z) * state + z * a
        return next_state, next_state

    def initial_state(self, batch_size: Optional[int]):
        """Zeros of shape ``[batch_size, hidden_size]`` (``[hidden_size]`` if ``batch_size`` is None)."""
        return jnp.zeros(_add_batch([self.hidden_size], batch_size))


class IdentityCore(RNNCore):
    """A core whose output is its input and whose state is passed through (initially ``()``).

    Handy to switch a model between recurrent and feed-forward versions without changing its code.

    >>> import senryu as hk
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.IdentityCore()
    ...   return core(x, core.initial_state(batch_size=2))
    >>> out, state = hk.transform(f).apply({}, None, jnp.ones([2, 3]))
    >>> out.shape, state
    ((2, 3), ())
    """

    def __call__(self, inputs, state):
        """Returns ``(inputs, state)`` unchanged."""
        return inputs, state

    def initial_state(self, batch_size: Optional[int]):
        """Returns the empty state ``()``."""
        return ()


# --------------------------------------------------------------------------------------------------
# ResetCore.
# --------------------------------------------------------------------------------------------------


def _input_batch_size(module: core.Module, inputs) -> int:
    input_leaves = jax.tree_util.tree_leaves(inputs)
    if not input_leaves or not input_leaves[0].shape:
        raise ValueError(f"{_where(module)}: the state is batched but the inputs have no batch axis.")
    return input_leaves[0].shape[0]


class ResetCore(RNNCore):
    """Wraps a core so that its state can be reset to the initial state at chosen steps.

    The inputs are a pair ``(inputs, should_reset)``. Where ``should_reset`` is true, the wrapped
    core's state is replaced by ``core.initial_state(batch_size)`` *before* the step runs.
    ``should_reset`` is either one boolean array whose shape is a prefix of every state entry's shape
    (usually ``[batch_size]``, or ``[]`` for an unbatched state), or a nest with the structure of the
    state, giving a prefix-shaped boolean array per state entry.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x, should_reset, state):
    ...   return hk.ResetCore(hk.IdentityCore())((x, should_reset), state)
    >>> f = hk.transform(f)
    >>> out, state = f.apply({}, None, jnp.ones([2, 3]), jnp.array([True, False]), ())
    >>> out.shape
    (2, 3)
    """

    def __init__(self, core: RNNCore, name: Optional[str] = None):
        """Wraps ``core`` (its parameters stay under its own name).

        Args:
          core: the core whose state is reset.
          name: module name; defaults to ``reset_core``.
        """
        super().__init__(name=name)
        self.core = core

    def __call__(self, inputs, state):
        """Resets ``state`` where requested, then runs one step of the wrapped core."""
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise TypeError(
                f"{_where(self)}: inputs must be a pair (inputs, should_reset), got "
                f"{_describe(inputs)}.")
        inputs, should_reset = inputs
        state_leaves, state_def = jax.tree_util.tree_flatten(state)
        if state_leaves:
            if _is_array(should_reset) or isinstance(should_reset, (bool, int)):
                reset_leaves = [jnp.asarray(should_reset)] * len(state_leaves)
            else:
                reset_leaves, reset_def = jax.tree_util.tree_flatten(should_reset)
                if reset_def != state_def:
                    raise ValueError(
                        f"{_where(self)}: should_reset must be one array or a nest with the "
                        f"structure of the state; got structure {reset_def} for state {state_def}.")
                reset_leaves = [jnp.asarray(r) for r in reset_leaves]
            for r, s in zip(reset_leaves, state_leaves):
                if tuple(s.shape[:r.ndim]) != tuple(r.shape):
                    raise ValueError(
                        f"{_where(self)}: should_reset signal shape {tuple(r.shape)} is not a prefix "
                        f"of the state entry shape {tuple(s.shape)}. Use e.g. shape [batch_size].")
            batch_size = _input_batch_size(self, inputs) if self._is_batched(state) else None
            init_leaves, init_def = jax.tree_util.tree_flatten(self.initial_state(batch_size))
            if init_def != state_def:
                raise ValueError(
                    f"{_where(self)}: the state's structure {state_def} differs from the wrapped "
                    f"core's initial_state structure {init_def}.")
            new_leaves = [
                jnp.where(r.reshape(r.shape + (1,) * (s.ndim - r.ndim)), i, s)
                for r, i, s in zip(reset_leaves, init_leaves, state_leaves)
            ]
            state = jax.tree_util.tree_unflatten(state_def, new_leaves)
        return self.core(inputs, state)

    def _is_batched(self, state) -> bool:
        """Whether the state has a batch axis, judged against a batch-of-one initial state."""
        state_leaves = jax.tree_util.tree_leaves(state)
        batched_leaves = jax.tree_util.tree_leaves(self.initial_state(batch_size=1))
        if len(batched_leaves) != len(state_leaves):
            raise ValueError(
                f"{_where(self)}: the state has {len(state_leaves)} entries but the wrapped core's "
                f"initial_state has {len(batched_leaves)}.")
        return not all(s.ndim == b.ndim - 1 for s, b in zip(state_leaves, batched_leaves))

    def initial_state(self, batch_size: Optional[int]):
        """The wrapped core's initial state."""
        return self.core.initial_state(batch_size)


# --------------------------------------------------------------------------------------------------
# DeepRNN.
# --------------------------------------------------------------------------------------------------


def _concat_last(*trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=-1), *trees)


def _count_cores(layers: Sequence[Any]) -> int:
    return sum(isinstance(layer, RNNCore) for layer in layers)


class _DeepRNN(RNNCore):
    """A stack of cores and callables run as one core (optionally with skip connections)."""

    def __init__(self, layers: Sequence[Any], skip_connections: bool, name: Optional[str] = None):
        super().__init__(name=name)
        self.layers = layers
        self.skip_connections = skip_connections
        if skip_connections:
            for layer in layers:
                if not isinstance(layer, RNNCore):
                    raise ValueError(
                        "skip_connections requires for all layers to be `hk.RNNCore`s. Layers is: "
                        f"{layers}")

    def __call__(self, inputs, state):
        """Runs each layer in turn; returns ``(output, tuple_of_core_states)``."""
        num_cores = _count_cores(self.layers)
        if not isinstance(state, (tuple, list)):
            raise TypeError(
                f"{_where(self)}: state must be a tuple with one entry per RNNCore layer "
                f"({num_cores}), got {_describe(state)}. Build it with `initial_state(batch_size)`.")
        if len(state) != num_cores:
            raise ValueError(
                f"{_where(self)}: state has {len(state)} entries but the layers hold {num_cores} "
                "RNNCores (one entry each). Build it with `initial_state(batch_size)`.")
        if self.skip_connections and not self.layers:
            raise ValueError(
                f"{_where(self)}: a DeepRNN with skip connections needs at least one layer.")
        current = inputs
        outputs = []
        next_states = []
        core_index = 0
        for index, layer in enumerate(self.layers):
            if self.skip_connections and index > 0:
                current = _concat_last(inputs, current)
            if isinstance(layer, RNNCore):
                current, next_state = layer(current, state[core_index])
                next_states.append(next_state)
                core_index += 1
            else:
                current = layer(current)
            outputs.append(current)
        output = _concat_last(*outputs) if self.skip_connections else current
        return output, tuple(next_states)

    def initial_state(self, batch_size: Optional[int]):
        """A tuple of the initial states of the RNNCore layers, in order."""
        return tuple(layer.initial_state(batch_size) for layer in self.layers
                     if isinstance(layer, RNNCore))


class DeepRNN(_DeepRNN):
    """Runs a sequence of cores and plain callables as one core.

    Each layer gets the previous layer's output; callables (e.g. ``jax.nn.relu``) are applied as
    they are. The state is a tuple with one entry per :class:`RNNCore` layer (``()`` if there is
    none). Layers are created outside the ``DeepRNN``, so their parameters keep their own names.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   deep_rnn = hk.DeepRNN([hk.LSTM(hidden_size=4), jax.nn.relu, hk.LSTM(hidden_size=2)])
    ...   return deep_rnn(x, deep_rnn.initial_state(batch_size=3))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([3, 5]))
    >>> sorted(params)
    ['lstm/linear', 'lstm_1/linear']
    >>> out, state = f.apply(params, None, jnp.ones([3, 5]))
    >>> out.shape, len(state)
    ((3, 2), 2)
    """

    def __init__(self, layers: Sequence[Any], name: Optional[str] = None):
        """Builds the stack.

        Args:
          layers: ``RNNCore`` instances and callables, applied in order.
          name: module name; defaults to ``deep_rnn``.
        """
        super().__init__(layers, skip_connections=False, name=name)


def deep_rnn_with_skip_connections(
    layers: Sequence[RNNCore], name: Optional[str] = None
) -> RNNCore:
    """Builds a deep RNN whose layers also see the original inputs.

    Layer ``i > 0`` gets ``concatenate([inputs, output_{i-1}], axis=-1)``; the output is the
    concatenation of all the layers' outputs along the last axis.

    Raises:
      ValueError: if a layer is not an ``RNNCore``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(x):
    ...   core = hk.deep_rnn_with_skip_connections([hk.LSTM(4), hk.LSTM(2)])
    ...   return core(x, core.initial_state(batch_size=3))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([3, 5]))
    >>> params['lstm_1/linear']['w'].shape  # 5 inputs + 4 from the first LSTM + 2 hidden
    (11, 8)
    >>> out, state = f.apply(params, None, jnp.ones([3, 5]))
    >>> out.shape
    (3, 6)
    """
    return _DeepRNN(layers, skip_connections=True, name=name)


# --------------------------------------------------------------------------------------------------
# Unrolling.
# --------------------------------------------------------------------------------------------------


def _swap_batch_time(tree):
    return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), tree)


def _check_sequence(fn_name: str, input_sequence, time_major: bool) -> int:
    """Checks every leaf has the same number of steps; returns it."""
    leaves = jax.tree_util.tree_leaves(input_sequence)
    if not leaves:
        raise ValueError(f"{fn_name}: input_sequence has no arrays.")
    axis = 0 if time_major else 1
    layout = "[T, ...]" if time_major else "[B, T, ...]"
    lengths = set()
    for leaf in leaves:
        if not _is_array(leaf) or len(leaf.shape) <= axis:
            raise ValueError(
                f"{fn_name}: every input must have shape {layout} (time_major={time_major}), got "
                f"{_describe(leaf)}.")
        lengths.add(leaf.shape[axis])
    if len(lengths) != 1:
        raise ValueError(
            f"{fn_name}: all inputs must have the same number of time steps along axis {axis}, got "
            f"shapes {[tuple(leaf.shape) for leaf in leaves]}.")
    return lengths.pop()


def static_unroll(core: RNNCore, input_sequence, initial_state, time_major: bool = True):
    """Unrolls ``core`` over ``input_sequence`` with a Python loop (one copy of the step per time step).

    Equivalent to::

        state = initial_state
        for t in range(T):
          output_t, state = core(input_sequence[t], state)

    with the outputs stacked along the time axis. Under ``jax.jit`` the loop is unrolled; see
    :func:`dynamic_unroll` for a loop that stays a loop.

    Args:
      core: the core to run.
      input_sequence: a nest of arrays of shape ``[T, ...]`` (``[B, T, ...]`` if not ``time_major``).
      initial_state: the core's state before the first step.
      time_major: whether the time axis comes first (else second, after the batch axis).

    Returns:
      ``(output_sequence, final_state)``, the outputs laid out like the inputs.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(xs):
    ...   core = hk.LSTM(hidden_size=4)
    ...   return hk.static_unroll(core, xs, core.initial_state(batch_size=2))
    >>> f = hk.transform(f)
    >>> xs = jnp.ones([5, 2, 3])  # [T, B, features]
    >>> params = f.init(jax.random.PRNGKey(0), xs)
    >>> outs, final_state = f.apply(params, None, xs)
    >>> outs.shape, final_state.hidden.shape
    ((5, 2, 4), (2, 4))
    """
    num_steps = _check_sequence("static_unroll", input_sequence, time_major)
    if num_steps == 0:
        raise ValueError("static_unroll: input_sequence has zero time steps.")
    if not time_major:
        input_sequence = _swap_batch_time(input_sequence)
    outputs = []
    state = initial_state
    for t in range(num_steps):
        inputs = jax.tree_util.tree_map(lambda x, t=t: x[t], input_sequence)
        output, state = core(inputs, state)
        outputs.append(output)
    output_sequence = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outputs)
    if not time_major:
        output_sequence = _swap_batch_time(output_sequence)
    return output_sequence, state


def dynamic_unroll(
    core: RNNCore,
    input_sequence,
    initial_state,
    time_major: bool = True,
    reverse: bool = False,
    return_all_states: bool = False,
    unroll: int = 1,
):
    """Unrolls ``core`` over ``input_sequence`` with ``hk.scan`` (the loop stays a loop under jit).

    Computes the same as :func:`static_unroll`, with two extra options.

    Args:
      core: the core to run.
      input_sequence: a nest of arrays of shape ``[T, ...]`` (``[B, T, ...]`` if not ``time_major``).
      initial_state: the core's state before the first step.
      time_major: whether the time axis comes first (else second, after the batch axis).
      reverse: run from the last step to the first (as ``jax.lax.scan(reverse=True)``): the output
        at position ``t`` is still the one computed from input ``t``.
      return_all_states: return the state after every step (stacked like the outputs) in place of
        the final state.
      unroll: how many steps each loop iteration runs (passed to ``scan``).

    Returns:
      ``(output_sequence, final_state)``, or ``(output_sequence, state_sequence)`` if
      ``return_all_states``; sequences laid out like the inputs.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def f(xs):
    ...   core = hk.GRU(hidden_size=4)
    ...   return hk.dynamic_unroll(core, xs, core.initial_state(batch_size=2), time_major=False)
    >>> f = hk.transform(f)
    >>> xs = jnp.ones([2, 5, 3])  # [B, T, features]
    >>> params = f.init(jax.random.PRNGKey(0), xs)
    >>> outs, final_state = f.apply(params, None, xs)
    >>> outs.shape, final_state.shape
    ((2, 5, 4), (2, 4))
    """
    _check_sequence("dynamic_unroll", input_sequence, time_major)
    if not time_major:
        input_sequence = _swap_batch_time(input_sequence)

    def step(prev_state, inputs):
        output, next_state = core(inputs, prev_state)
        return next_state, ((output, next_state) if return_all_states else output)

    final_state, stacked = wrappers.scan(step, initial_state, input_sequence, reverse=reverse,
                                         unroll=unroll)
    if return_all_states:
        output_sequence, state_sequence = stacked
        if not time_major:
            output_sequence = _swap_batch_time(output_sequence)
            state_sequence = _swap_batch_time(state_sequence)
        return output_sequence, state_sequence
    output_sequence = stacked
    if not time_major:
        output_sequence = _swap_batch_time(output_sequence)
    return output_sequence, final_state
