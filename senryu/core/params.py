"""Parameters and state: ``get_parameter``, ``get_state``, ``set_state`` and their interceptors."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from senryu.core import frame as frame_lib
from senryu.core import jax_usage
from senryu.core import naming

Initializer = Callable[[Sequence[int], Any], jax.Array]


class _DoNotStore:
    """Sentinel: a creator, getter or setter returning it keeps the value out of params/state."""

    def __repr__(self) -> str:
        return "hk.DO_NOT_STORE"


DO_NOT_STORE = _DoNotStore()


class GetterContext(NamedTuple):
    """Where a parameter or state value is being created or read (for creators and getters).

    Attributes:
      full_name: e.g. ``"mlp/~/linear_0/w"``.
      module: the owning module, or ``None`` at the top level.
      original_dtype: the dtype ``get_parameter``/``get_state`` was called with.
      original_shape: the shape it was called with.
      original_init: the initializer it was called with.
      lifted_prefix_name: names of enclosing ``lift``s (a prefix of the final name), or ``None``.
    """
    full_name: str
    module: Optional[Any]
    original_dtype: Any
    original_shape: Sequence[int]
    original_init: Optional[Initializer] = None
    lifted_prefix_name: Optional[str] = None

    @property
    def module_name(self) -> str:
        """The full name of the owning module (``"~"`` at the top level)."""
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        """The parameter's own name, e.g. ``"w"``."""
        return self.full_name.rsplit("/", 1)[-1]


class SetterContext(NamedTuple):
    """Where state is being set (for custom setters); fields as in ``GetterContext``."""
    full_name: str
    module: Optional[Any]
    original_dtype: Any
    original_shape: Sequence[int]
    lifted_prefix_name: Optional[str] = None

    @property
    def module_name(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[-1]


def _owner(frame: frame_lib.Frame):
    stack = frame.module_stack
    return stack[-1].module if stack else None


def _lifted_prefix(frame: frame_lib.Frame) -> Optional[str]:
    return "/".join(frame.lift_prefixes) if frame.lift_prefixes else None


def _check_array(value: Any, full_name: str, what: str) -> None:
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(
            f"{what} '{full_name}' must be an array, got {type(value).__name__}: {value!r:.80}. "
            "Initializers must return arrays (e.g. `jnp.zeros(shape, dtype)`), and params/state "
            "passed to `apply` must hold arrays.")


def _shape_mismatch(full_name: str, got, want, dtype) -> ValueError:
    return ValueError(
        f"'{full_name}' with retrieved shape {tuple(got)} does not match shape={list(want)} "
        f"dtype={dtype}: the params were created for inputs of another shape. Re-run `init` with "
        "inputs shaped like those given to `apply`, or load a checkpoint of this model.")


def _chain(interceptors: list, last: Callable, *head_args) -> Any:
    """Calls interceptors outermost-first; each gets ``next`` and the head arguments."""
    def call(index, *args):
        if index == len(interceptors):
            return last(*args)
        return interceptors[index](lambda *a: call(index + 1, *a), *args, *head_args)
    return lambda *args: call(0, *args)


def _missing_parameter(frame, name: str, bundle_name: str) -> ValueError:
    return ValueError(
        f"Unable to retrieve parameter '{name}' for module '{bundle_name}' (full name "
        f"'{bundle_name}/{name}'): it is not in the params given to `apply`. All parameters must "
        "be created as part of `init`; check that `apply` gets the params that `init` of the same "
        "function returned." + _known_modules(frame.params, bundle_name))


def _in_initializer(error: Exception, kind: str, full_name: str, shape, dtype) -> Exception:
    """``error`` (raised by an initializer) with the parameter or state it was creating named."""
    if isinstance(error, jax_usage.JaxUsageError):
        return error
    message = (f"Creating {kind} '{full_name}' (shape {tuple(shape)}, dtype "
               f"{jnp.dtype(dtype).name if dtype is not None else None}) failed: {error}")
    try:
        return type(error)(message)
    except Exception:  # a constructor taking other arguments: keep the error, add a note
        error.add_note(message)
        return error


def _create(frame, kind: str, full_name: str, shape, dtype, init, creators):
    if frame.creation_blocked is not None:
        raise ValueError(f"Cannot create {kind} '{full_name}' here: {frame.creation_blocked}")
    jax_usage.check(frame.trace, lambda: jax_usage.describe("Creating", kind, full_name))
    if kind == "parameter" and frame.params_frozen:
        def innermost(s, d, i):
            module_name, _, name = full_name.rpartition("/")
            raise _missing_parameter(frame, name, module_name)
    else:
        def innermost(s, d, i):
            try:
                return i(s, d)
            except (ValueError, TypeError) as error:
                raise _in_initializer(error, kind, full_name, s, d) from error
    if creators:
        context = GetterContext(full_name, _owner(frame), dtype, shape, init, _lifted_prefix(frame))
        value = _chain(creators, innermost, context)(shape, dtype, init)
    else:
        value = innermost(shape, dtype, init)
    if value is not DO_NOT_STORE:
        _check_array(value, full_name, kind.capitalize())
        if tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"The initializer of {kind} '{full_name}' returned shape {tuple(value.shape)}, "
                f"but shape={list(shape)} was requested.")
    return value


def _apply_getters(frame, getters, value, full_name, shape, dtype, init):
    context = GetterContext(full_name, _owner(frame), dtype, shape, init, _lifted_prefix(frame))
    return _chain(getters, lambda v: v, context)(value)


def get_parameter(name: str, shape: Sequence[int], dtype: Any = jnp.float32,
                  init: Optional[Initializer] = None) -> jax.Array:
    """Creates (during ``init``) or retrieves (during ``apply``) a parameter of the current module.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.ones))
    >>> f.init(None)
    {'~': {'w': Array([1., 1.], dtype=float32)}}

    Args:
      name: the parameter's name within its module.
      shape: its shape.
      dtype: its dtype.
      init: ``init(shape, dtype)`` gives its initial value; needed during ``init``.
    """
    frames = frame_lib.frame_stack()
    if not frames:
        frame_lib.current_frame("get_parameter")
    frame = frames[-1]
    stack = frame.module_stack
    bundle_name = stack[-1].module.module_name if stack else "~"
    bundle = frame.params.get(bundle_name)
    value = None if bundle is None else bundle.get(name)
    if value is None:
        full_name = f"{bundle_name}/{name}"
        if frame.params_frozen and not frame.param_creators:
            raise _missing_parameter(frame, name, bundle_name)
        if init is None:
            raise ValueError(
                f"Initializer must be specified for parameter '{full_name}': pass "
                "`init=` to `hk.get_parameter` (e.g. `init=hk.initializers.TruncatedNormal()`).")
        shape = tuple(shape)
        value = _create(frame, "parameter", full_name, shape, dtype, init, frame.param_creators)
        if value is not DO_NOT_STORE and not frame.params_frozen:
            frame.params.setdefault(bundle_name, {})[name] = value
    elif frame.params_frozen:
        value_shape = getattr(value, "shape", None)
        if value_shape is None:
            _check_array(value, f"{bundle_name}/{name}", "Parameter")
        if tuple(value_shape) != tuple(shape):
            raise _shape_mismatch(f"{bundle_name}/{name}", value_shape, shape, dtype)
    elif tuple(value.shape) != tuple(shape):
        raise _shape_mismatch(f"{bundle_name}/{name}", value.shape, shape, dtype)
    if frame.param_getters:
        value = _apply_getters(frame, frame.param_getters, value, f"{bundle_name}/{name}",
                               tuple(shape), dtype, init)
    if value is DO_NOT_STORE:
        raise ValueError(
            f"Parameter '{bundle_name}/{name}' was not stored (a custom creator returned "
            "hk.DO_NOT_STORE) and no custom getter supplied its value.")
    return value


def _known_modules(tree: dict, wanted: str) -> str:
    if not tree:
        return " The params given to `apply` are empty."
    names = sorted(tree)
    shown = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
    return f" The params hold modules: {shown}."


def get_state(name: str, shape: Optional[Sequence[int]] = None, dtype: Any = jnp.float32,
              init: Optional[Initializer] = None) -> jax.Array:
    """Returns the current value of a state entry of the current module, creating it if needed.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     counter = hk.get_state("counter", [], dtype=jnp.int32, init=jnp.zeros)
    ...     hk.set_state("counter", counter + 1)
    ...     return counter
    >>> f = hk.transform_with_state(f)
    >>> params, state = f.init(None)
    >>> for _ in range(3):
    ...     counter, state = f.apply(params, state, None)
    >>> counter
    Array(2, dtype=int32)
    """
    frame = frame_lib.current_frame("get_state")
    bundle_name = naming.current_bundle_name(frame)
    bundle = frame.state.get(bundle_name)
    pair = None if bundle is None else bundle.get(name)
    if pair is None:
        full_name = f"{bundle_name}/{name}"
        if init is None:
            raise ValueError(
                f"No value for state '{name}' in module '{bundle_name}': give `hk.get_state` an "
                "`init` (and a shape) for its first use, or call `hk.set_state` first.")
        shape = () if shape is None else tuple(shape)
        value = _create(frame, "state", full_name, shape, dtype, init, frame.state_creators)
        if value is not DO_NOT_STORE:
            frame.state.setdefault(bundle_name, {})[name] = frame_lib.StatePair(value, value)
    else:
        value = pair.current
    if frame.state_getters:
        value = _apply_getters(frame, frame.state_getters, value, f"{bundle_name}/{name}",
                               shape, dtype, init)
    return value


def set_state(name: str, value: Any) -> None:
    """Sets the current value of a state entry of the current module (creating it if needed).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     hk.set_state("counter", jnp.zeros([]))
    ...     return hk.get_state("counter")
    >>> hk.transform_with_state(f).apply({}, {}, None)
    (Array(0., dtype=float32), {'~': {'counter': Array(0., dtype=float32)}})
    """
    frame = frame_lib.current_frame("set_state")
    bundle_name = naming.current_bundle_name(frame)
    jax_usage.check(frame.trace,
                    lambda: jax_usage.describe("Setting", "state", f"{bundle_name}/{name}"))
    bundle_params = frame.params.get(bundle_name)
    if bundle_params is not None and name in bundle_params:
        raise ValueError(
            f"`hk.set_state('{name}', ...)` in module '{bundle_name}': '{bundle_name}/{name}' is a "
            "parameter, not state. Parameters are read-only inside a transform (update them "
            "outside, e.g. with optax); give the state a different name.")
    if frame.setters:
        context = SetterContext(f"{bundle_name}/{name}", _owner(frame),
                                getattr(value, "dtype", None), getattr(value, "shape", None),
                                _lifted_prefix(frame))
        value = _chain(frame.setters, lambda v: v, context)(value)
        if value is DO_NOT_STORE:
            return
    if frame.creation_blocked is not None:
        existing = frame.state.get(bundle_name)
        if existing is None or name not in existing:
            raise ValueError(
                f"Cannot create state '{bundle_name}/{name}' here: {frame.creation_blocked}")
    bundle = frame.state.get(bundle_name)
    if bundle is None:
        bundle = frame.state[bundle_name] = {}
    pair = bundle.get(name)
    bundle[name] = frame_lib.StatePair(value if pair is None else pair.initial, value)


@contextlib.contextmanager
def _registered(api_name: str, fn: Callable, registries: list[str]):
    frame = frame_lib.current_frame(api_name)
    lists = [getattr(frame, attr) for attr in registries]
    for registry in lists:
        registry.append(fn)
    try:
        yield
    finally:
        for registry in lists:
            registry.remove(fn)


def custom_creator(creator: Callable[..., Any], *, params: bool = True, state: bool = False):
    """Runs ``creator(next_creator, shape, dtype, init, context)`` when values are created.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def zeros_creator(next_creator, shape, dtype, init, context):
    ...     return next_creator(shape, dtype, jnp.zeros)
    >>> def f():
    ...     with hk.custom_creator(zeros_creator):
    ...         return hk.get_parameter("z", [], jnp.float32, jnp.ones)
    >>> hk.transform(f).init(None)
    {'~': {'z': Array(0., dtype=float32)}}

    Args:
      creator: the creator; ``context`` is a ``GetterContext``.
      params: run it when parameters are created.
      state: run it when state is created by ``get_state``.
    """
    return _registered("custom_creator", creator,
                       ["param_creators"] * params + ["state_creators"] * state)


def custom_getter(getter: Callable[..., Any], *, params: bool = True, state: bool = False):
    """Runs ``getter(next_getter, value, context)`` on every read of a parameter (or state).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def bf16_getter(next_getter, value, context):
    ...     return next_getter(value.astype(jnp.bfloat16))
    >>> def f():
    ...     with hk.custom_getter(bf16_getter):
    ...         return hk.get_parameter("w", [], jnp.float32, jnp.ones)
    >>> hk.transform(f).apply(hk.transform(f).init(None), None).dtype
    dtype(bfloat16)
    """
    return _registered("custom_getter", getter,
                       ["param_getters"] * params + ["state_getters"] * state)


def custom_setter(setter: Callable[..., Any]):
    """Runs ``setter(next_setter, value, context)`` on every ``set_state``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def doubled(next_setter, value, context):
    ...     return next_setter(value * 2)
    >>> def f():
    ...     with hk.custom_setter(doubled):
    ...         hk.set_state("x", jnp.ones([]))
    ...     return hk.get_state("x")
    >>> hk.transform_with_state(f).apply({}, {}, None)[0]
    Array(2., dtype=float32)
    """
    return _registered("custom_setter", setter, ["setters"])


def running_init() -> bool:
    """True while running ``init``, False during ``apply``.

    >>> import senryu as hk
    >>> f = hk.transform(lambda: hk.running_init())
    >>> f.init(None), f.apply({}, None)
    ({}, False)
    """
    return frame_lib.current_frame("running_init").is_init


def get_params() -> dict[str, dict[str, Any]]:
    """A copy of the parameters of the running transform (no getters, no initializers run).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     before = len(hk.get_params())
    ...     hk.Linear(1)(x)
    ...     return before, list(hk.get_params())
    >>> hk.transform(f).apply(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 1])), None, jnp.ones([1, 1]))
    (1, ['linear'])
    """
    frame = frame_lib.current_frame("get_params")
    return {module: dict(values) for module, values in frame.params.items()}


def get_current_state() -> dict[str, dict[str, Any]]:
    """The most recently set value of every state entry of the running transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     hk.set_state("x", jnp.ones([]))
    ...     return hk.get_current_state()
    >>> hk.transform_with_state(f).apply({}, {}, None)[0]
    {'~': {'x': Array(1., dtype=float32)}}
    """
    frame = frame_lib.current_frame("get_current_state")
    return {m: {k: p.current for k, p in values.items()} for m, values in frame.state.items()}


def get_initial_state() -> dict[str, dict[str, Any]]:
    """The state as it was given to ``apply`` (or first created during ``init``).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     hk.set_state("x", jnp.ones([]))
    ...     hk.set_state("x", jnp.zeros([]))
    ...     return hk.get_initial_state()
    >>> hk.transform_with_state(f).apply({}, {}, None)[0]
    {'~': {'x': Array(1., dtype=float32)}}
    """
    frame = frame_lib.current_frame("get_initial_state")
    return {m: {k: p.initial for k, p in values.items()} for m, values in frame.state.items()}
