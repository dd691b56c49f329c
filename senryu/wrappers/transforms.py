"""State-carrying JAX transforms: ``jit``, ``vmap``, ``grad``, ``value_and_grad``, ``remat``,
``eval_shape`` and ``named_call``.

Inside a transform each one runs the function through ``core.PureFunction`` so parameters, state
and random keys flow in and out explicitly; outside a transform each one *is* the JAX function.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Union

import jax

from senryu import core
from senryu.wrappers import originals as jx

_VMAP_AXIS = "__senryu_vmap_axis"


def _shift(argnums: Union[int, Sequence[int], None], by: int = 1):
    if argnums is None:
        return None
    if isinstance(argnums, int):
        return argnums + by if argnums >= 0 else argnums
    return tuple(a + by if a >= 0 else a for a in argnums)


def jit(fun: Callable, *, static_argnums: Union[int, Sequence[int], None] = None,
        static_argnames: Union[str, Sequence[str], None] = None,
        donate_argnums: Union[int, Sequence[int], None] = None, **jit_kwargs: Any) -> Callable:
    """``jax.jit`` that carries parameters, state and random keys inside a transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.jit(hk.Linear(2))(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    >>> f.apply(params, None, jnp.ones([1, 3])).shape
    (1, 2)
    """
    plain = jx.jit(fun, static_argnums=static_argnums, static_argnames=static_argnames,
                    donate_argnums=donate_argnums, **jit_kwargs)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return plain(*args, **kwargs)
        pure = core.PureFunction(fun)
        out, boundary = jx.jit(pure, static_argnums=_shift(static_argnums),
                                static_argnames=static_argnames,
                                **jit_kwargs)(core.capture(pure.frame), *args, **kwargs)
        core.commit(boundary, pure)
        return out

    return wrapped


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Optional[str] = None,
         axis_size: Optional[int] = None, *, split_rng: bool = False,
         spmd_axis_name: Any = None) -> Callable:
    """``jax.vmap`` that carries parameters, state and random keys inside a transform.

    Parameters and state are shared by all mapped elements (not mapped). With
    ``split_rng=False`` every element draws the same random keys; with ``split_rng=True`` each
    element gets keys of its own.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.vmap(hk.Linear(2), split_rng=False)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([5, 3]))
    >>> jax.tree.map(jnp.shape, params)
    {'linear': {'b': (2,), 'w': (3, 2)}}
    """
    plain = jx.vmap(fun, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
                     axis_size=axis_size, spmd_axis_name=spmd_axis_name)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return plain(*args, **kwargs)
        pure = core.PureFunction(fun)
        name = axis_name if axis_name is not None else _VMAP_AXIS
        has_rng = core.maybe_get_rng_sequence_state() is not None
        split_key = core.next_rng_key() if split_rng and has_rng else None
        boundary = core.capture(pure.frame)

        def mapped(boundary, *args, **kwargs):
            if split_key is not None:
                element_key = jax.random.fold_in(split_key, jax.lax.axis_index(name))
                boundary = boundary._replace(rng=(element_key, ()))
            out, boundary = pure(boundary, *args, **kwargs)
            if split_key is not None:
                boundary = boundary._replace(rng=None)
            return out, boundary

        axes = (None, *in_axes) if isinstance(in_axes, (tuple, list)) else (
            (None,) + (in_axes,) * len(args))
        try:
            out, boundary = jx.vmap(mapped, in_axes=axes, out_axes=(out_axes, None),
                                     axis_name=name, axis_size=axis_size,
                                     spmd_axis_name=spmd_axis_name)(boundary, *args, **kwargs)
        except ValueError as error:
            if "out_axes" not in str(error) and "mapped" not in str(error):
                raise
            batched = _batched_entries(mapped, axes, out_axes, name, axis_size, boundary, args,
                                       kwargs)
            raise ValueError(_batched_state_message(batched, split_rng)) from error
        if split_key is not None:
            boundary = boundary._replace(rng=None)
        core.commit(boundary, pure)
        return out

    return wrapped


def _batched_entries(mapped, in_axes, out_axes, axis_name, axis_size, boundary, args,
                     kwargs) -> list[str]:
    """Names of the parameters/state that come out of ``mapped`` batched (for error messages)."""
    found: list[str] = []

    def probe(boundary, *args, **kwargs):
        out, boundary = mapped(boundary, *args, **kwargs)
        for path, leaf in jax.tree_util.tree_flatten_with_path(boundary)[0]:
            # Only for the message: a value that depends on the mapped axis is a batch tracer.
            if type(leaf).__name__ == "BatchTracer" and len(path) >= 3:
                kind = "parameter" if path[0].name == "params" else "state"
                found.append(f"{kind} '{path[1].key}/{path[2].key}'")
        return out, boundary

    try:
        jx.eval_shape(jx.vmap(probe, in_axes=in_axes, out_axes=(out_axes, 0),
                              axis_name=axis_name, axis_size=axis_size), boundary, *args, **kwargs)
    except Exception:  # the diagnosis is best effort; the original error is raised anyway
        pass
    return sorted(set(found))


def _batched_state_message(batched: list[str], split_rng: bool) -> str:
    """Explains a failed hk.vmap whose parameters or state came out batched."""
    which = ", ".join(batched) if batched else "a parameter or state value"
    message = (
        f"hk.vmap: {which} written inside the mapped function depends on the mapped axis, but "
        "parameters and state are shared by all mapped elements. Reduce it over the axis first "
        "(e.g. `jax.lax.pmean(x, axis_name)` with `axis_name=` given to hk.vmap), or return "
        "per-element values as outputs instead of storing them as state.")
    if split_rng and core.running_init():
        message += (" With split_rng=True, parameters created during init get a different key "
                    "per element and so differ across the axis: use "
                    "`split_rng=(not hk.running_init())`.")
    return message


def value_and_grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """``jax.value_and_grad`` that carries parameters, state and random keys inside a transform.

    Gradients are taken with respect to the arguments, never the parameters (take gradients of
    ``apply`` outside the transform for those).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     return hk.value_and_grad(lambda x: hk.Linear(1, w_init=jnp.ones)(x).sum())(x)
    >>> f = hk.transform(f)
    >>> value, grad = f.apply(f.init(jax.random.PRNGKey(0), jnp.ones([1, 2])), None, jnp.ones([1, 2]))
    >>> grad
    Array([[1., 1.]], dtype=float32)
    """
    plain = jx.value_and_grad(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic,
                              allow_int=allow_int)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return plain(*args, **kwargs)
        pure = core.PureFunction(fun)

        def differentiable(boundary, *user_args):
            out, boundary = pure(boundary, *user_args, **kwargs)
            if has_aux:
                value, aux = out
                return value, (aux, boundary)
            return out, (None, boundary)

        (value, (aux, boundary)), grads = jx.value_and_grad(
            differentiable, argnums=_shift(argnums), has_aux=True, holomorphic=holomorphic,
            allow_int=allow_int)(core.capture(pure.frame), *args)
        core.commit(boundary, pure)
        return ((value, aux), grads) if has_aux else (value, grads)

    return wrapped


def grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """``jax.grad`` that carries parameters, state and random keys inside a transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.grad(lambda x: hk.Linear(1, w_init=jnp.ones)(x).sum())(x))
    >>> f.apply(f.init(jax.random.PRNGKey(0), jnp.ones([1, 2])), None, jnp.ones([1, 2]))
    Array([[1., 1.]], dtype=float32)
    """
    value_and_grad_fun = value_and_grad(fun, argnums=argnums, has_aux=has_aux,
                                        holomorphic=holomorphic, allow_int=allow_int)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return jx.grad(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic,
                           allow_int=allow_int)(*args, **kwargs)
        if has_aux:
            (_, aux), grads = value_and_grad_fun(*args, **kwargs)
            return grads, aux
        return value_and_grad_fun(*args, **kwargs)[1]

    return wrapped


def remat(fun: Callable, *, prevent_cse: bool = True, policy: Optional[Callable] = None,
          static_argnums: Union[int, Sequence[int]] = ()) -> Callable:
    """``jax.checkpoint`` (rematerialisation) that carries parameters, state and random keys.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.remat(hk.Linear(2))(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    >>> sorted(params)
    ['linear']
    """
    plain = jx.checkpoint(fun, prevent_cse=prevent_cse, policy=policy,
                           static_argnums=static_argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return plain(*args, **kwargs)
        pure = core.PureFunction(fun)
        out, boundary = jx.checkpoint(pure, prevent_cse=prevent_cse, policy=policy,
                                       static_argnums=_shift(static_argnums))(
                                           core.capture(pure.frame), *args, **kwargs)
        core.commit(boundary, pure)
        return out

    return wrapped


checkpoint = remat


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """``jax.eval_shape`` inside or outside a transform; inside, all state changes are discarded.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     net = hk.nets.MLP([300, 100])
    ...     return hk.eval_shape(net, x), net(x)
    >>> params = hk.transform(f).init(jax.random.PRNGKey(777), jnp.ones((100, 100)))
    >>> shape, _ = hk.transform(f).apply(params, None, jnp.ones((100, 100)))
    >>> shape
    ShapeDtypeStruct(shape=(100, 100), dtype=float32)
    """
    if not core.inside_transform():
        return jx.eval_shape(fun, *args, **kwargs)
    pure = core.PureFunction(fun)
    out, _ = jx.eval_shape(pure, core.capture(pure.frame), *args, **kwargs)
    return out


def named_call(fun: Callable, *, name: Optional[str] = None) -> Callable:
    """``jax.named_call``: names the computation of ``fun`` in profiles and lowered programs.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.experimental.named_call(hk.Linear(1), name="dense")(x))
    >>> sorted(f.init(jax.random.PRNGKey(0), jnp.ones([1, 1])))
    ['linear']
    """
    plain = jx.named_call(fun, name=name)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not core.inside_transform():
            return plain(*args, **kwargs)
        pure = core.PureFunction(fun)
        out, boundary = jx.named_call(pure, name=name or getattr(fun, "__name__", None))(
            core.capture(pure.frame), *args, **kwargs)
        core.commit(boundary, pure)
        return out

    return wrapped
