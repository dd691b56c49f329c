"""``hk.mixed_precision``: per-module-class dtype policies (``jmp.Policy`` objects).

A policy set for a module class with ``set_policy`` takes effect whenever a method of an instance of
exactly that class runs (subclasses are not affected):

- floating-point array arguments are cast to ``policy.compute_dtype``;
- parameters the method (or any module it calls) creates are created in ``policy.param_dtype``;
- parameters and state it reads are cast to ``policy.compute_dtype``;
- floating-point arrays in the result are cast to ``policy.output_dtype``.

Modules called from a module that has a policy inherit the parameter handling (creation and read
casts, ``current_policy``) but not the input/output casts, unless their own class has a policy, which
then takes over. Policies are per thread, like in Haiku: they apply to modules run in the thread that
set them.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

import jmp

from senryu import core

__all__ = ["set_policy", "get_policy", "current_policy", "clear_policy", "push_policy"]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.policies: dict[type, jmp.Policy] = {}  # explicit policies, by exact class
        self.active: list[jmp.Policy] = []  # policies of the module method calls now running


_state = _ThreadState()


def _check_class(cls: Any, api_name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, core.Module)):
        raise TypeError(
            f"`hk.mixed_precision.{api_name}` expects a module class (a subclass of `hk.Module`, "
            f"e.g. `hk.Linear`), got {cls!r}. Pass the class itself, not an instance or a name.")


def _check_policy(policy: Any, api_name: str) -> None:
    if policy is None:
        raise ValueError(
            f"`hk.mixed_precision.{api_name}` was given policy=None; to remove a policy use "
            "`hk.mixed_precision.clear_policy(cls)`.")
    missing = [attr for attr in ("param_dtype", "compute_dtype", "output_dtype",
                                 "cast_to_compute", "cast_to_output")
               if not hasattr(policy, attr)]
    if missing:
        raise TypeError(
            f"`hk.mixed_precision.{api_name}` expects a `jmp.Policy` (e.g. "
            f"`jmp.get_policy('params=float32,compute=bfloat16,output=float32')`), got "
            f"{type(policy).__name__}: {policy!r:.80} (missing {', '.join(missing)}).")


def _param_creator(next_creator, shape, dtype, init, context):
    del context
    if _state.active:  # parameters are always created in the policy's param dtype
        dtype = _state.active[-1].param_dtype
    return next_creator(shape, dtype, init)


def _compute_getter(next_getter, value, context):
    del context
    if _state.active:
        value = _state.active[-1].cast_to_compute(value)
    return next_getter(value)


def _interceptor(next_f, args, kwargs, context):
    policy = _state.policies.get(type(context.module))
    if policy is None:
        return next_f(*args, **kwargs)
    args, kwargs = policy.cast_to_compute((args, kwargs))
    _state.active.append(policy)
    try:
        # The creator and getter read the innermost active policy, so nesting them is harmless.
        with core.custom_creator(_param_creator), \
                core.custom_getter(_compute_getter, state=True):
            out = next_f(*args, **kwargs)
    finally:
        _state.active.pop()
    return policy.cast_to_output(out)


def _ensure_interceptor() -> None:
    """Installs the policy interceptor (once; it does nothing for classes without a policy)."""
    core.install_interceptor(_interceptor)


def set_policy(cls: type, policy: jmp.Policy) -> None:
    """Uses ``policy`` for every instance of the module class ``cls`` run in this thread.

    The policy applies to instances of exactly ``cls`` (not of its subclasses) and to the modules
    they call; a class with its own policy overrides the one of its caller.

    >>> import jax, jax.numpy as jnp, jmp, senryu as hk
    >>> policy = jmp.get_policy("params=float32,compute=bfloat16,output=float16")
    >>> hk.mixed_precision.set_policy(hk.Linear, policy)
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    >>> params["linear"]["w"].dtype  # stored in the param dtype
    dtype('float32')
    >>> f.apply(params, None, jnp.ones([1, 3])).dtype  # computed in bfloat16, returned as float16
    dtype('float16')
    >>> hk.mixed_precision.clear_policy(hk.Linear)

    Args:
      cls: a module class, e.g. ``hk.nets.ResNet50``.
      policy: a ``jmp.Policy``.
    """
    _check_class(cls, "set_policy")
    _check_policy(policy, "set_policy")
    _ensure_interceptor()
    _state.policies[cls] = policy


def get_policy(cls: type) -> Optional[jmp.Policy]:
    """The policy set for ``cls`` with ``set_policy`` (in this thread), or ``None``.

    Policies a module only inherits from its caller are not reported (see ``current_policy``).

    >>> import jmp, senryu as hk
    >>> print(hk.mixed_precision.get_policy(hk.Linear))
    None
    >>> hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=f32,c=bf16,o=f32"))
    >>> print(hk.mixed_precision.get_policy(hk.Linear))
    p=full,c=bf16,o=full
    >>> hk.mixed_precision.clear_policy(hk.Linear)

    Args:
      cls: a module class.
    """
    _check_class(cls, "get_policy")
    return _state.policies.get(cls)


def current_policy() -> Optional[jmp.Policy]:
    """The policy in effect where it is called: that of the innermost running module method whose
    class (or a calling module's class) has a policy; ``None`` if there is none.

    >>> import jax, jax.numpy as jnp, jmp, senryu as hk
    >>> class Probe(hk.Module):
    ...     def __call__(self):
    ...         return str(hk.mixed_precision.current_policy())
    >>> f = hk.transform(lambda: (str(hk.mixed_precision.current_policy()), Probe()()))
    >>> with hk.mixed_precision.push_policy(Probe, jmp.get_policy("p=f32,c=f16,o=f32")):
    ...     f.apply({}, None)
    ('None', 'p=full,c=f16,o=full')
    """
    return _state.active[-1] if _state.active else None


def clear_policy(cls: type) -> None:
    """Removes the policy set for ``cls`` (in this thread); does nothing if there is none.

    >>> import jmp, senryu as hk
    >>> hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("float32"))
    >>> hk.mixed_precision.clear_policy(hk.Linear)
    >>> print(hk.mixed_precision.get_policy(hk.Linear))
    None

    Args:
      cls: a module class.
    """
    _check_class(cls, "clear_policy")
    _state.policies.pop(cls, None)


@contextlib.contextmanager
def push_policy(cls: type, policy: jmp.Policy) -> Iterator[None]:
    """Context manager: uses ``policy`` for ``cls`` inside the block, then restores the previous
    policy of ``cls`` (or none).

    >>> import jmp, senryu as hk
    >>> with hk.mixed_precision.push_policy(hk.Linear, jmp.get_policy("p=f32,c=bf16,o=f32")):
    ...     print(hk.mixed_precision.get_policy(hk.Linear))
    p=full,c=bf16,o=full
    >>> print(hk.mixed_precision.get_policy(hk.Linear))
    None

    Args:
      cls: a module class.
      policy: a ``jmp.Policy`` (use ``clear_policy`` to remove a policy).
    """
    _check_class(cls, "push_policy")
    _check_policy(policy, "push_policy")
    previous = _state.policies.get(cls)
    set_policy(cls, policy)
    try:
        yield
    finally:
        if previous is None:
            _state.policies.pop(cls, None)
        else:
            _state.policies[cls] = previous
