"""``Module``: the base class of every layer, its naming, method scoping and interception."""

from __future__ import annotations

import abc
import contextlib
import inspect
import pprint
import functools
import threading
from typing import Any, Callable, NamedTuple, Optional, Protocol, Sequence, TypeVar, runtime_checkable

import jax

from senryu import config as config_lib
from senryu.core import frame as frame_lib
from senryu.core import naming

T = TypeVar("T")

_TRANSPARENT = "_senryu_transparent"
_NAME_LIKE = "_senryu_name_like"
_WRAPPED = "_senryu_wrapped"


class MethodContext(NamedTuple):
    """What an interceptor (see ``intercept_methods``) is told about the method being called.

    Attributes:
      module: the module whose method runs.
      method_name: the method's name, e.g. ``"__call__"``.
      orig_method: the method itself; calling it skips all remaining interceptors.
      orig_class: the class that defined the method.
    """
    module: "Module"
    method_name: str
    orig_method: Callable[..., Any]
    orig_class: type


class _Interceptors(threading.local):
    def __init__(self) -> None:
        self.stack: list = []


_interceptors = _Interceptors()
# Interceptors that run around every method call in every thread (e.g. mixed precision), outside
# those of `intercept_methods`.
_permanent: list = []


def install_interceptor(interceptor: Callable[..., Any]) -> None:
    """Runs ``interceptor`` around every module method call from now on, in every thread.

    Used by ``hk.mixed_precision``; installing the same interceptor twice has no effect.
    """
    if interceptor not in _permanent:
        _permanent.append(interceptor)


@contextlib.contextmanager
def intercept_methods(interceptor: Callable[..., Any]):
    """Runs ``interceptor(next_fun, args, kwargs, context)`` around every module method call.

    Interceptors registered first run first (outermost).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def double_inputs(next_fun, args, kwargs, context):
    ...     return next_fun(*[a * 2 for a in args], **kwargs)
    >>> def f(x):
    ...     with hk.intercept_methods(double_inputs):
    ...         return hk.Bias(b_init=jnp.zeros)(x)
    >>> hk.transform(f).apply(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1])), None, jnp.ones([1]))
    Array([2.], dtype=float32)
    """
    _interceptors.stack.append(interceptor)
    try:
        yield
    finally:
        _interceptors.stack.pop()


def _module_outside_transform(what: str) -> ValueError:
    return ValueError(
        f"All `hk.Module`s must be initialized inside an `hk.transform`: {what} was used with no "
        "transform running. Create and call modules inside the function you pass to "
        "`hk.transform` (or `hk.transform_with_state`), then call its `init`/`apply`.")


# Read on every method call, so kept in a list instead of looked up in the config object.
_profiler_name_scopes = [False]


def _on_config_change(name: str, value: Any) -> None:
    if name == "profiler_name_scopes":
        _profiler_name_scopes[0] = bool(value)


config_lib.add_listener(_on_config_change)


def _run_scoped(frame: frame_lib.Frame, module: "Module", scope_name: str, method, args, kwargs):
    """Runs a method in the module's scope. Each call names its children afresh, so calling a
    module twice reuses the submodules (and parameters) its first call created."""
    stack = frame.module_stack
    stack.append(frame_lib.ModuleCall(module, scope_name))
    prefix = naming.scope_prefix(frame)
    previous = frame.naming.pop(prefix, None)
    try:
        return method(module, *args, **kwargs)
    finally:
        stack.pop()
        # `frame.naming` may have been replaced by a wrapper meanwhile: read it again.
        if previous is None:
            frame.naming.pop(prefix, None)
        else:
            frame.naming[prefix] = previous


def _run_intercepted(module, method_name, scope_name, method, args, kwargs):
    interceptors = _permanent + _interceptors.stack

    def original(*a, **k):
        return _run_scoped(frame_lib.current_frame_or_none(), module, scope_name, method, a, k)

    context = MethodContext(module, method_name, original, type(module))

    def call(index, a, k):
        if index == len(interceptors):
            return original(*a, **k)
        return interceptors[index](lambda *a2, **k2: call(index + 1, a2, k2), a, k, context)

    return call(0, args, kwargs)


def _wrap_method(method_name: str, method: Callable) -> Callable:
    scope_name = getattr(method, _NAME_LIKE, method_name)

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        frame = frame_lib.current_frame_or_none()
        if frame is None:
            raise _module_outside_transform(f"{type(self).__name__}.{method_name}")
        if _interceptors.stack or _permanent:
            return _run_intercepted(self, method_name, scope_name, method, args, kwargs)
        if _profiler_name_scopes[0]:
            with jax.named_scope(self.module_name):
                return _run_scoped(frame, self, scope_name, method, args, kwargs)
        return _run_scoped(frame, self, scope_name, method, args, kwargs)

    setattr(wrapped, _WRAPPED, True)
    return wrapped


class ModuleMetaclass(abc.ABCMeta):
    """Builds modules so that children created in ``__init__`` are named ``parent/~/child``."""

    @property
    def __signature__(cls) -> inspect.Signature:
        """The constructor's signature (what ``inspect.signature(hk.Linear)`` shows)."""
        signature = inspect.signature(cls.__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])

    def __call__(cls, *args, **kwargs):
        module = cls.__new__(cls)  # abstract classes raise TypeError here, as usual
        frame = frame_lib.current_frame_or_none()
        if frame is None:
            raise _module_outside_transform(f"{cls.__name__}(...)")
        depth = len(frame.module_stack)
        try:
            module.__init__(*args, **kwargs)
        finally:
            # Module.__init__ pushed (module, "__init__") so children get the `/~/` prefix.
            del frame.module_stack[depth:]
        if "module_name" not in module.__dict__:
            raise ValueError(
                f"{cls.__name__}.__init__ did not call `super().__init__(name=name)`. Every module "
                "must call it before creating parameters or other modules.")
        module.__dict__["_senryu_init_args"] = (args, kwargs)
        return module


class Module(metaclass=ModuleMetaclass):
    """Base class of all modules: a named container of parameters, state and other modules.

    Public methods (and ``__call__``) run inside the module's name scope: parameters they create are
    stored under ``module_name``, and modules they create are named after it.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> class AddModule(hk.Module):
    ...     def __call__(self, x):
    ...         w = hk.get_parameter("w", [], init=jnp.ones)
    ...         return x + w
    >>> f = hk.transform(lambda x: AddModule()(x))
    >>> params = f.init(None, 1.)
    >>> params
    {'add_module': {'w': Array(1., dtype=float32)}}
    >>> f.apply(params, None, 1.)
    Array(2., dtype=float32)
    """

    module_name: str
    name: str

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for attr_name, value in list(cls.__dict__.items()):
            if isinstance(value, property):
                if value.fget is not None and not getattr(value.fget, _TRANSPARENT, False) and (
                        not getattr(value.fget, _WRAPPED, False)):
                    setattr(cls, attr_name, property(_wrap_method(attr_name, value.fget),
                                                     value.fset, value.fdel, value.__doc__))
                continue
            if not callable(value) or isinstance(value, (type, staticmethod, classmethod)):
                continue
            if attr_name != "__call__" and attr_name.startswith("__") and attr_name.endswith("__"):
                continue
            if getattr(value, _TRANSPARENT, False) or getattr(value, _WRAPPED, False):
                continue
            setattr(cls, attr_name, _wrap_method(attr_name, value))

    def __init__(self, name: Optional[str] = None):
        """Names the module; subclasses call it before creating parameters or child modules.

        Args:
          name: a Python identifier; defaults to the class name in snake_case.
        """
        frame = frame_lib.current_frame_or_none()
        if frame is None:
            raise _module_outside_transform(type(self).__name__)
        if name is None:
            field = self.__dict__.get("name")  # dataclass modules declare `name` as a field
            name = field if isinstance(field, str) else naming.snake_case(type(self).__name__)
        if not isinstance(name, naming.ForcedName):
            naming.validate_name(name)
        module_name = naming.unique_name(frame, name)
        self.module_name = module_name
        self.name = module_name.rsplit("/", 1)[-1]
        frame.module_stack.append(frame_lib.ModuleCall(self, "__init__"))

    def __post_init__(self, name: Optional[str] = None):
        """Initialises a dataclass module (its ``name`` field, if any, is used as the name)."""
        Module.__init__(self, name=self.__dict__.get("name", name))

    def __repr__(self) -> str:
        init_args = self.__dict__.get("_senryu_init_args")
        if init_args is None or not config_lib.get_config().module_auto_repr:
            return object.__repr__(self)
        return _auto_repr(type(self), *init_args)

    def params_dict(self) -> dict[str, Any]:
        """This module's and its submodules' parameters, keyed ``"module_name/param_name"``."""
        frame = frame_lib.current_frame("Module.params_dict")
        return _collect(frame.params, self.module_name, lambda v: v)

    def state_dict(self) -> dict[str, Any]:
        """This module's and its submodules' current state, keyed ``"module_name/state_name"``."""
        frame = frame_lib.current_frame("Module.state_dict")
        return _collect(frame.state, self.module_name, lambda pair: pair.current)


def _auto_repr(cls: type, args: tuple, kwargs: dict) -> str:
    """``Linear(output_size=2, name='foo')``: the constructor arguments that differ from defaults.

    Reprs longer than 80 characters put one argument per line, pretty-printed.
    """
    try:
        signature = inspect.signature(cls.__init__)
        bound = signature.bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return object.__repr__(cls)
    items: list[tuple[Optional[str], Any]] = []
    for name, value in list(bound.arguments.items())[1:]:
        parameter = signature.parameters[name]
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            items.extend((None, v) for v in value)
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            items.extend(value.items())
            continue
        try:
            if parameter.default is not inspect.Parameter.empty and bool(value == parameter.default):
                continue
        except Exception:  # arrays and other values without a plain truth value
            pass
        items.append((name, value))
    one_line = ", ".join(repr(v) if k is None else f"{k}={v!r}" for k, v in items)
    if len(cls.__name__) + len(one_line) + 2 <= 80:
        return f"{cls.__name__}({one_line})"
    lines = [f"{cls.__name__}("]
    for name, value in items:
        prefix = "    " if name is None else f"    {name}="
        text = pprint.pformat(value).replace("\n", "\n" + " " * len(prefix))
        lines.append(f"{prefix}{text},")
    lines.append(")")
    return "\n".join(lines)


def _collect(tree: dict, module_name: str, value_of) -> dict[str, Any]:
    prefix = module_name + "/"
    return {
        f"{bundle}/{key}": value_of(value)
        for bundle, values in tree.items()
        if bundle == module_name or bundle.startswith(prefix)
        for key, value in values.items()
    }


def transparent(method: T) -> T:
    """Marks a module method so it opens no name scope: what it creates belongs to the caller.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> class Outer(hk.Module):
    ...     @hk.transparent
    ...     def helper(self, x):
    ...         return hk.Linear(1)(x)
    ...     def __call__(self, x):
    ...         return self.helper(x)
    >>> f = hk.transform(lambda x: Outer()(x))
    >>> list(f.init(jax.random.PRNGKey(0), jnp.ones([1, 1])))
    ['outer/linear']
    """
    setattr(method, _TRANSPARENT, True)
    return method


def name_like(method_name: str) -> Callable[[T], T]:
    """Names what a method creates as if it were created by ``method_name`` (for checkpoints).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> class Autoencoder(hk.Module):
    ...     @hk.name_like("__call__")
    ...     def encode(self, x):
    ...         return hk.Linear(1, name="enc")(x)
    >>> f = hk.transform(lambda x: Autoencoder().encode(x))
    >>> list(f.init(jax.random.PRNGKey(0), jnp.ones([1, 1])))
    ['autoencoder/enc']
    """
    def decorator(method: T) -> T:
        setattr(method, _NAME_LIKE, method_name)
        return method
    return decorator


def force_name(name: str) -> str:
    """Returns ``name`` marked so a module given it uses exactly that name, ignoring its context.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     a = hk.Linear(1)
    ...     b = hk.Linear(1, name=hk.force_name(a.module_name))  # shares a's parameters
    ...     return b(a(x))
    >>> list(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 1])))
    ['linear']
    """
    return naming.ForcedName(name)


def current_name() -> str:
    """The full name of the active module or name scope; ``"~"`` at the top level.

    >>> import senryu as hk
    >>> hk.transform(lambda: hk.current_name()).apply({}, None)
    '~'
    """
    return naming.current_bundle_name(frame_lib.current_frame("current_name"))


class _NameScope:
    """A pseudo-module that only carries a name (see ``name_scope``)."""
    __slots__ = ("module_name",)

    def __init__(self, module_name: str):
        self.module_name = module_name


@contextlib.contextmanager
def name_scope(name: str):
    """Opens a name scope: parameters and modules created inside are named ``name/...``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f():
    ...     with hk.name_scope("encoder"):
    ...         return hk.get_parameter("w", [], init=jnp.zeros)
    >>> list(hk.transform(f).init(None))
    ['encoder']
    """
    frame = frame_lib.current_frame("name_scope")
    if not isinstance(name, str) or not name:
        raise ValueError(f"`hk.name_scope` expects a non-empty string name, got {name!r}.")
    parts = name.split("/")
    for part in parts:
        naming.validate_name(part, "name scope")
    stack = frame.module_stack
    depth = len(stack)
    try:
        for part in parts:
            stack.append(frame_lib.ModuleCall(_NameScope(naming.unique_name(frame, part)),
                                              "__call__"))
        yield
    finally:
        del stack[depth:]


class CallableModule(Module):
    """A module whose ``__call__`` runs a function (see ``to_module``)."""

    def __call__(self, *args, **kwargs):
        return self._f(*args, **kwargs)


def to_module(f: Callable[..., Any]) -> type:
    """Turns a function into a module class whose instances run ``f`` in their own scope.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def bias_fn(x):
    ...     return x + hk.get_parameter("b", [], init=jnp.ones)
    >>> Bias = hk.to_module(bias_fn)
    >>> f = hk.transform(lambda x: Bias(name="my_bias")(x))
    >>> list(f.init(None, 1.))
    ['my_bias']
    """
    def __init__(self, name: Optional[str] = None):
        Module.__init__(self, name=name if name is not None else f.__name__)
        self._f = f

    return type(f.__name__, (CallableModule,), {"__init__": __init__, "__doc__": f.__doc__})


class Deferred:
    """Builds a module on first use, so its arguments may depend on other modules' properties.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     encoder = hk.Linear(4)
    ...     decoder = hk.Deferred(lambda: hk.Linear(encoder.input_size))
    ...     return decoder(encoder(x))
    >>> hk.transform(f).apply(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 3])), None,
    ...                       jnp.ones([1, 3])).shape
    (1, 3)
    """

    def __init__(self, factory: Callable[[], T], call_methods: Sequence[str] = ("__call__",)):
        self._factory = factory
        self._target = None
        for method in call_methods:
            if method == "__call__":
                continue
            setattr(self, method, self._forward(method))

    @property
    def target(self):
        """The module, built on first access."""
        if self._target is None:
            self._target = self._factory()
            self._factory = None
        return self._target

    def _forward(self, method: str):
        def call(*args, **kwargs):
            return getattr(self.target, method)(*args, **kwargs)
        return call

    def __call__(self, *args, **kwargs):
        return self.target(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.target, name)


@runtime_checkable
class ModuleProtocol(Protocol):
    """Anything with a ``module_name`` and ``name``, like a ``Module``."""
    module_name: str
    name: str


@runtime_checkable
class SupportsCall(ModuleProtocol, Protocol):
    """A ``ModuleProtocol`` that can be called."""

    def __call__(self, *args, **kwargs) -> Any:
        ...
