"""Creating parameters and state that are first used inside a loop or a branch.

JAX control flow traces its body once and cannot create values that live outside it. So during
``init`` the wrappers first run each body (or branch) once, outside any control flow, keep the
parameters and the *newly created* state it made, and forget everything else it did (its outputs,
its state updates, the module names it handed out). The real loop then finds every value in place.
The cost is one extra trace during ``init`` only; the extra operations are dead code under ``jit``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from senryu import core


def create_first(calls: Sequence[tuple[Callable, tuple]]) -> None:
    """During ``init``, runs ``fn(*args)`` for each call once, keeping only what it created."""
    if not core.running_init():
        return
    before = core.capture()
    boundary = before
    previous = None
    for fn, args in calls:
        naming = (lambda p=previous: p.naming_out) if previous is not None else None
        pure = core.PureFunction(fn, naming_in=naming)
        _, boundary = pure(boundary, *args)
        previous = pure
    state = {module: dict(values) for module, values in before.state.items()}
    for module, values in boundary.state.items():
        known = state.setdefault(module, {})
        for name, pair in values.items():
            if name not in known:
                known[name] = core.StatePair(pair.initial, pair.initial)
    core.commit(core.Boundary(boundary.params, state, boundary.rng))


def first_slice(xs: Any, length: int | None) -> Any:
    """The first element along axis 0 of every leaf of ``xs`` (zeros if the axis is empty)."""
    def take(x):
        x = jnp.asarray(x)
        return x[0] if x.shape[0] else jnp.zeros(x.shape[1:], x.dtype)
    return jax.tree.map(take, xs)


LOOP_CREATION = (
    "it is first used inside the body of `hk.{api}` during `apply`. Parameters and state used in "
    "loops and branches are created during `init` (run `init` on the same function), and must "
    "have the same names and shapes in `apply`.")
