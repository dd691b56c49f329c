"""The frame: everything one running ``init``/``apply`` call owns.

A frame holds the parameters, the state, the random-key sequence and the naming counters of one
transform call. Frames live on a thread-local stack, so transforms in different threads never see
each other, and a transform called inside another one gets a frame of its own.

Nothing outside ``senryu.core`` touches a frame directly.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple, Optional

from senryu.core import jax_usage


class StatePair(NamedTuple):
    """The value a state entry had when it was created, and its value now."""
    initial: Any
    current: Any


class NamingScope:
    """Names handed out in one scope (e.g. ``mlp/~/``): counters per base name, and names taken."""
    __slots__ = ("counters", "taken")

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.taken: set[str] = set()

    def copy(self) -> "NamingScope":
        other = NamingScope()
        other.counters = dict(self.counters)
        other.taken = set(self.taken)
        return other


def copy_naming(naming: dict[str, NamingScope]) -> dict[str, NamingScope]:
    return {prefix: scope.copy() for prefix, scope in naming.items()}


class ModuleCall(NamedTuple):
    """One entry of the module stack: a module (or name scope) and the method running on it."""
    module: Any
    method_name: str


class Frame:
    """The mutable data of one transform call (or of one purified sub-call, see ``purify``)."""
    __slots__ = (
            "params", "state", "rng_stack", "is_init", "params_frozen", "module_stack", "naming",
            "param_creators", "state_creators", "param_getters", "state_getters", "setters", "lift_prefixes",
            "creation_blocked", "trace", "__weakref__",
    )

    def __init__(self, params, state, rng, *, is_init: bool, params_frozen: bool):
        self.params: dict[str, dict[str, Any]] = params
        self.state: dict[str, dict[str, StatePair]] = state
        self.rng_stack: list = [rng]
        self.is_init = is_init
        self.params_frozen = params_frozen
        self.module_stack: list[ModuleCall] = []
        self.naming: dict[str, NamingScope] = {}
        # Custom creators/getters/setters, outermost first.
        self.param_creators: list = []
        self.state_creators: list = []
        self.param_getters: list = []
        self.state_getters: list = []
        self.setters: list = []
        self.lift_prefixes: list[str] = []
        # Set by the purify mechanism: why parameters and state cannot be created here (or None).
        self.creation_blocked: Optional[str] = None
        # The JAX trace this frame runs in: state changes from another trace are leaks.
        self.trace = jax_usage.trace_state()

    @property
    def rng(self):
        return self.rng_stack[-1]

    def child(self, params, state, rng) -> "Frame":
        """A frame sharing this one's configuration but holding the given data."""
        other = Frame(params, state, rng, is_init=self.is_init, params_frozen=self.params_frozen)
        other.module_stack = list(self.module_stack)
        other.naming = self.naming
        other.param_creators = self.param_creators
        other.state_creators = self.state_creators
        other.param_getters = self.param_getters
        other.state_getters = self.state_getters
        other.setters = self.setters
        other.lift_prefixes = self.lift_prefixes
        other.creation_blocked = self.creation_blocked
        return other


class _FrameStack(threading.local):
    def __init__(self) -> None:
        self.frames: list[Frame] = []


_stack = _FrameStack()


def frame_stack() -> list[Frame]:
    return _stack.frames


def current_frame_or_none() -> Optional[Frame]:
    frames = _stack.frames
    return frames[-1] if frames else None


def current_frame(api_name: str) -> Frame:
    """The active frame; a clear error naming ``api_name`` if no transform is running."""
    frames = _stack.frames
    if not frames:
        raise ValueError(
                f"`hk.{api_name}` must be used as part of an `hk.transform`: no transform is running. "
                "Wrap the function that uses it with `hk.transform` (or `hk.transform_with_state`) and "
                "call the resulting `init`/`apply`.")
    return frames[-1]


def inside_transform() -> bool:
    """True while an ``init`` or ``apply`` of a transformed function is running in this thread."""
    return bool(_stack.frames)


class pushed_frame:
    """Context manager: makes ``frame`` current for the duration of the block."""
    __slots__ = ("frame",)

    def __init__(self, frame: Frame):
        self.frame = frame

    def __enter__(self) -> Frame:
        _stack.frames.append(self.frame)
        return self.frame

    def __exit__(self, *exc) -> None:
        popped = _stack.frames.pop()
        assert popped is self.frame, "senryu frame stack corrupted"
