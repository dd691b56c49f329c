"""Graphviz (DOT) pictures of a function: its JAX operations, clustered by the module calling them.

The function is traced once with ``jax.make_jaxpr`` while every module method call runs inside a
``jax.named_scope`` of its own; each equation's name stack then tells which module call (the
innermost one) it belongs to. Calls of ``jit``-compiled functions are inlined; other higher-order
operations (``scan``, ``cond``, ``custom_jvp_call``, ...) are drawn as one node.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable, Optional

import jax
import numpy as np
from jax import extend as jex

from senryu import core
from senryu.experimental.summarise import ArraySpec, _split_static

__all__ = ["to_dot", "abstract_to_dot"]

_SCOPE_PREFIX = "senryu_dot_call_"
_SCOPE_RE = re.compile(_SCOPE_PREFIX + r"(\d+)")
# Primitives whose sub-jaxpr is drawn inline (their eqn param holding it).
_INLINED = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
            "remat": "jaxpr", "checkpoint": "jaxpr"}

_INPUT_COLOR = "#ffc98a"   # orange: the function's inputs
_OUTPUT_COLOR = "#a7c7ff"  # blue: its outputs
_OP_COLOR = "#fff6a8"      # yellow: primitive operations
_CONST_COLOR = "#e0e0e0"   # grey: constants captured by the function


class _ModuleCall:
    __slots__ = ("index", "label", "parent", "children", "nodes")

    def __init__(self, index: int, label: str, parent: Optional[int]):
        self.index = index
        self.label = label
        self.parent = parent
        self.children: list[int] = []
        self.nodes: list[str] = []


class _CallRecorder:
    """Method interceptor giving every module method call a ``jax.named_scope`` of its own."""

    def __init__(self) -> None:
        self.calls: list[_ModuleCall] = []
        self.stack: list[int] = []
        self.thread = threading.get_ident()

    def interceptor(self, next_f, args, kwargs, context):
        if threading.get_ident() != self.thread:
            return next_f(*args, **kwargs)
        module = context.module
        method = "" if context.method_name == "__call__" else f".{context.method_name}"
        parent = self.stack[-1] if self.stack else None
        call = _ModuleCall(len(self.calls),
                           f"{module.module_name} ({type(module).__name__}{method})", parent)
        self.calls.append(call)
        if parent is not None:
            self.calls[parent].children.append(call.index)
        self.stack.append(call.index)
        try:
            with jax.named_scope(f"{_SCOPE_PREFIX}{call.index}"):
                return next_f(*args, **kwargs)
        finally:
            self.stack.pop()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _aval_text(var: Any) -> str:
    aval = getattr(var, "aval", None)
    if aval is None or not hasattr(aval, "shape") or not hasattr(aval, "dtype"):
        return str(aval)
    try:
        return repr(ArraySpec(tuple(aval.shape), aval.dtype))
    except TypeError:  # e.g. PRNG key dtypes, which numpy does not know
        return f"{aval.dtype}[{','.join(str(d) for d in aval.shape)}]"


def _eqn_function_name(eqn: Any) -> Optional[str]:
    """The name of the function a higher-order equation wraps (e.g. ``relu``), if known."""
    if isinstance(eqn.params.get("name"), str):
        return eqn.params["name"]
    for value in eqn.params.values():
        jaxpr = getattr(value, "jaxpr", value)
        debug_info = getattr(jaxpr, "debug_info", None)
        func_name = getattr(debug_info, "func_name", None)
        if isinstance(func_name, str) and func_name:
            return func_name
    return None


class _Graph:
    def __init__(self, calls: list[_ModuleCall]):
        self.calls = calls
        self.top_nodes: list[str] = []
        self.edges: list[str] = []
        self.ids = itertools.count()

    def node(self, label: str, color: str, call: Optional[int]) -> str:
        name = f"n{next(self.ids)}"
        line = f"{name} [label={_quote(label)}, fillcolor={_quote(color)}];"
        (self.calls[call].nodes if call is not None else self.top_nodes).append(line)
        return name

    def edge(self, source: str, target: str) -> None:
        self.edges.append(f"{source} -> {target};")

    def add_jaxpr(self, jaxpr: Any, env: dict, scope: tuple[int, ...]) -> None:
        """Adds the equations of ``jaxpr``; ``env`` maps its variables to node names."""
        for eqn in jaxpr.eqns:
            inner_scope = scope + tuple(
                int(i) for i in _SCOPE_RE.findall(str(eqn.source_info.name_stack)))
            param = _INLINED.get(eqn.primitive.name)
            sub = eqn.params.get(param) if param else None
            if sub is not None:
                closed = sub if hasattr(sub, "jaxpr") else None
                inner = closed.jaxpr if closed is not None else sub
                sub_env = {}
                for var in inner.constvars:
                    sub_env[var] = self.node(f"const\n{_aval_text(var)}", _CONST_COLOR,
                                             inner_scope[-1] if inner_scope else None)
                for inner_var, outer_var in zip(inner.invars, eqn.invars):
                    if not isinstance(outer_var, jex.core.Literal) and outer_var in env:
                        sub_env[inner_var] = env[outer_var]
                self.add_jaxpr(inner, sub_env, inner_scope)
                for outer_var, inner_var in zip(eqn.outvars, inner.outvars):
                    if not isinstance(inner_var, jex.core.Literal) and inner_var in sub_env:
                        env[outer_var] = sub_env[inner_var]
                continue
            label = eqn.primitive.name
            fn_name = _eqn_function_name(eqn)
            if fn_name:
                label += f"[{fn_name}]"
            outs = [v for v in eqn.outvars if not isinstance(v, jex.core.DropVar)]
            label += "\n" + ", ".join(_aval_text(v) for v in outs)
            name = self.node(label, _OP_COLOR, inner_scope[-1] if inner_scope else None)
            for var in eqn.invars:
                if not isinstance(var, jex.core.Literal) and var in env:
                    self.edge(env[var], name)
            for var in outs:
                env[var] = name

    def cluster_lines(self, index: int, indent: str) -> list[str]:
        call = self.calls[index]
        lines = [f"{indent}subgraph cluster_{index} {{",
                 f"{indent}  label={_quote(call.label)};",
                 f"{indent}  style=\"rounded,filled\";",
                 f"{indent}  fillcolor=\"#f2f5fa\";"]
        lines += [f"{indent}  {node}" for node in call.nodes]
        for child in call.children:
            lines += self.cluster_lines(child, indent + "  ")
        if not call.nodes and not call.children:
            # Graphviz draws no empty cluster: an invisible node keeps the module visible.
            lines.append(f"{indent}  empty_{index} [label=\"\", shape=point, style=invis];")
        lines.append(f"{indent}}}")
        return lines


def _graph_source(fun: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    recorder = _CallRecorder()
    arrays, array_paths, rebuild = _split_static(args, kwargs)

    def flat_fun(*traced):
        a, k = rebuild(traced)
        return fun(*a, **k)

    with core.intercept_methods(recorder.interceptor):
        closed, out_shape = jax.make_jaxpr(flat_fun, return_shape=True)(*arrays)
    jaxpr = closed.jaxpr

    graph = _Graph(recorder.calls)
    env: dict = {}
    for var in jaxpr.constvars:
        env[var] = graph.node(f"const\n{_aval_text(var)}", _CONST_COLOR, None)
    for var, path in zip(jaxpr.invars, array_paths):
        root = "args" if path[0].idx == 0 else "kwargs"
        env[var] = graph.node(f"{root}{jax.tree_util.keystr(path[1:])}\n{_aval_text(var)}",
                              _INPUT_COLOR, None)
    graph.add_jaxpr(jaxpr, env, ())
    out_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(out_shape)[0]]
    for var, path in zip(jaxpr.outvars, out_paths):
        out = graph.node(f"output{jax.tree_util.keystr(path)}\n{_aval_text(var)}",
                         _OUTPUT_COLOR, None)
        if isinstance(var, jex.core.Literal):
            graph.edge(graph.node(f"literal\n{np.asarray(var.val)!s:.40}", _CONST_COLOR, None),
                       out)
        elif var in env:
            graph.edge(env[var], out)

    title = getattr(fun, "__name__", type(fun).__name__)
    lines = ["digraph G {",
             "  rankdir=TB;",
             "  compound=true;",
             f"  label={_quote(title)};",
             "  labelloc=t;",
             "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];"]
    lines += [f"  {node}" for node in graph.top_nodes]
    for call in recorder.calls:
        if call.parent is None:
            lines += graph.cluster_lines(call.index, "  ")
    lines += [f"  {edge}" for edge in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(fun: Callable[..., Any]) -> Callable[..., str]:
    """Turns ``fun`` into a function returning the Graphviz DOT source of its computation.

    Every JAX operation ``fun`` performs is a node (inputs orange, outputs blue, operations
    yellow), inside a cluster for each module method call that made it (``module_name (Class)``).
    ``fun`` may be any function, e.g. the ``apply`` of a transformed function; it is traced with
    ``jax.make_jaxpr``, so Python control flow depending on input values is not supported. View the
    result with the ``graphviz`` package: ``graphviz.Source(dot)``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    >>> x = jnp.ones([1, 4])
    >>> params = f.init(jax.random.PRNGKey(42), x)
    >>> dot = hk.experimental.to_dot(f.apply)(params, None, x)
    >>> dot.splitlines()[0]
    'digraph G {'
    >>> for line in dot.splitlines():
    ...     if line.strip().startswith("label="):
    ...         print(line.strip())
    label="apply_fn";
    label="mlp (MLP)";
    label="mlp/~/linear_0 (Linear)";
    label="mlp/~/linear_1 (Linear)";

    Args:
      fun: a function, possibly using modules inside a transform.

    Returns:
      A function taking ``fun``'s arguments and returning DOT source text.
    """
    if not callable(fun):
        raise TypeError(
            f"`hk.experimental.to_dot` expects a function (e.g. `f.apply` of a transformed "
            f"function), got {type(fun).__name__}: {fun!r:.80}.")

    def dot(*args, **kwargs) -> str:
        return _graph_source(fun, args, kwargs)

    return dot


def abstract_to_dot(fun: Callable[..., Any]) -> Callable[..., str]:
    """As ``to_dot``, but arguments may be ``jax.ShapeDtypeStruct``s: nothing is computed.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> x = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    >>> params = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)
    >>> dot = hk.experimental.abstract_to_dot(f.apply)(params, None, x)
    >>> 'label="linear (Linear)";' in dot
    True

    Args:
      fun: a function, possibly using modules inside a transform.

    Returns:
      A function taking ``fun``'s arguments (arrays or ``jax.ShapeDtypeStruct``s) and returning
      DOT source text.
    """
    if not callable(fun):
        raise TypeError(
            f"`hk.experimental.abstract_to_dot` expects a function (e.g. `f.apply` of a "
            f"transformed function), got {type(fun).__name__}: {fun!r:.80}.")

    def dot(*args, **kwargs) -> str:
        return _graph_source(fun, args, kwargs)

    return dot
