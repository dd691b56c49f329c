"""``hk.experimental``: newer and less stable APIs."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator

from senryu import config as _config
from senryu import core as _core
from senryu.core import name_like, name_scope
from senryu.core.params import GetterContext as ParamContext  # dm-haiku's alias
from senryu.core.lifting import LiftWithStateUpdater, lift, lift_with_state
from senryu.experimental import jaxpr_info
from senryu.experimental.dot import abstract_to_dot, to_dot
from senryu.experimental.summarise import (
    ArraySpec,
    MethodInvocation,
    ModuleDetails,
    eval_summary,
    tabulate,
)
from senryu.interop import override_jax_transforms
from senryu.wrappers import layer_stack
from senryu.wrappers.transforms import eval_shape as fast_eval_shape
from senryu.wrappers.transforms import named_call


def check_jax_usage(enabled: bool = True) -> bool:
    """Turns the raw-JAX leak checks on or off for the whole program; returns the old setting.

    They are on by default in senryu: state changed under a plain ``jax.*`` transform inside a
    transform raises ``hk.JaxUsageError``.

    >>> import senryu as hk
    >>> previous = hk.experimental.check_jax_usage(True)
    >>> previous
    True
    """
    previous = _config.get_config().check_jax_usage
    _config.set(check_jax_usage=enabled)
    return previous


def profiler_name_scopes(enabled: bool = True) -> bool:
    """Wraps module methods in ``jax.named_scope(module_name)`` (for profilers); returns the old setting.

    >>> import senryu as hk
    >>> hk.experimental.profiler_name_scopes(False)
    False
    """
    previous = _config.get_config().profiler_name_scopes
    _config.set(profiler_name_scopes=enabled)
    return previous


def module_auto_repr(enabled: bool = True) -> bool:
    """Sets whether modules get an automatic ``repr``; returns the old setting."""
    previous = _config.get_config().module_auto_repr
    _config.set(module_auto_repr=enabled)
    return previous


@contextlib.contextmanager
def rng_reserve_size(size: int) -> Iterator[None]:
    """Within the block, key sequences split ``size`` keys at a time when they run empty.

    >>> import jax, senryu as hk
    >>> with hk.experimental.rng_reserve_size(4):
    ...     keys = hk.transform(lambda: [hk.next_rng_key() for _ in range(3)]).apply({}, 0)
    >>> len(keys)
    3
    """
    if size < 1:
        raise ValueError(f"rng_reserve_size must be at least 1, got {size}.")
    with _config.context(rng_reserve_size=size):
        yield


def optimize_rng_use(fun: Callable) -> Callable:
    """Splits all the random keys ``fun`` draws with one ``jax.random.split`` (as Haiku does).

    ``fun`` is first evaluated abstractly (``jax.eval_shape``: no computation, no side effects)
    to count its ``hk.next_rng_key()`` calls; that many keys are then reserved at once and
    ``fun`` runs for real. The keys, hence the initial parameters, are dm-haiku's for the same
    function; they differ from those of ``fun`` without the decorator. Outside a transform, or
    in one without a random key, ``fun`` runs unchanged.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     return hk.nets.MLP([300, 100, 10])(x)
    >>> f = hk.transform(hk.experimental.optimize_rng_use(f))
    >>> params = f.init(jax.random.PRNGKey(42), jnp.ones([1, 1]))
    >>> sorted(params)
    ['mlp/~/linear_0', 'mlp/~/linear_1', 'mlp/~/linear_2']
    """
    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        if not _core.inside_transform() or _core.maybe_get_rng_sequence_state() is None:
            return fun(*args, **kwargs)
        count = _core.count_rng_draws(fun, *args, **kwargs)
        if count:
            _core.reserve_rng_keys(count)
        return fun(*args, **kwargs)

    return wrapper
