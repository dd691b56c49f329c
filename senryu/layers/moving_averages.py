"""Exponential moving averages kept in state: ``ExponentialMovingAverage``, ``EMAParamsTree``."""

from __future__ import annotations

import collections.abc
import numbers
import re
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp

from senryu import core
from senryu import initializers

__all__ = ["ExponentialMovingAverage", "EMAParamsTree"]


def _check_decay(decay: Any, who: str, param: str = "decay") -> None:
    # Only plain numbers are checked; a traced or array decay (e.g. a schedule) is trusted.
    # 1 is let through (it freezes the average, which some code relies on).
    if isinstance(decay, numbers.Real) and not 0. <= decay <= 1.:
        raise ValueError(f"{who}: `{param}` must be between 0 and 1, got {decay}.")


def _as_scoped_property(cls: type, name: str) -> None:
    """Turns the public method ``cls.name`` into a read-only property.

    The method is written as a plain public method so that ``core.Module`` wraps it (it then runs
    in the module's name scope and reads the module's own state, wherever it is called from);
    only afterwards is the wrapped method made a property, as Haiku's API has it.
    """
    setattr(cls, name, property(cls.__dict__[name], doc=cls.__dict__[name].__doc__))


class ExponentialMovingAverage(core.Module):
    """Keeps an exponential moving average of the values it is called with, in state.

    Each update sets ``hidden = decay * hidden + (1 - decay) * value`` and increments a
    ``counter``. With ``zero_debias`` (Adam's bias correction, https://arxiv.org/abs/1412.6980)
    the ``average`` is ``hidden / (1 - decay ** counter)``, otherwise it is ``hidden``. With a
    ``warmup_length`` the average simply follows the input for the first ``warmup_length``
    updates. State entries: ``counter`` (int32 scalar), ``hidden`` and ``average``.

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(lambda x: hk.ExponentialMovingAverage(0.5)(x))
    >>> params, state = f.init(None, jnp.array(2.))
    >>> for x in [2., 6., 10.]:
    ...     average, state = f.apply(params, state, None, jnp.array(x))
    ...     print(average)
    2.0
    4.6666665
    7.714286

    Args:
      decay: decay in ``[0, 1)``; values close to 1 decay slowly.
      zero_debias: whether to correct the bias towards the zero initial value.
      warmup_length: non-negative number of updates during which the average is the input
        itself; requires ``zero_debias=False`` when positive.
      name: module name.
    """

    def __init__(self, decay: Union[float, jax.Array], zero_debias: bool = True,
                 warmup_length: int = 0, name: Optional[str] = None):
        super().__init__(name=name)
        who = type(self).__name__
        _check_decay(decay, who)
        if warmup_length < 0:
            raise ValueError(
                f"`warmup_length` is {warmup_length}, but should be non-negative ({who}).")
        if warmup_length and zero_debias:
            raise ValueError(
                "Zero debiasing does not make sense when warming up the value of the average to "
                "an initial value. Set zero_debias=False if setting warmup_length to a non-zero "
                f"value ({who}).")
        self._decay = decay
        self._zero_debias = zero_debias
        self._warmup_length = warmup_length

    def initialize(self, shape, dtype=jnp.float32) -> None:
        """Creates ``hidden`` and ``average`` as zeros of ``shape``/``dtype`` if not yet present.

        >>> import jax.numpy as jnp, senryu as hk
        >>> def f():
        ...     ema = hk.ExponentialMovingAverage(0.9)
        ...     ema.initialize([2])
        ...     return ema.average
        >>> hk.transform_with_state(f).init(None)[1]
        {'exponential_moving_average': {'hidden': Array([0., 0.], dtype=float32), \
'average': Array([0., 0.], dtype=float32)}}
        """
        core.get_state("hidden", shape, dtype, init=jnp.zeros)
        core.get_state("average", shape, dtype, init=jnp.zeros)

    def average(self) -> jax.Array:
        """The current moving average (state entry ``average``)."""
        return core.get_state("average")

    def __call__(self, value: Union[float, jax.Array], update_stats: bool = True) -> jax.Array:
        """Folds ``value`` into the average and returns the new average.

        With ``update_stats=False`` the would-be average is returned but no state changes.
        """
        value = jnp.asarray(value)
        if value.dtype == jnp.bool_:
            raise TypeError(
                f"{type(self).__name__} {self.module_name!r}: cannot average boolean values; "
                "cast them first, e.g. `value.astype(jnp.float32)`.")
        counter = core.get_state("counter", (), jnp.int32,
                                 init=initializers.Constant(-self._warmup_length))
        counter = counter + 1
        # The decay is computed in the value's dtype (an integer value gets an integer decay).
        decay = jax.lax.convert_element_type(self._decay, value.dtype)
        if self._warmup_length > 0:
            decay = jnp.where(counter <= 0, jnp.zeros([], value.dtype), decay)
        one = jnp.ones([], value.dtype)

        hidden = core.get_state("hidden", value.shape, value.dtype, init=jnp.zeros)
        if jnp.shape(hidden) != value.shape:
            raise ValueError(
                f"{type(self).__name__} {self.module_name!r}: value has shape "
                f"{tuple(value.shape)} but the moving average holds shape "
                f"{tuple(jnp.shape(hidden))}; feed values of one fixed shape (use a separate "
                "module per shape).")
        hidden = hidden * decay + value * (one - decay)

        average = hidden
        if self._zero_debias:
            # lax.pow takes the integer step count as it is (as jnp.power does under standard
            # promotion: the same operation), and is not subject to strict dtype promotion.
            if jnp.issubdtype(decay.dtype, jnp.inexact):
                power = jax.lax.pow(decay, counter)
            else:
                power = jnp.power(decay, counter.astype(decay.dtype))
            average = average / (one - power)

        if update_stats:
            core.set_state("counter", counter)
            core.set_state("hidden", hidden)
            core.set_state("average", average)
        return average


_as_scoped_property(ExponentialMovingAverage, "average")


def _check_tree(tree: Any, who: str) -> None:
    if not isinstance(tree, collections.abc.Mapping):
        raise TypeError(
            f"{who}: expected a parameter tree {{module_name: {{param_name: array}}}} (like "
            f"hk.Params), got {type(tree).__name__}.")
    for module_name, params in tree.items():
        if not isinstance(params, collections.abc.Mapping):
            raise TypeError(
                f"{who}: expected a parameter tree {{module_name: {{param_name: array}}}}, but "
                f"tree[{module_name!r}] is of type {type(params).__name__}, not a mapping.")
        for param_name, value in params.items():
            if isinstance(value, collections.abc.Mapping):
                raise TypeError(
                    f"{who}: expected a parameter tree {{module_name: {{param_name: array}}}}, "
                    f"but tree[{module_name!r}][{param_name!r}] is a mapping, not an array.")


def _map_params_tree(module: core.Module, tree: Any, ignore_regex: str,
                     fn: Callable[[str, str, Any], Any]) -> dict:
    """Applies ``fn(module_name, param_name, value)`` to each leaf not matched by the regex."""
    _check_tree(tree, f"{type(module).__name__} {module.module_name!r}")
    out = {}
    for module_name, params in tree.items():
        out[module_name] = {}
        for param_name, value in params.items():
            if ignore_regex and re.match(ignore_regex, f"{module_name}/{param_name}"):
                out[module_name][param_name] = value
            else:
                out[module_name][param_name] = fn(module_name, param_name, value)
    return out


class EMAParamsTree(core.Module):
    """Keeps an exponential moving average of every parameter in a tree.

    Called with a whole ``hk.Params`` tree, it returns the tree of averages, with the same
    structure (entries whose ``"module/param"`` path matches ``ignore_regex`` are returned
    unchanged). One ``ExponentialMovingAverage`` per leaf holds the state.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> network_fn = lambda x: hk.Linear(10)(x)
    >>> params = hk.transform(network_fn).init(jax.random.PRNGKey(428), jnp.ones([1, 1]))
    >>> ema_fn = hk.transform_with_state(lambda p: hk.EMAParamsTree(0.2)(p))
    >>> _, ema_state = ema_fn.init(None, params)
    >>> ema_params, ema_state = ema_fn.apply(None, ema_state, None, params)
    >>> sorted(ema_state)
    ['ema_params_tree/linear__b', 'ema_params_tree/linear__w']
    >>> bool(jnp.allclose(ema_params["linear"]["w"], params["linear"]["w"]))
    True

    Args:
      decay: decay in ``[0, 1)``.
      zero_debias: whether to correct the bias towards zero.
      warmup_length: updates during which the average follows the input.
      ignore_regex: parameters whose ``"module/param"`` path ``re.match``-es it are left alone;
        the empty string averages everything.
      name: module name.
    """

    def __init__(self, decay: Union[float, jax.Array], zero_debias: bool = True,
                 warmup_length: int = 0, ignore_regex: str = "", name: Optional[str] = None):
        super().__init__(name=name)
        _check_decay(decay, type(self).__name__)
        self._decay = decay
        self._zero_debias = zero_debias
        self._warmup_length = warmup_length
        self._ignore_regex = ignore_regex

    def __call__(self, tree: Any, update_stats: bool = True) -> Any:
        """Returns the tree of moving averages of ``tree``'s parameters."""

        def average(module_name: str, param_name: str, value: Any) -> jax.Array:
            name = f"{module_name}/{param_name}".replace("/", "__").replace("~", "_tilde_")
            ema = ExponentialMovingAverage(self._decay, zero_debias=self._zero_debias,
                                           warmup_length=self._warmup_length, name=name)
            return ema(value, update_stats=update_stats)

        return _map_params_tree(self, tree, self._ignore_regex, average)
