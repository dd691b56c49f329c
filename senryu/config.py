"""Global switches (``hk.config``): ``hk.config.set(...)`` and ``with hk.config.context(...)``."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Callable, Iterator


@dataclasses.dataclass
class Config:
    """The settings senryu reads.

    Attributes:
      check_jax_usage: raise ``hk.JaxUsageError`` when a raw JAX transform inside a transform
        would leak state (on by default in senryu).
      module_auto_repr: give modules a ``repr`` listing their constructor arguments.
      profiler_name_scopes: wrap module methods in ``jax.named_scope`` for profilers.
      rng_reserve_size: keys split at once when a key sequence runs empty.
      override_jax_transforms: make plain ``jax.*`` transforms state-aware inside every transform.
    """
    check_jax_usage: bool = True
    module_auto_repr: bool = True
    profiler_name_scopes: bool = False
    rng_reserve_size: int = 1
    override_jax_transforms: bool = False


_global = Config()
_lock = threading.Lock()
_listeners: list[Callable[[str, Any], None]] = []


def add_listener(listener: Callable[[str, Any], None]) -> None:
    """Registers ``listener(name, value)``, called after each change of a setting."""
    _listeners.append(listener)


def _assign(name: str, value: Any) -> None:
    setattr(_global, name, value)
    for listener in _listeners:
        listener(name, value)


def get_config() -> Config:
    """The configuration in force."""
    return _global


def _check_keys(kwargs: dict) -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(kwargs.keys() - names)
    if unknown:
        raise ValueError(f"Unknown hk.config option(s) {unknown}; the options are {sorted(names)}.")


def set(**kwargs: Any) -> None:  # noqa: A001 - mirrors hk.config.set
    """Changes settings for the whole program.

    >>> import senryu as hk
    >>> hk.config.set(profiler_name_scopes=False)
    """
    _check_keys(kwargs)
    with _lock:
        for name, value in kwargs.items():
            _assign(name, value)


@contextlib.contextmanager
def context(**kwargs: Any) -> Iterator[None]:
    """Changes settings within a ``with`` block, restoring them afterwards.

    >>> import senryu as hk
    >>> with hk.config.context(check_jax_usage=False):
    ...     pass
    """
    _check_keys(kwargs)
    with _lock:
        previous = {name: getattr(_global, name) for name in kwargs}
        for name, value in kwargs.items():
            _assign(name, value)
    try:
        yield
    finally:
        with _lock:
            for name, value in previous.items():
                _assign(name, value)
