"""A module-by-module view of the jaxpr of a function (``hk.experimental.jaxpr_info``).

``make_model_info`` traces a function with ``jax.make_jaxpr`` while every module method call runs
in a ``jax.named_scope``; the equations are then grouped into a tree of ``Module``s following
their name stacks, with nested jaxprs (``jit``, ``custom_jvp``, ``scan``, ...) as sub-modules.
``format_module`` prints the tree as text, ``as_html``/``as_html_page`` as a collapsible HTML list.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, Callable, Optional, Sequence

import jax
import jax.extend.core as jex_core
import numpy as np
# Variable names as JAX prints them (a, b, ...): only the private pretty-printer gives them.
from jax._src import core as jax_pp

from senryu import core
from senryu.experimental.summarise import ArraySpec

__all__ = ["Expression", "Module", "as_html", "as_html_page", "css", "format_module", "js",
           "make_model_info"]


@dataclasses.dataclass
class Expression:
    """One equation of a jaxpr; equations running a nested jaxpr carry it as ``submodule``.

    >>> from senryu.experimental import jaxpr_info
    >>> jaxpr_info.Expression("add", "a b", "c", details="in f32[2], f32[2], out f32[2]")
    Expression(primitive='add', invars='a b', outvars='c', flops=None, ...)
    """
    primitive: str
    invars: str
    outvars: str
    flops: Optional[int] = None
    details: str = ""
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    submodule: Optional["Module"] = None
    first_outvar: str = ""
    name_stack: Sequence[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Module:
    """A Haiku module (or a nested jaxpr) and the expressions it ran.

    ``param_info``/``state_info`` map names relative to the module (``./linear_0/w``) to shapes.

    >>> from senryu.experimental import jaxpr_info
    >>> jaxpr_info.Module("mlp", total_param_size=23).total_param_size
    23
    """
    name: str
    flops: Optional[int] = None
    expressions: list[Expression] = dataclasses.field(default_factory=list)
    total_param_size: int = 0
    param_info: dict[str, str] = dataclasses.field(default_factory=dict)
    total_state_size: int = 0
    state_info: dict[str, str] = dataclasses.field(default_factory=dict)


def _aval_str(aval: Any) -> str:
    dtype, shape = getattr(aval, "dtype", None), getattr(aval, "shape", None)
    if dtype is None or shape is None:
        return str(aval)
    return f"{np.dtype(dtype).name.replace('float', 'f')}[{','.join(str(d) for d in shape)}]"


def _relative_name(key: str, module_name: str) -> str:
    """``mlp/~/linear_0/w`` seen from ``mlp`` is ``./linear_0/w``; keys elsewhere stay whole."""
    if key.startswith(module_name + "/"):
        rest = key[len(module_name):]
        return "." + (rest[2:] if rest.startswith("/~/") else rest)
    return key


class _ModuleRecorder:
    """Method interceptor: runs each module method in a named scope and notes its parameters."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.used: dict[int, dict[int, Any]] = {}
        self.info: dict[str, tuple[int, dict[str, str], int, dict[str, str]]] = {}

    def __call__(self, next_f, args, kwargs, context):
        if context.method_name == "__init__":
            return next_f(*args, **kwargs)
        module = context.module
        for caller in self.stack:
            self.used.setdefault(id(caller), {})[id(module)] = module
        self.stack.append(module)
        local_name = module.module_name.rsplit("/", 1)[-1]
        scopes = [local_name] if context.method_name == "__call__" else [context.method_name,
                                                                          local_name]
        try:
            with _nested_scopes(scopes):
                out = next_f(*args, **kwargs)
        finally:
            self.stack.pop()
        self._note(module)
        return out

    def _note(self, module: Any) -> None:
        params: dict[str, Any] = {}
        state: dict[str, Any] = {}
        for m in [module, *self.used.get(id(module), {}).values()]:
            params.update(m.params_dict())
            state.update(m.state_dict())
        name = module.module_name

        def describe(tree):
            size = sum(int(np.prod(np.shape(v), dtype=np.int64)) for v in tree.values())
            return size, {_relative_name(k, name): str(ArraySpec.from_array(v))
                          for k, v in sorted(tree.items())}

        self.info[name.replace("/~/", "/")] = (*describe(params), *describe(state))


class _nested_scopes:
    def __init__(self, names: Sequence[str]) -> None:
        self.scopes = [jax.named_scope(n) for n in names]

    def __enter__(self) -> None:
        for scope in self.scopes:
            scope.__enter__()

    def __exit__(self, *exc) -> None:
        for scope in reversed(self.scopes):
            scope.__exit__(*exc)


_SUBJAXPR_PARAMS = ("jaxpr", "call_jaxpr", "body_jaxpr", "fun_jaxpr")


def _nested_jaxpr(eqn: Any) -> tuple[Optional[str], Any]:
    """The name and jaxpr of the nested computation ``eqn`` runs, or ``(None, None)``."""
    prim, params = eqn.primitive.name, eqn.params
    for key in _SUBJAXPR_PARAMS:
        jaxpr = params.get(key)
        if isinstance(jaxpr, (jex_core.Jaxpr, jex_core.ClosedJaxpr)):
            break
    else:
        return None, None
    if prim in ("pjit", "jit", "closed_call", "core_call") and "name" in params:
        name = str(params["name"])
    elif prim.startswith("custom_jvp"):
        name = "custom_jvp"
    elif prim.startswith("custom_vjp"):
        name = "custom_vjp"
    elif prim in ("remat2", "checkpoint", "remat"):
        name = "remat"
    elif prim == "scan":
        name = f"scan length={params.get('length')} unroll={params.get('unroll')}"
    else:
        name = prim
    return name, jaxpr


class _Builder:
    def __init__(self, compute_flops, info) -> None:
        self.compute_flops = compute_flops
        self.info = info

    def module(self, name: str, jaxpr: Any) -> Module:
        if isinstance(jaxpr, jex_core.ClosedJaxpr):
            jaxpr = jaxpr.jaxpr
        context = jax_pp.JaxprPpContext()
        for var in [*jaxpr.constvars, *jaxpr.invars]:
            jax_pp.pp_var(var, context)

        def names(variables) -> list[str]:
            return [repr(v) if isinstance(v, jex_core.Literal) else str(jax_pp.pp_var(v, context))
                    for v in variables]

        root = Module(name=name)
        open_scopes: list[tuple[list[str], Module]] = [([], root)]
        for eqn in jaxpr.eqns:
            stack = [s for s in str(eqn.source_info.name_stack).split("/") if s]
            while stack[:len(open_scopes[-1][0])] != open_scopes[-1][0]:
                open_scopes.pop()
            for depth in range(len(open_scopes[-1][0]), len(stack)):
                path = stack[:depth + 1]
                child = self._scope_module(path)
                open_scopes[-1][1].expressions.append(
                    Expression("name_scope", "", "", submodule=child))
                open_scopes.append((path, child))
            invars, outvars = names(eqn.invars), names(eqn.outvars)
            expression = Expression(str(eqn.primitive), " ".join(invars), " ".join(outvars),
                                    first_outvar=outvars[0] if outvars else "",
                                    name_stack=stack)
            sub_name, sub_jaxpr = _nested_jaxpr(eqn)
            if sub_jaxpr is not None:
                expression.submodule = self.module(sub_name, sub_jaxpr)
                if self.compute_flops is not None:
                    if not expression.submodule.flops:
                        continue  # like Haiku, nested computations without flops are left out
                    repeats = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
                    expression.flops = expression.submodule.flops * int(repeats)
            else:
                parts = []
                if eqn.invars:
                    parts.append("in " + ", ".join(_aval_str(v.aval) for v in eqn.invars))
                if eqn.outvars:
                    parts.append("out " + ", ".join(_aval_str(v.aval) for v in eqn.outvars))
                expression.details = ", ".join(parts)
                expression.params = {k: str(v) for k, v in eqn.params.items()}
                if self.compute_flops is not None:
                    expression.flops = self.compute_flops(eqn, expression)
            open_scopes[-1][1].expressions.append(expression)
        if self.compute_flops is not None:
            root.flops = _sum_flops(root)
        return root

    def _scope_module(self, path: list[str]) -> Module:
        module = Module(name=path[-1])
        if "/".join(path) in self.info:
            (module.total_param_size, module.param_info, module.total_state_size,
             module.state_info) = self.info["/".join(path)]
        return module


def _sum_flops(module: Module) -> int:
    """Total flops of ``module``; name-scope modules without flops keep ``flops=None``."""
    total = 0
    for expression in module.expressions:
        if expression.primitive == "name_scope" and expression.submodule is not None:
            expression.submodule.flops = _sum_flops(expression.submodule) or None
            total += expression.submodule.flops or 0
        else:
            total += expression.flops or 0
    return total


def make_model_info(
        f: Callable[..., Any],
        name: Optional[str] = None,
        include_module_info: bool = True,
        compute_flops: Optional[Callable[[Any, Expression], int]] = None,
        axis_env: Optional[Sequence[tuple[Any, int]]] = None,
) -> Callable[..., Module]:
    """Returns a function that traces ``f`` on example arguments and returns its ``Module`` tree.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> x = jnp.ones([1, 3])
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> info = hk.experimental.jaxpr_info.make_model_info(f.apply)(params, None, x)
    >>> print(hk.experimental.jaxpr_info.format_module(info))
    apply_fn
      linear 8 params
        dot_general in f32[1,3], f32[3,2], out f32[1,2]
        broadcast_in_dim in f32[2], out f32[1,2]
        add in f32[1,2], f32[1,2], out f32[1,2]

    Args:
      f: the function to inspect, e.g. the ``apply`` of a transformed function.
      name: the name of the root module (default: ``f.__name__``).
      include_module_info: whether to count the parameters and state of each module.
      compute_flops: ``compute_flops(eqn, expression)`` gives the flops of one equation; module
        flops are the sums. ``None``: flops are not computed.
      axis_env: ``(axis_name, size)`` pairs for collectives, as in ``jax.make_jaxpr``.
    """
    if not callable(f):
        raise TypeError(f"`make_model_info` expects a function (e.g. `hk.transform(fn).apply`), "
                        f"got {type(f).__name__}: {f!r:.80}.")
    if compute_flops is not None and not callable(compute_flops):
        raise TypeError("`compute_flops` must be a function `(eqn, expression) -> int` or None, "
                        f"got {type(compute_flops).__name__}.")
    if name is None:
        name = getattr(f, "__name__", None) or type(f).__name__

    def model_info(*args, **kwargs) -> Module:
        recorder = _ModuleRecorder()

        def traced(*a, **k):
            with core.intercept_methods(recorder):
                return f(*a, **k)

        closed = jax.make_jaxpr(traced, axis_env=axis_env)(*args, **kwargs)
        info = recorder.info if include_module_info else {}
        return _Builder(compute_flops, info).module(name, closed)

    return model_info


_UNITS = ("", "k", "M", "G", "T", "P")


def _human(value: float, what: str) -> str:
    unit = 0
    while value > 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.4g} {_UNITS[unit]}{what}"


def _summary(module: Module) -> str:
    parts = [module.name]
    if module.flops is not None:
        parts.append(_human(module.flops, "flops"))
    if module.total_param_size:
        parts.append(_human(module.total_param_size, "params"))
    if module.total_state_size:
        parts.append(_human(module.total_state_size, "state"))
    return " ".join(parts)


def format_module(module: Module, depth: int = 0) -> str:
    """The module tree as indented text: one line per module and per expression.

    >>> from senryu.experimental import jaxpr_info
    >>> expr = jaxpr_info.Expression("sin", "a", "b", flops=3, details="in f32[3], out f32[3]")
    >>> print(jaxpr_info.format_module(jaxpr_info.Module("f", flops=3, expressions=[expr])))
    f 3 flops
      sin 3 flops in f32[3], out f32[3]
    """
    indent = "  " * depth
    lines = [indent + _summary(module) + "\n"]
    for expression in module.expressions:
        if expression.submodule is not None:
            lines.append(format_module(expression.submodule, depth + 1))
            continue
        flops = "" if expression.flops is None else " " + _human(expression.flops, "flops")
        lines.append(f"{indent}  {expression.primitive}{flops} {expression.details}\n")
    return "".join(lines)


def _info_table(module: Module) -> str:
    rows = ["<tr><th colspan=2>Param</th></tr>"]
    rows += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
             for k, v in module.param_info.items()]
    rows.append("<tr><th colspan=2>State</th></tr>")
    rows += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
             for k, v in module.state_info.items()]
    return "<table>" + "".join(rows) + "</table>"


def as_html(module: Module, min_flop: int = 1000, outvars: str = "", last: bool = False) -> str:
    """The module tree as nested HTML lists; modules under ``min_flop`` flops start collapsed.

    ``outvars`` names what the module computes; ``last`` marks the last child of its parent.

    >>> from senryu.experimental import jaxpr_info
    >>> page = jaxpr_info.as_html(jaxpr_info.Module("mlp", flops=10))
    >>> "<b>mlp</b>" in page
    True
    """
    connector = "&#9492;&#9472;" if last else "&#9500;&#9472;"
    label = html.escape(_summary(module)[len(module.name):])
    target = f"{html.escape(outvars)} = " if outvars else ""
    collapsed = module.flops is not None and module.flops < min_flop
    items = []
    for i, expression in enumerate(module.expressions):
        is_last = i == len(module.expressions) - 1
        if expression.submodule is not None:
            items.append(as_html(expression.submodule, min_flop, expression.outvars, is_last))
            continue
        flops = "" if expression.flops is None else _human(expression.flops, "flops")
        extra = "".join(f"<div>{html.escape(k)}: {html.escape(v)}</div>"
                        for k, v in expression.params.items())
        items.append(
            "<li class='node'><div class='expression tooltip-container'>"
            f"<span class='tooltip'>{html.escape(expression.details)}{extra}</span>"
            f"{html.escape(expression.outvars)} = "
            f"<span class='primitive'>{html.escape(expression.primitive)}</span> "
            f"{html.escape(expression.invars)} <span class='flops'>{flops}</span></div></li>")
    display = "none" if collapsed else "block"
    return (
        f"<li class='node'><span class='expander' onclick='collapse(this)'>{connector}</span>"
        f"<span class='tooltip-container'>{target}<b>{html.escape(module.name)}</b>"
        f"<span class='flops'>{label}</span><span class='tooltip'>{_info_table(module)}</span>"
        "</span><span class='expander' onclick='expand(this)' "
        f"style='display:{'inline' if collapsed else 'none'}'> [expand]</span>"
        f"<ol style='display:{display}'>{''.join(items)}</ol></li>")


def as_html_page(module: Module, min_flop: int = 1000) -> str:
    """A complete HTML page (with ``css()`` and ``js()``) showing the module tree.

    >>> from senryu.experimental import jaxpr_info
    >>> page = jaxpr_info.as_html_page(jaxpr_info.Module("apply_fn"))
    >>> page.startswith("<html>"), "apply_fn" in page
    (True, True)
    """
    return (f"<html><head><style>{css()}</style><script>{js()}</script></head>"
            f"<body><div class='model-info'><ol>{as_html(module, min_flop, last=True)}</ol>"
            "</div></body></html>")


def css() -> str:
    """The style sheet used by ``as_html`` pages.

    >>> from senryu.experimental import jaxpr_info
    >>> ".node" in jaxpr_info.css()
    True
    """
    return """
.model-info { font-family: monospace; }
.node { list-style-type: none; }
.node ol { padding-left: 0; margin-left: 28px; }
li.node { border-left: 1px solid #444; }
li.node:last-child { border-left: none; }
.expander { cursor: pointer; }
.expression { padding-left: 24px; }
.tooltip-container .tooltip { visibility: hidden; position: absolute; z-index: 1;
  background-color: #eef2ff; padding: 6px; border-radius: 4px; margin-top: 1.3em; }
.tooltip-container:hover .tooltip { visibility: visible; }
.flops { color: grey; padding-left: 6px; }
.primitive { color: #2f3f9f; }
"""


def js() -> str:
    """The script with the ``expand``/``collapse`` handlers used by ``as_html`` pages.

    >>> from senryu.experimental import jaxpr_info
    >>> "function expand" in jaxpr_info.js()
    True
    """
    return """
function setOpen(node, open) {
  const parts = node.parentElement.children;
  parts[parts.length - 1].style.display = open ? 'block' : 'none';
  parts[parts.length - 2].style.display = open ? 'none' : 'inline';
}
function expand(el) { setOpen(el, true); }
function collapse(el) {
  const list = el.parentElement.children;
  setOpen(el, list[list.length - 1].style.display === 'none');
}
"""
