"""How modules and name scopes get their names (``mlp/~/linear_0``), exactly as Haiku names them."""

from __future__ import annotations

import functools
import re

from senryu.core import frame as frame_lib

_INDEXED = re.compile(r"(.*)_(\d+)")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9_])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class ForcedName(str):
    """A module name that is used verbatim, ignoring the enclosing modules (see ``force_name``)."""


@functools.lru_cache(maxsize=None)
def snake_case(class_name: str) -> str:
    """``"Conv2DTranspose"`` -> ``"conv2_d_transpose"``: Haiku's default module names."""
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


def validate_name(name: str, what: str = "module") -> None:
    if not isinstance(name, str):
        raise TypeError(f"A {what} name must be a string, got {type(name).__name__}: {name!r}.")
    if not name.isidentifier():
        raise ValueError(
            f"{name!r} is not a valid {what} name (must be a valid Python identifier): use letters, "
            "digits and underscores, not starting with a digit.")


def scope_prefix(frame: frame_lib.Frame) -> str:
    """The prefix for modules created now: ``""``, ``"parent/"``, ``"parent/~/"``, ``"parent/~m/"``."""
    stack = frame.module_stack
    if not stack:
        return ""
    module, method_name = stack[-1]
    base = module.module_name
    if method_name == "__call__":
        return base + "/"
    if method_name == "__init__":
        return base + "/~/"
    return f"{base}/~{method_name}/"


def unique_name(frame: frame_lib.Frame, name: str) -> str:
    """Full, unique name for a new module or name scope called ``name`` in the current scope.

    Names ending in ``_<n>`` are explicit and must be unique; others get ``_1``, ``_2``... when
    repeated, skipping indices already taken explicitly.
    """
    if isinstance(name, ForcedName):
        return str(name)
    prefix = scope_prefix(frame)
    scope = frame.naming.get(prefix)
    if scope is None:
        scope = frame.naming[prefix] = frame_lib.NamingScope()
    indexed = _INDEXED.fullmatch(name)
    if indexed is not None:
        if name in scope.taken:
            raise ValueError(
                f"Module name '{prefix}{name}' is not unique: a module or name scope of that name "
                "already exists in this scope. Give it another name, or reuse the existing module "
                "object to share its parameters.")
        base, index = indexed.group(1), int(indexed.group(2))
        scope.taken.add(name)
        if scope.counters.get(base, 0) <= index:
            scope.counters[base] = index + 1
        return prefix + name
    index = scope.counters.get(name, 0)
    candidate = name if index == 0 else f"{name}_{index}"
    while candidate in scope.taken:
        index += 1
        candidate = f"{name}_{index}"
    scope.counters[name] = index + 1
    scope.taken.add(candidate)
    return prefix + candidate


def current_bundle_name(frame: frame_lib.Frame) -> str:
    """The key of the params/state dict that values created now go into (``"~"`` at top level)."""
    stack = frame.module_stack
    return stack[-1].module.module_name if stack else "~"
