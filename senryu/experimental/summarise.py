"""Summaries of a network: which module methods run, on what shapes, with which parameters.

``eval_summary`` records every module method call of a function (without computing anything: it
runs under ``jax.eval_shape``); ``tabulate`` prints those records as a table.
"""

from __future__ import annotations

import dataclasses
import pprint
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import jax
import numpy as np

from senryu import core

__all__ = ["ArraySpec", "MethodInvocation", "ModuleDetails", "eval_summary", "tabulate"]

_SHORT_DTYPE_PREFIXES = (("bfloat", "bf"), ("uint", "u"), ("int", "s"), ("float", "f"),
                         ("complex", "c"))


def _short_dtype_name(dtype: Any) -> str:
    name = np.dtype(dtype).name
    for prefix, short in _SHORT_DTYPE_PREFIXES:
        if name.startswith(prefix):
            return short + name[len(prefix):]
    return name


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct))


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """The shape and dtype of an array; shown as e.g. ``f32[8,784]``.

    >>> import jax.numpy as jnp, senryu as hk
    >>> spec = hk.experimental.ArraySpec.from_array(jnp.ones([2, 3], jnp.bfloat16))
    >>> spec
    bf16[2,3]
    >>> spec.shape, spec.dtype
    ((2, 3), dtype(bfloat16))

    Attributes:
      shape: the shape of the array.
      dtype: the dtype of the array.
    """
    shape: Sequence[int]
    dtype: Any

    @classmethod
    def from_array(cls, array: Any) -> "ArraySpec":
        """The spec of ``array`` (anything with ``shape`` and ``dtype``, tracers included)."""
        return cls(tuple(array.shape), array.dtype)

    def __repr__(self) -> str:
        return f"{_short_dtype_name(self.dtype)}[{','.join(str(d) for d in self.shape)}]"

    __str__ = __repr__


def _to_spec(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: ArraySpec.from_array(x) if _is_array(x) else x, tree)


@dataclasses.dataclass(frozen=True)
class ModuleDetails:
    """A module, the method called on it, and its parameters and state as ``ArraySpec``s.

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = lambda x: hk.Linear(2)(x)
    >>> details = hk.experimental.eval_summary(f)(jnp.ones([1, 3]))[0].module_details
    >>> details.module.module_name, details.method_name
    ('linear', '__call__')
    >>> details.params
    {'linear/b': f32[2], 'linear/w': f32[3,2]}
    >>> details.state
    {}

    Attributes:
      module: the module instance.
      method_name: the name of the method that was called, e.g. ``"__call__"``.
      params: the parameters of the module, of its submodules and of the modules it called (e.g.
        the layers of a ``Sequential``), keyed by full name (``"module_name/param_name"``), with
        arrays replaced by ``ArraySpec``.
      state: the state of the same modules, in the same form.
    """
    module: Any
    method_name: str
    params: Mapping[str, ArraySpec]
    state: Mapping[str, ArraySpec]


@dataclasses.dataclass(frozen=True)
class MethodInvocation:
    """One call of a module method recorded by ``eval_summary``.

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = lambda x: hk.nets.MLP([4, 2])(x)
    >>> call = hk.experimental.eval_summary(f)(jnp.ones([1, 3]))[1]
    >>> call.module_details.module.module_name
    'mlp/~/linear_0'
    >>> call.args_spec, call.kwargs_spec, call.output_spec
    ((f32[1,3],), {}, f32[1,4])
    >>> [d.module.module_name for d in call.call_stack]
    ['mlp/~/linear_0', 'mlp']

    Attributes:
      module_details: the module and the method that was called.
      args_spec: the positional arguments, with arrays replaced by ``ArraySpec``.
      kwargs_spec: the keyword arguments, with arrays replaced by ``ArraySpec``.
      output_spec: the result, with arrays replaced by ``ArraySpec``.
      context: the ``MethodContext`` the method interceptor was given.
      call_stack: the details of the module calls running at that point, innermost first: this
        call, then its caller, and so on (if ``A`` calls ``B`` which calls ``C``, the stack of
        ``C``'s call is ``(C, B, A)``).
    """
    module_details: ModuleDetails
    args_spec: Sequence[Any]
    kwargs_spec: Mapping[str, Any]
    output_spec: Any
    context: Any
    call_stack: Sequence[ModuleDetails]


# --- tracing helpers, shared with `dot.py` -------------------------------------------------------

def _split_static(args: tuple, kwargs: dict):
    """Splits the leaves of ``(args, kwargs)`` into arrays (traced) and everything else (static).

    Returns the arrays, their key paths in ``(args, kwargs)`` and
    ``rebuild(arrays) -> (args, kwargs)``.
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path((args, kwargs))
    leaves = [leaf for _, leaf in with_paths]
    traced = [_is_array(leaf) for leaf in leaves]
    arrays = [leaf for leaf, t in zip(leaves, traced) if t]
    paths = [path for (path, _), t in zip(with_paths, traced) if t]

    def rebuild(new_arrays):
        it = iter(new_arrays)
        full = [next(it) if t else leaf for leaf, t in zip(leaves, traced)]
        return jax.tree_util.tree_unflatten(treedef, full)

    return arrays, paths, rebuild


def _original_function(f: Any, api_name: str) -> tuple[Callable[..., Any], bool]:
    """The function to run for ``f``, and whether it is the user's function (so ``apply`` can be
    run) rather than a ``Transformed.init`` (whose original function could not be found).
    """
    transformed = (core.Transformed, core.TransformedWithState)
    if isinstance(f, (core.MultiTransformed, core.MultiTransformedWithState)):
        raise TypeError(
            f"`hk.experimental.{api_name}` does not support multi-transformed functions: pass one "
            "of the functions it was built from (or `hk.transform(fn)` of it) instead.")
    if isinstance(f, transformed):
        for fn in (f.init, f.apply):
            original = getattr(fn, "_original_fn", None) or getattr(fn, "__wrapped__", None)
            if original is not None:
                return original, True
        return f.init, False
    if not callable(f):
        raise TypeError(
            f"`hk.experimental.{api_name}` expects a function using modules, or the result of "
            f"`hk.transform`/`hk.transform_with_state`, got {type(f).__name__}: {f!r:.80}.")
    return f, True


# --- eval_summary --------------------------------------------------------------------------------

class _Recording:
    """The method calls seen so far, in call order (a call is listed before the calls it makes)."""

    def __init__(self) -> None:
        self.calls: list[Optional[dict]] = []
        self.stack: list[tuple[Any, str]] = []
        # Names of the modules each module (by name) called, directly or not: like Haiku, a
        # module's details include the parameters of the modules it uses (e.g. `Sequential`'s
        # layers), wherever they were created.
        self.used: dict[str, set[str]] = {}
        self.thread = threading.get_ident()

    def interceptor(self, next_f, args, kwargs, context):
        if context.method_name == "__init__" or threading.get_ident() != self.thread:
            return next_f(*args, **kwargs)
        index = len(self.calls)
        self.calls.append(None)
        for caller, _ in self.stack:
            self.used.setdefault(caller.module_name, set()).add(context.module.module_name)
        self.stack.append((context.module, context.method_name))
        call_stack = tuple(reversed(self.stack))
        try:
            out = next_f(*args, **kwargs)
        finally:
            self.stack.pop()
        self.calls[index] = dict(module=context.module, method_name=context.method_name,
                                 args_spec=_to_spec(tuple(args)), kwargs_spec=_to_spec(dict(kwargs)),
                                 output_spec=_to_spec(out), context=context, call_stack=call_stack)
        return out


def _specs_under(tree: Mapping, module_names: set[str]) -> dict[str, ArraySpec]:
    """The entries of ``tree`` belonging to any of ``module_names`` or their submodules."""
    prefixes = tuple(name + "/" for name in module_names)
    return {
        f"{bundle}/{name}": ArraySpec.from_array(value)
        for bundle in sorted(tree)
        if bundle in module_names or bundle.startswith(prefixes)
        for name, value in sorted(tree[bundle].items())
    }


def _invocations(recording: _Recording, params: Mapping, state: Mapping) -> list[MethodInvocation]:
    cache: dict[tuple[int, str], ModuleDetails] = {}

    def details(module, method_name):
        key = (id(module), method_name)
        if key not in cache:
            names = {module.module_name} | recording.used.get(module.module_name, set())
            cache[key] = ModuleDetails(module, method_name, _specs_under(params, names),
                                       _specs_under(state, names))
        return cache[key]

    out = []
    for call in recording.calls:
        if call is None:  # the method raised; the exception has already propagated
            continue
        out.append(MethodInvocation(
            module_details=details(call["module"], call["method_name"]),
            args_spec=call["args_spec"], kwargs_spec=call["kwargs_spec"],
            output_spec=call["output_spec"], context=call["context"],
            call_stack=tuple(details(m, n) for m, n in call["call_stack"])))
    return out


TransformedLike = Union[Callable[..., Any], core.Transformed, core.TransformedWithState]


def eval_summary(f: TransformedLike) -> Callable[..., Sequence[MethodInvocation]]:
    """Records the module method calls that running ``f`` makes, without computing anything.

    ``f`` (a function using modules, or ``hk.transform(fn)``/``hk.transform_with_state(fn)``) is
    transformed, initialised, and applied under ``jax.eval_shape``, so arguments may be arrays or
    ``jax.ShapeDtypeStruct``s; arguments that are not arrays (flags, sizes) are passed as they are.
    The calls of ``apply`` are recorded, in the order they start.

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = lambda x: hk.nets.MLP([300, 100, 10])(x)
    >>> x = jnp.ones([8, 28 * 28])
    >>> for i in hk.experimental.eval_summary(f)(x):
    ...     print("mod := {:14} | in := {} out := {}".format(
    ...         i.module_details.module.module_name, i.args_spec[0], i.output_spec))
    mod := mlp            | in := f32[8,784] out := f32[8,10]
    mod := mlp/~/linear_0 | in := f32[8,784] out := f32[8,300]
    mod := mlp/~/linear_1 | in := f32[8,300] out := f32[8,100]
    mod := mlp/~/linear_2 | in := f32[8,100] out := f32[8,10]

    Args:
      f: a function using modules, or a transformed function.

    Returns:
      A function taking ``f``'s arguments (without params, state or rng) and returning a list of
      ``MethodInvocation``.
    """
    fn, is_original = _original_function(f, "eval_summary")
    with_state = isinstance(f, core.TransformedWithState)

    def summarise(*args, **kwargs) -> list[MethodInvocation]:
        recording = _Recording()
        arrays, _, rebuild = _split_static(args, kwargs)
        result = []

        def run(*traced):
            a, k = rebuild(traced)
            rng = jax.random.PRNGKey(42)
            if is_original:
                transformed = core.transform_with_state(fn)
                params, state = transformed.init(rng, *a, **k)
                with core.intercept_methods(recording.interceptor):
                    _, state = transformed.apply(params, state, rng, *a, **k)
            else:
                # Only `init` can be run when the user's function is unknown: record it instead.
                with core.intercept_methods(recording.interceptor):
                    out = fn(rng, *a, **k)
                params, state = out if with_state else (out, {})
            result.extend(_invocations(recording, params, state))

        jax.eval_shape(run, *arrays)
        return result

    return summarise


# --- tabulate ------------------------------------------------------------------------------------

_COLUMNS = {
    "module": "Module",
    "config": "Config",
    "owned_params": "Module params",
    "input": "Input",
    "output": "Output",
    "params_size": "Param count",
    "params_bytes": "Param bytes",
}
_RIGHT_ALIGNED = ("params_size", "params_bytes")
_FILTERS = {
    "has_output": lambda call: call.output_spec is not None,
    "has_params": lambda call: bool(call.module_details.params),
}
_DEFAULT_COLUMNS = ("module", "config", "owned_params", "input", "output", "params_size",
                    "params_bytes")
_DEFAULT_FILTERS = ("has_output",)


def _module_label(details: ModuleDetails) -> str:
    cls_name = type(details.module).__name__
    method = "" if details.method_name == "__call__" else f".{details.method_name}"
    return f"{details.module.module_name} ({cls_name}{method})"


def _size(spec: ArraySpec) -> int:
    return int(np.prod(spec.shape, dtype=np.int64))


def _format_bytes(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes < 1000 or unit == "TB":
            return f"{num_bytes:.2f} {unit}"
        num_bytes /= 1000


def _cell(column: str, call: MethodInvocation) -> str:
    details = call.module_details
    if column == "module":
        return "\n".join([_module_label(details)]
                         + [f" └ {_module_label(d)}" for d in call.call_stack[1:]])
    if column == "config":
        return repr(details.module)
    if column == "owned_params":
        own = sorted(((key.rsplit("/", 1)[1], spec) for key, spec in details.params.items()
                      if key.rsplit("/", 1)[0] == details.module.module_name),
                     key=lambda item: -_size(item[1]))
        return "\n".join(f"{name}: {spec!r}" for name, spec in own)
    if column == "input":
        lines = [", ".join(repr(a) for a in call.args_spec),
                 ", ".join(f"{k}={v!r}" for k, v in call.kwargs_spec.items())]
        return "\n".join(line for line in lines if line)
    if column == "output":
        # pprint's layout (80 columns, one dict entry per line when longer), as dm-haiku prints.
        return pprint.pformat(call.output_spec)
    if column == "params_size":
        return f"{sum(_size(s) for s in details.params.values()):,}"
    if column == "params_bytes":
        return _format_bytes(sum(_size(s) * np.dtype(s.dtype).itemsize
                                 for s in details.params.values()))
    raise AssertionError(column)


def _check_names(kind: str, given: Sequence[str], valid: Sequence[str]) -> tuple[str, ...]:
    if isinstance(given, str):
        raise TypeError(
            f"`hk.experimental.tabulate` expects `{kind}s` to be a sequence of names, got the "
            f"string {given!r}; write ({given!r},).")
    given = tuple(given)
    invalid = [name for name in given if name not in valid]
    if invalid:
        raise ValueError(
            f"Invalid {kind}(s) {invalid} for `hk.experimental.tabulate`; valid {kind}s are "
            f"{list(valid)}.")
    return given


def tabulate(
        f: TransformedLike,
        *,
        columns: Optional[Sequence[str]] = _DEFAULT_COLUMNS,
        filters: Optional[Sequence[str]] = _DEFAULT_FILTERS,
        tabulate_kwargs: Mapping[str, Any] = {"tablefmt": "grid"},  # noqa: B006 (read only)
) -> Callable[..., str]:
    """Summarises a run of ``f`` as a table of module method calls (see ``eval_summary``).

    Columns: ``module`` (name, class and method, then the calling modules), ``config`` (the
    module's ``repr``), ``owned_params`` (the module's own parameters, largest first), ``input``,
    ``output``, ``params_size`` and ``params_bytes`` (the module's parameters with those of its
    submodules). Filters: ``has_output`` (drop calls returning ``None``), ``has_params`` (drop
    modules without parameters).

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([300, 100, 10])(x))
    >>> x = jnp.ones([8, 28 * 28])
    >>> print(hk.experimental.tabulate(
    ...     f, columns=("module", "owned_params", "output", "params_bytes"))(x))
    +-------------------------+-----------------+------------+---------------+
    | Module                  | Module params   | Output     |   Param bytes |
    +=========================+=================+============+===============+
    | mlp (MLP)               |                 | f32[8,10]  |       1.07 MB |
    +-------------------------+-----------------+------------+---------------+
    | mlp/~/linear_0 (Linear) | w: f32[784,300] | f32[8,300] |     942.00 KB |
    |  └ mlp (MLP)            | b: f32[300]     |            |               |
    +-------------------------+-----------------+------------+---------------+
    | mlp/~/linear_1 (Linear) | w: f32[300,100] | f32[8,100] |     120.40 KB |
    |  └ mlp (MLP)            | b: f32[100]     |            |               |
    +-------------------------+-----------------+------------+---------------+
    | mlp/~/linear_2 (Linear) | w: f32[100,10]  | f32[8,10]  |       4.04 KB |
    |  └ mlp (MLP)            | b: f32[10]      |            |               |
    +-------------------------+-----------------+------------+---------------+

    Args:
      f: a function using modules, or a transformed function.
      columns: the columns to show, in order (``None``: the default ones, which are all of them).
      filters: the filters rows must pass (``None``: the default, ``("has_output",)``).
      tabulate_kwargs: keyword arguments for ``tabulate.tabulate`` (e.g. ``tablefmt``).

    Returns:
      A function taking ``f``'s arguments and returning the table as a string.
    """
    columns = _check_names("column", _DEFAULT_COLUMNS if columns is None else columns,
                           tuple(_COLUMNS))
    filters = _check_names("filter", _DEFAULT_FILTERS if filters is None else filters,
                           tuple(_FILTERS))
    summarise = eval_summary(f)

    def table(*args, **kwargs) -> str:
        import tabulate as tabulate_lib  # only needed here

        calls = [call for call in summarise(*args, **kwargs)
                 if all(_FILTERS[name](call) for name in filters)]
        rows = [[_cell(column, call) for column in columns] for call in calls]
        options = {"colalign": tuple("right" if c in _RIGHT_ALIGNED else "left" for c in columns)}
        options.update(tabulate_kwargs)
        return tabulate_lib.tabulate(rows, headers=[_COLUMNS[c] for c in columns], **options)

    return table
