"""``override_jax_transforms``: plain ``jax.*`` transforms that carry module state.

While an override is active in a thread *and* a transform is running in it, calls such as
``jax.vmap(f)`` or ``jax.lax.scan(f, ...)`` (looked up by attribute, by any code) go to the
state-carrying ``hk.*`` versions. Everywhere else they are JAX's own functions.

How: when the first override becomes active anywhere, the JAX attributes are replaced with small
dispatchers; when the last one ends they are put back, so a program that never uses the override
(or no longer does) runs JAX's untouched functions. A dispatcher asks two thread-local questions
(is an override active in *this* thread? is a transform running?) and picks a function: another
thread's plain JAX is never affected.

What cannot be intercepted: a JAX function bound to a name before the override started
(``from jax.lax import scan``), or a function jitted (``jax.jit(f)``) before it started. Such code
is caught by the leak detection instead (``hk.JaxUsageError``), never a silent leak.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable

import jax

from senryu import config as config_lib
from senryu import core
from senryu import wrappers
from senryu.wrappers import autodiff
from senryu.wrappers import originals


def _lax_cond(pred, true_fun, false_fun, *operands, **kwargs):
    return wrappers.cond(pred, true_fun, false_fun, *operands, **kwargs)


# (namespace, attribute, the state-carrying replacement).
_TARGETS: list[tuple[Any, str, Callable]] = [
    (jax, "jit", wrappers.jit),
    (jax, "vmap", wrappers.vmap),
    (jax, "grad", wrappers.grad),
    (jax, "value_and_grad", wrappers.value_and_grad),
    (jax, "jacfwd", autodiff.jacfwd),
    (jax, "jacrev", autodiff.jacrev),
    (jax, "hessian", autodiff.hessian),
    (jax, "jvp", autodiff.jvp),
    (jax, "vjp", autodiff.vjp),
    (jax, "linearize", autodiff.linearize),
    (jax, "eval_shape", wrappers.eval_shape),
    (jax, "checkpoint", wrappers.remat),
    (jax, "remat", wrappers.remat),
    (jax, "named_call", wrappers.named_call),
    (jax.lax, "scan", wrappers.scan),
    (jax.lax, "cond", _lax_cond),
    (jax.lax, "switch", wrappers.switch),
    (jax.lax, "fori_loop", wrappers.fori_loop),
    (jax.lax, "while_loop", wrappers.while_loop),
    (jax.lax, "map", wrappers.map),
]

_ORIGINALS = {(namespace, name): getattr(originals, "checkpoint" if name == "remat" else name)
              for namespace, name, _ in _TARGETS}


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.depth = 0


_thread = _ThreadState()
_lock = threading.Lock()
_users = 0  # active overrides in all threads, plus one while the global switch is on
_global_switch = False


def is_active() -> bool:
    """True if plain JAX transforms are overridden in this thread now."""
    return _thread.depth > 0 or config_lib.get_config().override_jax_transforms


def _dispatcher(original: Callable, replacement: Callable) -> Callable:
    @functools.wraps(original)
    def dispatch(*args, **kwargs):
        if (_thread.depth > 0 or config_lib.get_config().override_jax_transforms) and (
                core.inside_transform()):
            return replacement(*args, **kwargs)
        return original(*args, **kwargs)
    dispatch.__senryu_dispatcher__ = True
    return dispatch


_DISPATCHERS = {(namespace, name): _dispatcher(_ORIGINALS[(namespace, name)], replacement)
                for namespace, name, replacement in _TARGETS}


def _install() -> None:
    for (namespace, name), dispatcher in _DISPATCHERS.items():
        setattr(namespace, name, dispatcher)


def _uninstall() -> None:
    for (namespace, name), original in _ORIGINALS.items():
        setattr(namespace, name, original)


def _acquire() -> None:
    global _users
    with _lock:
        if _users == 0:
            _install()
        _users += 1


def _release() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            _uninstall()


def _on_config_change(name: str, value: Any) -> None:
    global _global_switch
    if name != "override_jax_transforms" or bool(value) == _global_switch:
        return
    _global_switch = bool(value)
    _acquire() if value else _release()


config_lib.add_listener(_on_config_change)


class override_jax_transforms(contextlib.ContextDecorator):  # noqa: N801 - API name
    """Makes plain ``jax.*`` transforms carry parameters, state and random keys in a transform.

    Use it as a context manager or a decorator. It affects only the current thread, nests, and
    restores everything on exit (also when an exception escapes). Outside a transform, JAX
    functions behave exactly as usual. ``hk.config.set(override_jax_transforms=True)`` turns it
    on for the whole program.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def solver(f, x):          # third-party code: knows nothing of senryu
    ...     return jax.lax.fori_loop(0, 3, lambda i, x: f(x), x)
    >>> @hk.experimental.override_jax_transforms()
    ... def forward(x):
    ...     return solver(hk.Linear(2, w_init=jnp.ones), x)
    >>> f = hk.transform(forward)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    >>> f.apply(params, None, jnp.ones([1, 2]))
    Array([[8., 8.]], dtype=float32)
    """

    def __enter__(self) -> "override_jax_transforms":
        _acquire()
        _thread.depth += 1
        return self

    def __exit__(self, *exc_info) -> bool:
        _thread.depth -= 1
        _release()
        return False
