"""The one mechanism: run a stateful function as a pure function of explicit state.

Inside a transform, code reads and creates parameters, reads and writes state, and draws random
keys: it is impure. A JAX transform (``jit``, ``vmap``, ``scan``...) needs a pure function. This
module turns one into the other:

    boundary = capture()                     # params, state and RNG of the running transform
    pure = PureFunction(fn)                  # pure(boundary, *args) -> (out, new_boundary)
    out, boundary = jax.<transform>(pure)(boundary, *args)
    commit(boundary, pure)                   # write the results back into the transform

Every wrapper in ``senryu.wrappers`` is this pattern and nothing more. Module naming counters are
threaded the same way (outside JAX, as Python data), so that module names never depend on which
wrapper ran: two ``hk.vmap(g)`` calls that each build a ``Linear`` get ``linear`` and ``linear_1``.
Calling a pure function several times (JAX may trace twice) always starts from the same names.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

from senryu.core import frame as frame_lib
from senryu.core import rng as rng_lib


class Boundary(NamedTuple):
    """The explicit state that crosses a JAX transform: a pytree of arrays.

    Attributes:
      params: ``{module_name: {name: array}}``.
      state: ``{module_name: {name: StatePair(initial, current)}}``.
      rng: the internal state ``(key, reserved_keys)`` of the key sequence, or ``None``.
    """
    params: dict
    state: dict
    rng: Optional[tuple]


def _copy2(tree) -> dict:
    return {k: dict(v) for k, v in tree.items()}


def capture(frame: Optional[frame_lib.Frame] = None) -> Boundary:
    """The running transform's params, state and RNG, as a fresh (copied) boundary."""
    frame = frame or frame_lib.current_frame("capture")
    rng = frame.rng_stack[-1]
    return Boundary(_copy2(frame.params), _copy2(frame.state),
                    None if rng is None else rng.internal_state)


def commit(boundary: Boundary, pure: Optional["PureFunction"] = None,
           frame: Optional[frame_lib.Frame] = None) -> None:
    """Writes a boundary (and the names handed out by ``pure``) back into the running transform."""
    frame = frame or frame_lib.current_frame("commit")
    if not frame.params_frozen:
        frame.params = boundary.params
    frame.state = boundary.state
    rng = frame.rng_stack[-1]
    if rng is not None and boundary.rng is not None:
        rng.replace_internal_state(boundary.rng)
    if pure is not None and pure.naming_out is not None:
        frame.naming = pure.naming_out


NamingSource = Union[dict, Callable[[], dict]]


class PureFunction:
    """``fn`` as a pure function ``(boundary, *args, **kwargs) -> (out, boundary)``.

    Args:
      fn: the stateful function.
      naming_in: the naming counters to start each call from (default: the frame's, now), or a
        callable giving them lazily (used to chain the branches of a ``cond``).
      creation_blocked: if set, creating a parameter or state raises ``ValueError`` with this text.
      frame: the transform frame this function belongs to (default: the current one).
    """

    __slots__ = ("fn", "frame", "naming_in", "naming_out", "creation_blocked", "calls",
                 "rng_draws", "__weakref__")

    def __init__(self, fn: Callable, *, naming_in: Optional[NamingSource] = None,
                 creation_blocked: Optional[str] = None,
                 frame: Optional[frame_lib.Frame] = None):
        self.fn = fn
        self.frame = frame or frame_lib.current_frame("purify")
        self.naming_in = naming_in if naming_in is not None else frame_lib.copy_naming(
            self.frame.naming)
        self.naming_out: Optional[dict] = None
        self.creation_blocked = creation_blocked
        self.calls = 0
        self.rng_draws = 0  # keys drawn by the last call

    def __call__(self, boundary: Boundary, *args, **kwargs):
        naming_in = self.naming_in() if callable(self.naming_in) else self.naming_in
        child = self.frame.child(_copy2(boundary.params), _copy2(boundary.state),
                                 None if boundary.rng is None else rng_lib.PRNGSequence(boundary.rng))
        child.naming = frame_lib.copy_naming(naming_in)
        if self.creation_blocked is not None:
            child.creation_blocked = self.creation_blocked
        with frame_lib.pushed_frame(child):
            out = self.fn(*args, **kwargs)
        self.naming_out = child.naming
        self.calls += 1
        rng = child.rng_stack[0]
        self.rng_draws = 0 if rng is None else rng.draws
        return out, Boundary(child.params, child.state, None if rng is None else rng.internal_state)


def count_rng_draws(fn: Callable, *args, **kwargs) -> int:
    """How many keys ``fn(*args, **kwargs)`` draws, found by abstract evaluation: nothing is
    computed and nothing (parameters, state, names, keys) changes in the running transform."""
    import jax  # local: this module otherwise needs no JAX

    pure = PureFunction(fn)
    jax.eval_shape(lambda boundary: pure(boundary, *args, **kwargs)[1], capture(pure.frame))
    return pure.rng_draws


def run_and_commit(fn: Callable, *args, **kwargs) -> Any:
    """Runs ``fn`` purely (no JAX transform) and writes its effects back: a reference semantics."""
    pure = PureFunction(fn)
    out, boundary = pure(capture(pure.frame), *args, **kwargs)
    commit(boundary, pure, pure.frame)
    return out
