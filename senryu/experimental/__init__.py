"""``hk.experimental``: newer and less stable APIs."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from senryu import config as _config
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
    """Accepted for compatibility with Haiku: returns ``fun`` unchanged.

    Haiku uses it to split all random keys of ``fun`` at once; senryu's key splitting is already
    cheap, so the function is run as it is (keys drawn are the same as without the decorator).
    """
    return fun
