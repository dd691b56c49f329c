"""Lifting: registering the parameters (and state) of an inner transform in the outer one."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Mapping, Optional

from senryu.core import frame as frame_lib
from senryu.core import module as module_lib
from senryu.core import naming
from senryu.core import params as params_lib
from senryu.core.transform import Params, State


def _scope_name(frame: frame_lib.Frame, name: Optional[str]) -> str:
    if name is None:
        return ""
    naming.validate_name(name, "lift")
    return naming.unique_name(frame, name)


def _prefixed(prefix: str, inner: str) -> str:
    return f"{prefix}/{inner}" if prefix else inner


def _register(frame, prefix: str, tree: Mapping, store: Callable[[str, str, Any], None]) -> None:
    for inner_module, values in tree.items():
        bundle = _prefixed(prefix, inner_module)
        frame.module_stack.append(frame_lib.ModuleCall(module_lib._NameScope(bundle), "__call__"))
        try:
            for key, value in values.items():
                store(bundle, key, value)
        finally:
            frame.module_stack.pop()


def _read(tree: Mapping, prefix: str, value_of=lambda v: v) -> dict:
    if not prefix:
        return {m: {k: value_of(v) for k, v in values.items()} for m, values in tree.items()}
    start = prefix + "/"
    return {m[len(start):]: {k: value_of(v) for k, v in values.items()}
            for m, values in tree.items() if m.startswith(start)}


class _Lifted:
    """Shared logic of ``lift`` and friends: a scope name, and a guard against reuse."""

    def __init__(self, init_fn: Callable, name: Optional[str], allow_reuse: bool, api: str):
        self.init_fn = init_fn
        self.name = name
        self.allow_reuse = allow_reuse
        self.api = api
        self.prefixes: "weakref.WeakKeyDictionary[frame_lib.Frame, str]" = (
            weakref.WeakKeyDictionary())

    def prefix(self, frame: frame_lib.Frame) -> str:
        key = frame
        if key in self.prefixes:
            if not self.allow_reuse:
                raise ValueError(
                    f"`hk.{self.api}` function was called twice in one transform; its parameters "
                    "would be registered twice. Pass `allow_reuse=True` to share them.")
            return self.prefixes[key]
        prefix = _scope_name(frame, self.name)
        self.prefixes[key] = prefix
        return prefix


def _param_store(bundle: str, key: str, value: Any) -> None:
    params_lib.get_parameter(key, value.shape, value.dtype, init=lambda *_: value)


def _state_store(bundle: str, key: str, value: Any) -> None:
    params_lib.get_state(key, value.shape, value.dtype, init=lambda *_: value)


def lift(init_fn: Callable[..., Params], *, allow_reuse: bool = False,
         name: str = "lifted") -> Callable[..., Params]:
    """Registers the parameters made by an inner ``init`` in the outer transform, under ``name/``.

    During ``init`` the returned function runs ``init_fn`` and stores its parameters in the outer
    transform; during ``apply`` it returns them from the outer parameters without running it.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     inner = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    ...     key = hk.next_rng_key() if hk.running_init() else None
    ...     params = hk.lift(inner.init, name="inner")(key, x)
    ...     return inner.apply(params, None, x)
    >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 4]))
    >>> sorted(params)
    ['inner/mlp/~/linear_0', 'inner/mlp/~/linear_1']
    """
    return _lift(init_fn, name, allow_reuse, "lift")


def transparent_lift(init_fn: Callable[..., Params], *, allow_reuse: bool = False
                     ) -> Callable[..., Params]:
    """As ``lift``, but the inner parameters keep their names (no prefix).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     inner = hk.transform(lambda x: hk.Linear(2)(x))
    ...     key = hk.next_rng_key() if hk.running_init() else None
    ...     return inner.apply(hk.transparent_lift(inner.init)(key, x), None, x)
    >>> sorted(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 4])))
    ['linear']
    """
    return _lift(init_fn, None, allow_reuse, "transparent_lift")


def _lift(init_fn, name, allow_reuse, api):
    lifted = _Lifted(init_fn, name, allow_reuse, api)

    def wrapped(*args, **kwargs):
        frame = frame_lib.current_frame(api)
        prefix = lifted.prefix(frame)
        if frame.is_init:
            frame.lift_prefixes.append(prefix)
            try:
                inner = init_fn(*args, **kwargs)
            finally:
                frame.lift_prefixes.pop()
            _register(frame, prefix, inner, _param_store)
        return _read(frame.params, prefix)

    return wrapped


class LiftWithStateUpdater:
    """Writes the new state of a ``lift_with_state``-ed inner transform back into the outer one."""

    __slots__ = ("_lifted",)

    def __init__(self, lifted: _Lifted):
        self._lifted = lifted

    def update(self, state: State) -> None:
        """Stores ``state`` (as returned by the inner ``apply``) as the outer transform's state."""
        frame = frame_lib.current_frame("LiftWithStateUpdater.update")
        prefix = self._lifted.prefixes.get(frame)
        if prefix is None:
            raise ValueError("LiftWithStateUpdater.update was called before the lifted init "
                             "function in this transform; call the lifted init first.")

        def store(bundle, key, value):
            params_lib.set_state(key, value)
        _register(frame, prefix, state, store)


def lift_with_state(init_fn: Callable[..., tuple[Params, State]], *, allow_reuse: bool = False,
                    name: str = "lifted") -> tuple[Callable[..., tuple[Params, State]],
                                                  LiftWithStateUpdater]:
    """As ``lift``, for an inner ``transform_with_state``: returns the lifted init and an updater.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def counter():
    ...     c = hk.get_state("c", [], jnp.int32, init=jnp.zeros)
    ...     hk.set_state("c", c + 1)
    ...     return c
    >>> inner = hk.transform_with_state(counter)
    >>> def f():
    ...     init, updater = hk.lift_with_state(inner.init, name="inner")
    ...     params, state = init(None)
    ...     out, state = inner.apply(params, state, None)
    ...     updater.update(state)
    ...     return out
    >>> outer = hk.transform_with_state(f)
    >>> params, state = outer.init(None)
    >>> _, state = outer.apply(params, state, None)
    >>> state
    {'inner/~': {'c': Array(1, dtype=int32)}}
    """
    return _lift_with_state(init_fn, name, allow_reuse, "lift_with_state")


def transparent_lift_with_state(init_fn: Callable[..., tuple[Params, State]], *,
                                allow_reuse: bool = False):
    """As ``lift_with_state``, keeping the inner names (no prefix)."""
    return _lift_with_state(init_fn, None, allow_reuse, "transparent_lift_with_state")


def _lift_with_state(init_fn, name, allow_reuse, api):
    lifted = _Lifted(init_fn, name, allow_reuse, api)

    def wrapped(*args, **kwargs):
        frame = frame_lib.current_frame(api)
        prefix = lifted.prefix(frame)
        if frame.is_init:
            frame.lift_prefixes.append(prefix)
            try:
                params, state = init_fn(*args, **kwargs)
            finally:
                frame.lift_prefixes.pop()
            _register(frame, prefix, params, _param_store)
            _register(frame, prefix, state, _state_store)
        return (_read(frame.params, prefix),
                _read(frame.state, prefix, lambda pair: pair.current))

    return wrapped, LiftWithStateUpdater(lifted)
