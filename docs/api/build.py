"""Builds senryu's API reference, HTML generated from the docstrings by pdoc.

Usage (from the repository root; pdoc comes with the ``test`` extra)::

    .venv/bin/python docs/api/build.py [OUTPUT_DIR]      # default: out/api

then open ``OUTPUT_DIR/index.html``. The pages are the public namespaces a user imports,
``senryu`` (everything under ``hk.``), ``senryu.nets``, ``senryu.initializers``,
``senryu.experimental``, ... . The packages that only implement them (``senryu.core``,
``senryu.layers``, ``senryu.wrappers``, ``senryu.interop``) are left out: their public names are
documented where users find them, on the ``senryu`` page.

Exit status: 0 on success; 1 if a module fails to import or pdoc warns about something other
than the known, harmless case listed in ``KNOWN_WARNINGS``; the warnings are printed.
"""

from __future__ import annotations

import __future__
import collections.abc
import inspect
import re
import sys
import types
import typing
import warnings
from pathlib import Path

import pdoc
import pdoc.render

PUBLIC = ["senryu", "senryu.config", "senryu.data_structures", "senryu.experimental",
          "senryu.initializers", "senryu.mixed_precision", "senryu.nets", "senryu.pad",
          "senryu.testing"]
IMPLEMENTATION = ["senryu.core", "senryu.layers", "senryu.wrappers", "senryu.interop"]
TEMPLATES = Path(__file__).resolve().parent / "templates"  # pdoc's look, plus __call__ methods

# pdoc cannot evaluate the string annotations of the ``__init__`` that ``dataclasses`` writes
# for a class in a module with ``from __future__ import annotations``; the page then shows the
# annotation as written, which is fine.
KNOWN_WARNINGS = [re.compile(r"Error parsing type annotation .* for senryu\.[\w.]+\.__init__\.")]


def _is_helper_import(name: str, value: object) -> bool:
    """``from typing import Callable`` and the like: imported for annotations, not offered."""
    return (isinstance(value, __future__._Feature)
            or any(getattr(m, name, None) is value for m in (typing, collections.abc)))


def public_names(module: types.ModuleType) -> list[str]:
    """The names a user reaches through ``module``: its ``__all__``, or else every public name
    that is neither a submodule nor an import made for annotations."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value)
            and not _is_helper_import(name, value)]


def declare_public_names() -> None:
    """Gives ``__all__`` to the public namespaces that lack one.

    pdoc lists the members of a module named in its ``__all__``, or else only those defined in
    it; ``senryu/__init__.py`` re-exports names defined elsewhere, which would otherwise be left
    out.
    """
    for name in PUBLIC:
        module = __import__(name, fromlist=["_"])
        if not hasattr(module, "__all__"):
            module.__all__ = public_names(module)


def build(output_directory: Path) -> list[str]:
    """Writes the HTML reference to ``output_directory``; returns the unexpected warnings."""
    declare_public_names()
    pdoc.render.configure(
        docformat="google",
        footer_text="senryu: a drop-in, faster reimplementation of Haiku",
        search=True,
        show_source=True,
        template_directory=TEMPLATES,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*PUBLIC, *(f"!{name}" for name in IMPLEMENTATION),
                  output_directory=output_directory)
    messages = [str(w.message) for w in caught]
    return [m for m in messages if not any(p.search(m) for p in KNOWN_WARNINGS)]


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(f"usage: build.py [OUTPUT_DIR]   (got {' '.join(argv)})", file=sys.stderr)
        return 2
    output_directory = Path(argv[0] if argv else "out/api")
    unexpected = build(output_directory)
    for message in unexpected:
        print(f"pdoc warning: {message}", file=sys.stderr)
    if unexpected:
        print(f"{len(unexpected)} unexpected pdoc warning(s): fix the docstrings or imports above",
              file=sys.stderr)
        return 1
    print(f"API reference written to {output_directory}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
