"""Transforms: turn a function that uses modules into pure ``init`` and ``apply`` functions."""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from typing import Any, Callable, NamedTuple, TypeVar

import jax

from senryu.core import frame as frame_lib
from senryu.core import rng as rng_lib

Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, jax.Array]]
MutableParams = MutableMapping[str, MutableMapping[str, jax.Array]]
MutableState = MutableMapping[str, MutableMapping[str, jax.Array]]


class Transformed(NamedTuple):
    """A pair of pure functions: ``params = init(rng, *a, **k)``, ``out = apply(params, rng, *a, **k)``."""
    init: Callable[..., Params]
    apply: Callable[..., Any]


class TransformedWithState(NamedTuple):
    """``params, state = init(rng, *a, **k)``; ``out, state = apply(params, state, rng, *a, **k)``."""
    init: Callable[..., tuple[Params, State]]
    apply: Callable[..., tuple[Any, State]]


class MultiTransformed(NamedTuple):
    """One pure ``init`` and a pytree of pure ``apply`` functions sharing its parameters."""
    init: Callable[..., Params]
    apply: Any


class MultiTransformedWithState(NamedTuple):
    """As ``MultiTransformed``, with state in and out of every function."""
    init: Callable[..., tuple[Params, State]]
    apply: Any


TransformedT = TypeVar("TransformedT", Transformed, TransformedWithState, MultiTransformed,
                       MultiTransformedWithState)

_TRANSFORMED_TYPES = (Transformed, TransformedWithState, MultiTransformed,
                      MultiTransformedWithState)


def _check_mapping(name: str, value: Any, signature: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"The `{name}` argument of apply must be a mapping of module names to mappings of "
            f"arrays, but it is a {type(value).__name__}. The signature is {signature}; did you pass "
            "the arguments in the wrong order?")
    return value


def _check_f(f: Any, api_name: str) -> None:
    if isinstance(f, _TRANSFORMED_TYPES):
        raise ValueError(
            f"`hk.{api_name}` was given an already transformed function ({type(f).__name__}). "
            "Transform the original Python function instead, or use `hk.lift` to nest a transformed "
            "function inside another transform.")
    if not callable(f):
        raise TypeError(f"`hk.{api_name}` expects a callable, got {type(f).__name__}.")


def _current_state(frame: frame_lib.Frame) -> dict:
    return {m: {k: p.current for k, p in values.items()} for m, values in frame.state.items()}


def _initial_state(frame: frame_lib.Frame) -> dict:
    return {m: {k: p.initial for k, p in values.items()} for m, values in frame.state.items()}


def _as_pairs(state: Mapping) -> dict:
    pair = frame_lib.StatePair
    return {m: {k: pair(v, v) for k, v in values.items()} for m, values in state.items()}


def transform_with_state(f: Callable[..., Any]) -> TransformedWithState:
    """Turns ``f`` into pure ``init``/``apply`` functions that also carry state.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     counter = hk.get_state("counter", shape=[], dtype=jnp.int32, init=jnp.zeros)
    ...     hk.set_state("counter", counter + 1)
    ...     return counter
    >>> f = hk.transform_with_state(f)
    >>> params, state = f.init(None)
    >>> for _ in range(10):
    ...     counter, state = f.apply(params, state, None)
    >>> counter
    Array(9, dtype=int32)
    """
    _check_f(f, "transform_with_state")

    @functools.wraps(f)
    def init_fn(rng, *args, **kwargs):
        frame = frame_lib.Frame({}, {}, rng_lib.to_sequence(rng, "init"), is_init=True,
                                params_frozen=False)
        with frame_lib.pushed_frame(frame):
            f(*args, **kwargs)
        return frame.params, _initial_state(frame)

    @functools.wraps(f)
    def apply_fn(params, state, rng, *args, **kwargs):
        signature = "apply(params, state, rng, *args)"
        params = _check_mapping("params", params, signature)
        state = _check_mapping("state", state, signature)
        frame = frame_lib.Frame(params, _as_pairs(state), rng_lib.to_sequence(rng, "apply"),
                                is_init=False, params_frozen=True)
        with frame_lib.pushed_frame(frame):
            out = f(*args, **kwargs)
        return out, _current_state(frame)

    init_fn.__name__, apply_fn.__name__ = "init_fn", "apply_fn"
    init_fn._original_fn = apply_fn._original_fn = f  # for tools such as eval_summary
    return TransformedWithState(init_fn, apply_fn)


def transform(f: Callable[..., Any], *, apply_rng: bool = True) -> Transformed:
    """Turns ``f``, a function using modules, into pure ``init`` and ``apply`` functions.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> class MyModule(hk.Module):
    ...     def __call__(self, x):
    ...         return x + hk.get_parameter("w", [], init=jnp.zeros)
    >>> def f(x):
    ...     return MyModule()(x) + MyModule()(x)
    >>> f = hk.transform(f)
    >>> params = f.init(None, 1)
    >>> params
    {'my_module': {'w': Array(0., dtype=float32)}, 'my_module_1': {'w': Array(0., dtype=float32)}}
    >>> f.apply({"my_module": {"w": jnp.array(2.)}, "my_module_1": {"w": jnp.array(3.)}}, None, 2)
    Array(9., dtype=float32, weak_type=True)

    Args:
      f: a function closing over modules.
      apply_rng: kept for compatibility; must be True (use ``without_apply_rng`` instead).
    """
    if not apply_rng:
        raise ValueError(
            "`apply_rng=False` is no longer supported by `hk.transform`: wrap the result in "
            "`hk.without_apply_rng(hk.transform(f))` to drop the rng argument of apply.")
    _check_f(f, "transform")
    return without_state(transform_with_state(f))


def without_state(f: TransformedWithState) -> Transformed:
    """Drops the state from ``init``/``apply``; raises if the function uses state.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.without_state(hk.transform_with_state(lambda x: hk.Linear(10)(x)))
    >>> params = f.init(jax.random.PRNGKey(42), jnp.zeros([1, 1]))
    >>> f.apply(params, None, jnp.zeros([1, 1])).shape
    (1, 10)
    """
    if isinstance(f, (MultiTransformed, Transformed)):
        raise ValueError("`hk.without_state` expects a function made by `transform_with_state`.")

    def init_fn(*args, **kwargs):
        params, state = f.init(*args, **kwargs)
        if state:
            raise ValueError(
                "This transformed function uses state (hk.get_state/hk.set_state) in modules "
                f"{sorted(state)}; use `hk.transform_with_state` instead of `hk.transform`.")
        return params

    def apply_fn(params, *args, **kwargs):
        if "state" in kwargs:
            raise TypeError("apply() of `hk.transform` takes no `state`; use `transform_with_state`.")
        out, state = f.apply(params, {}, *args, **kwargs)
        if state:
            raise ValueError(
                "This transformed function created state (hk.get_state/hk.set_state) in modules "
                f"{sorted(state)} during apply; use `hk.transform_with_state`.")
        return out

    if isinstance(f, MultiTransformedWithState):
        return MultiTransformed(init_fn, jax.tree.map(_drop_state_from_apply, f.apply))
    _keep_original(f, init_fn, apply_fn)
    return Transformed(init_fn, apply_fn)


def _keep_original(f, init_fn: Callable, apply_fn: Callable) -> None:
    original = getattr(f.init, "_original_fn", None)
    if original is not None:
        init_fn._original_fn = apply_fn._original_fn = original


def _drop_state_from_apply(apply: Callable) -> Callable:
    def apply_fn(params, *args, **kwargs):
        out, state = apply(params, {}, *args, **kwargs)
        if state:
            raise ValueError("This function uses state; use `hk.multi_transform_with_state`.")
        return out
    return apply_fn


def with_empty_state(f: Transformed) -> TransformedWithState:
    """Adds an (always empty) state to a ``transform``-ed function's ``init`` and ``apply``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.with_empty_state(hk.transform(lambda x: hk.Linear(10)(x)))
    >>> params, state = f.init(jax.random.PRNGKey(42), jnp.zeros([1, 1]))
    >>> state
    {}
    """
    def init_fn(*args, **kwargs):
        return f.init(*args, **kwargs), {}

    def apply_fn(params, state, *args, **kwargs):
        del state
        return f.apply(params, *args, **kwargs), {}

    if isinstance(f, MultiTransformed):
        return MultiTransformedWithState(
            init_fn, jax.tree.map(lambda a: (lambda p, s, *x, **k: (a(p, *x, **k), {})), f.apply))
    _keep_original(f, init_fn, apply_fn)
    return TransformedWithState(init_fn, apply_fn)


def without_apply_rng(f: TransformedT) -> TransformedT:
    """Removes the ``rng`` argument from ``apply`` (for functions that use no randomness).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(1)(x)))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 1]))
    >>> f.apply(params, jnp.ones([1, 1])).shape
    (1, 1)
    """
    with_state = isinstance(f, (TransformedWithState, MultiTransformedWithState))

    def no_rng(apply: Callable) -> Callable:
        if with_state:
            def apply_fn(params, state, *args, **kwargs):
                _check_no_rng(kwargs)
                return apply(params, state, None, *args, **kwargs)
        else:
            def apply_fn(params, *args, **kwargs):
                _check_no_rng(kwargs)
                return apply(params, None, *args, **kwargs)
        return apply_fn

    if isinstance(f, (MultiTransformed, MultiTransformedWithState)):
        return type(f)(f.init, jax.tree.map(no_rng, f.apply))
    if not isinstance(f, (Transformed, TransformedWithState)):
        raise TypeError(f"`hk.without_apply_rng` expects a transformed function, got {type(f).__name__}.")
    apply_fn = no_rng(f.apply)
    _keep_original(f, f.init, apply_fn)
    return type(f)(f.init, apply_fn)


def _check_no_rng(kwargs: dict) -> None:
    if "rng" in kwargs:
        raise TypeError("This apply function was made with `hk.without_apply_rng`: it takes no `rng`.")


def _apply_tree(f: Callable[[], tuple[Callable, Any]]):
    """Runs ``f()`` in a throwaway init frame to learn the tree structure of its apply functions."""
    frame = frame_lib.Frame({}, {}, None, is_init=True, params_frozen=False)
    with frame_lib.pushed_frame(frame):
        _, fns = f()
    return jax.tree.structure(fns)


def multi_transform_with_state(
        f: Callable[[], tuple[Callable, Any]]) -> MultiTransformedWithState:
    """Transforms a template function and a pytree of functions sharing its modules.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     encoder = hk.Linear(1, name="encoder")
    ...     decoder = hk.Linear(1, name="decoder")
    ...     def init(x):
    ...         return decoder(encoder(x))
    ...     return init, (encoder, decoder)
    >>> f = hk.multi_transform_with_state(f)
    >>> params, state = f.init(jax.random.PRNGKey(42), jnp.ones([1, 1]))
    >>> sorted(params)
    ['decoder', 'encoder']
    >>> encode, decode = f.apply
    >>> z, state = encode(params, state, None, jnp.ones([1, 1]))
    """
    _check_f(f, "multi_transform_with_state")

    def template(*args, **kwargs):
        init, _ = f()
        return init(*args, **kwargs)

    treedef = _apply_tree(f)

    def apply_leaf(index: int) -> Callable:
        def run(*args, **kwargs):
            _, fns = f()
            return jax.tree.leaves(fns)[index](*args, **kwargs)
        return transform_with_state(run).apply

    applies = [apply_leaf(i) for i in range(treedef.num_leaves)]
    return MultiTransformedWithState(transform_with_state(template).init,
                                     jax.tree.unflatten(treedef, applies))


def multi_transform(f: Callable[[], tuple[Callable, Any]]) -> MultiTransformed:
    """As ``multi_transform_with_state``, for functions that use no state.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     encoder = hk.Linear(1, name="encoder")
    ...     decoder = hk.Linear(1, name="decoder")
    ...     return (lambda x: decoder(encoder(x))), (encoder, decoder)
    >>> f = hk.multi_transform(f)
    >>> params = f.init(jax.random.PRNGKey(42), jnp.ones([1, 1]))
    >>> jax.tree.map(jnp.shape, params)
    {'decoder': {'b': (1,), 'w': (1, 1)}, 'encoder': {'b': (1,), 'w': (1, 1)}}
    """
    _check_f(f, "multi_transform")
    return without_state(multi_transform_with_state(f))
