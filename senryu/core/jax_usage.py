"""Leak detection: stop state changes made under a raw JAX transform inside a transform.

Each frame (and each key sequence) remembers the JAX trace it was created in. Creating a
parameter or state, setting state, or drawing a random key from a *different* trace means a plain
``jax.*`` transform is running the code: its values would leak out as tracers (an
``UnexpectedTracerError`` far away) or silently repeat (the same key every iteration). We raise
``JaxUsageError`` at the offending call instead, naming the JAX function, the module, the value and
both fixes. Reading parameters and state under a raw transform stays allowed.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import jax
from jax.extend import core as jax_core

from senryu import config as config_lib

_CONVENTION = "haiku"


class JaxUsageError(ValueError, jax.errors.UnexpectedTracerError):
    """A raw JAX transform inside a transform would leak parameters, state or random keys.

    It is both a ``ValueError`` and a ``jax.errors.UnexpectedTracerError``, so code written to
    catch the error Haiku documents keeps working.
    """

    def __init__(self, message: str):
        ValueError.__init__(self, message)

    def __str__(self) -> str:
        return self.args[0]


def trace_state() -> Any:
    """An opaque token of the JAX trace running now (equal tokens mean the same trace)."""
    return jax_core.get_opaque_trace_state(convention=_CONVENTION)


# (file suffix, function name) of JAX's own frames -> the public function the user called.
_JAX_ENTRY_POINTS = {
    ("_src/pjit.py", "cache_miss"): "jax.jit",
    ("_src/api.py", "eval_shape"): "jax.eval_shape",
    ("_src/api.py", "vmap_f"): "jax.vmap",
    ("_src/api.py", "grad_f"): "jax.grad",
    ("_src/api.py", "value_and_grad_f"): "jax.value_and_grad",
    ("_src/api.py", "jacfun"): "jax.jacfwd/jax.jacrev",
    ("_src/api.py", "hessian"): "jax.hessian",
    ("_src/api.py", "jvp"): "jax.jvp",
    ("_src/api.py", "vjp"): "jax.vjp",
    ("_src/api.py", "linearize"): "jax.linearize",
    ("_src/ad_checkpoint.py", "fun_remat"): "jax.checkpoint",
    ("_src/lax/control_flow/loops.py", "scan"): "jax.lax.scan",
    ("_src/lax/control_flow/loops.py", "while_loop"): "jax.lax.while_loop",
    ("_src/lax/control_flow/loops.py", "fori_loop"): "jax.lax.fori_loop",
    ("_src/lax/control_flow/loops.py", "map"): "jax.lax.map",
    ("_src/lax/control_flow/conditionals.py", "cond"): "jax.lax.cond",
    ("_src/lax/control_flow/conditionals.py", "switch"): "jax.lax.switch",
}

_HK_EQUIVALENT = {
    "jax.jit": "hk.jit", "jax.eval_shape": "hk.eval_shape", "jax.vmap": "hk.vmap",
    "jax.grad": "hk.grad", "jax.value_and_grad": "hk.value_and_grad",
    "jax.checkpoint": "hk.remat", "jax.lax.scan": "hk.scan", "jax.lax.while_loop": "hk.while_loop",
    "jax.lax.fori_loop": "hk.fori_loop", "jax.lax.map": "hk.map", "jax.lax.cond": "hk.cond",
    "jax.lax.switch": "hk.switch",
}


def guess_jax_function() -> Optional[str]:
    """The public JAX function whose trace is running, read from the Python stack (or None)."""
    frame = sys._getframe(1)
    found = None
    in_jax_block = False
    while frame is not None:
        filename = frame.f_code.co_filename.replace("\\", "/")
        is_jax = "/jax/_src/" in filename
        if is_jax:
            in_jax_block = True
            suffix = filename.rsplit("/jax/", 1)[-1]
            name = _JAX_ENTRY_POINTS.get((suffix, frame.f_code.co_name))
            if name is not None:
                found = name
        elif in_jax_block:
            return found
        frame = frame.f_back
    return found


def describe(action: str, kind: str, full_name: str) -> str:
    """E.g. "Creating parameter 'w' of module 'linear' (full name 'linear/w')"."""
    module_name, _, name = full_name.rpartition("/")
    return f"{action} {kind} '{name}' of module '{module_name}' (full name '{full_name}')"


def check(expected_trace: Any, description) -> None:
    """Raises ``JaxUsageError`` if we run under another JAX trace than ``expected_trace``.

    ``description()`` gives what is being done (only built when an error is raised).
    """
    if expected_trace is None or not config_lib.get_config().check_jax_usage:
        return
    if trace_state() == expected_trace:
        return
    jax_fn = guess_jax_function()
    where = f"`{jax_fn}`" if jax_fn else "a JAX transform (jit, vmap, grad, scan, cond, ...)"
    hk_fn = _HK_EQUIVALENT.get(jax_fn or "", "the matching `hk.*` wrapper (hk.vmap, hk.scan, ...)")
    raise JaxUsageError(
        f"{description()} inside {where} "
        "that was called inside `hk.transform`: the value would leak out of the JAX transform "
        "(an UnexpectedTracerError later, or a silently wrong result). Fix it in one of two ways: "
        f"use `{hk_fn}` instead, which carries parameters, state and random keys through the "
        "transform; or keep the code as it is and run it under "
        "`hk.experimental.override_jax_transforms()` (a decorator or context manager), which makes "
        "plain `jax.*` transforms do the same. To disable this check: "
        "`hk.config.set(check_jax_usage=False)`.")
