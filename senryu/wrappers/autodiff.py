"""State-carrying versions of JAX's other differentiation functions.

``jacfwd``, ``jacrev``, ``hessian``, ``jvp``, ``vjp`` and ``linearize``: not in Haiku, but needed so
that plain ``jax.*`` code works inside a transform under ``override_jax_transforms``. Derivatives
are taken with respect to the arguments; parameters, state and keys ride along as auxiliary data.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Union

from senryu import core
from senryu.wrappers import originals as jx
from senryu.wrappers.transforms import _shift


def _with_boundary_aux(pure: core.PureFunction, has_aux: bool, kwargs: dict,
                       boundary: Optional[core.Boundary] = None) -> Callable:
    """``pure`` as ``f(*args) -> (out, (aux, boundary))`` for JAX's ``has_aux=True`` APIs.

    The boundary is closed over if given, else taken as the first argument.
    """
    def f(*args):
        if boundary is None:
            state_in, *args = args
        else:
            state_in = boundary
        out, state_out = pure(state_in, *args, **kwargs)
        if has_aux:
            out, aux = out
            return out, (aux, state_out)
        return out, (None, state_out)
    return f


def _jacobian(jax_fn: Callable) -> Callable:
    def transform(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
                  holomorphic: bool = False, **options: Any) -> Callable:
        plain = jax_fn(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic, **options)

        @functools.wraps(fun)
        def wrapped(*args, **kwargs):
            if not core.inside_transform():
                return plain(*args, **kwargs)
            pure = core.PureFunction(fun)
            f = _with_boundary_aux(pure, has_aux, kwargs)
            result, (aux, boundary) = jax_fn(f, argnums=_shift(argnums), has_aux=True,
                                             holomorphic=holomorphic, **options)(
                                                 core.capture(pure.frame), *args)
            core.commit(boundary, pure)
            return (result, aux) if has_aux else result

        return wrapped
    transform.__name__ = jax_fn.__name__
    transform.__doc__ = f"``jax.{jax_fn.__name__}`` that carries parameters, state and random keys."
    return transform


jacfwd = _jacobian(jx.jacfwd)
jacrev = _jacobian(jx.jacrev)
hessian = _jacobian(jx.hessian)


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """``jax.jvp`` that carries parameters, state and random keys inside a transform."""
    if not core.inside_transform():
        return jx.jvp(fun, primals, tangents, has_aux=has_aux)
    pure = core.PureFunction(fun)
    f = _with_boundary_aux(pure, has_aux, {}, core.capture(pure.frame))
    out, tangent_out, (aux, boundary) = jx.jvp(f, primals, tangents, has_aux=True)
    core.commit(boundary, pure)
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """``jax.vjp`` that carries parameters, state and random keys inside a transform."""
    if not core.inside_transform():
        return jx.vjp(fun, *primals, has_aux=has_aux)
    pure = core.PureFunction(fun)
    f = _with_boundary_aux(pure, has_aux, {}, core.capture(pure.frame))
    out, vjp_fn, (aux, boundary) = jx.vjp(f, *primals, has_aux=True)
    core.commit(boundary, pure)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """``jax.linearize`` that carries parameters, state and random keys inside a transform."""
    if not core.inside_transform():
        return jx.linearize(fun, *primals, has_aux=has_aux)
    pure = core.PureFunction(fun)
    f = _with_boundary_aux(pure, has_aux, {}, core.capture(pure.frame))
    out, jvp_fn, (aux, boundary) = jx.linearize(f, *primals, has_aux=True)
    core.commit(boundary, pure)
    return (out, jvp_fn, aux) if has_aux else (out, jvp_fn)
