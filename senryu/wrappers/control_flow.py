"""State-carrying control flow: ``cond``, ``switch``, ``scan``, ``fori_loop``, ``while_loop``, ``map``.

Inside a transform, parameters, state and the random-key sequence are threaded through the loop
carry (or the branch operands). During ``init``, modules first used inside a body or branch get
their parameters and state created once, before the loop runs (see ``discovery``): every branch of
a ``cond``/``switch`` is created, and a loop's modules are shared by all iterations, as if applied
in a Python loop. Outside a transform each function is the ``jax.lax`` one.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence


import jax
import jax.numpy as jnp

from senryu import core
from senryu.wrappers import originals as jx
from senryu.wrappers import discovery

_NO_OPERAND = object()


def _concrete(value: Any) -> Optional[Any]:
    """The Python value of ``value`` if it is known now (not traced), else None."""
    try:
        return value.item() if hasattr(value, "item") else value
    except jax.errors.ConcretizationTypeError:
        return None


def _chained(fns: Sequence[Callable], api: str) -> list[core.PureFunction]:
    """Pure versions of functions traced one after another: each starts from the names the
    previous one ended with, so modules built in two branches get ``linear`` and ``linear_1``."""
    blocked = discovery.LOOP_CREATION.format(api=api)
    pures: list[core.PureFunction] = []
    for fn in fns:
        if pures:
            before = pures[-1]
            naming = (lambda b=before: b.naming_out if b.naming_out is not None else
                      (b.naming_in() if callable(b.naming_in) else b.naming_in))
            pures.append(core.PureFunction(fn, naming_in=naming, creation_blocked=blocked))
        else:
            pures.append(core.PureFunction(fn, creation_blocked=blocked))
    return pures


def _branches(pred_or_index, fns: Sequence[Callable], operands: tuple, api: str, jax_fn):
    discovery.create_first([(fn, operands) for fn in fns])
    pures = _chained(fns, api)
    branches = [lambda b, ops, p=p: p(b, *ops) for p in pures]
    boundary = core.capture(pures[0].frame)
    if jax_fn is jx.cond:
        out, boundary = jx.cond(pred_or_index, branches[0], branches[1], boundary, operands)
    else:
        out, boundary = jx.switch(pred_or_index, branches, boundary, operands)
    core.commit(boundary, pures[-1])
    return out


def cond(pred, true_fun: Callable, false_fun: Callable, *operands, operand=_NO_OPERAND) -> Any:
    """``jax.lax.cond`` that carries parameters, state and random keys inside a transform.

    Also accepts the older form ``cond(pred, true_operand, true_fun, false_operand, false_fun)``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     return hk.cond(x.sum() > 0, hk.Linear(1, name="pos"), hk.Linear(1, name="neg"), x)
    >>> sorted(hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 2])))
    ['neg', 'pos']
    """
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("hk.cond: pass either `operand=` or positional operands, not both.")
        operands = (operand,)
    if (not callable(true_fun) and len(operands) == 2 and callable(false_fun)
            and callable(operands[1])):
        # Old calling convention: cond(pred, true_operand, true_fun, false_operand, false_fun).
        true_operand, true_callable, false_operand, false_callable = (
            true_fun, false_fun, operands[0], operands[1])
        operands = (true_operand, false_operand)
        true_fun = lambda t, f: true_callable(t)  # noqa: E731
        false_fun = lambda t, f: false_callable(f)  # noqa: E731
    if not core.inside_transform():
        return jx.cond(pred, true_fun, false_fun, *operands)
    return _branches(pred, [true_fun, false_fun], operands, "cond", jx.cond)


def switch(index, branches: Sequence[Callable], *operands) -> Any:
    """``jax.lax.switch`` that carries parameters, state and random keys inside a transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(i, x):
    ...     return hk.switch(i, [hk.Linear(1), hk.Linear(1), hk.Linear(1)], x)
    >>> sorted(hk.transform(f).init(jax.random.PRNGKey(0), 0, jnp.ones([1, 2])))
    ['linear', 'linear_1', 'linear_2']
    """
    if not core.inside_transform():
        return jx.switch(index, branches, *operands)
    branches = list(branches)
    if not branches:
        raise ValueError("hk.switch needs at least one branch.")
    return _branches(index, branches, operands, "switch", jx.switch)


def scan(f: Callable, init: Any, xs: Any = None, length: Optional[int] = None,
         reverse: bool = False, unroll: int = 1) -> tuple[Any, Any]:
    """``jax.lax.scan`` that carries parameters, state and random keys inside a transform.

    Modules used in the body share one set of parameters across iterations; during ``init`` they
    are created before the loop, so no ``hk.running_init()`` special case is needed.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(xs):
    ...     def body(carry, x):
    ...         return carry + hk.Linear(1)(x), carry
    ...     return hk.scan(body, jnp.zeros([1, 1]), xs)[0]
    >>> f = hk.transform(f)
    >>> xs = jnp.ones([5, 1, 2])
    >>> jax.tree.map(jnp.shape, f.init(jax.random.PRNGKey(0), xs))
    {'linear': {'b': (1,), 'w': (2, 1)}}
    """
    if not core.inside_transform():
        return jx.scan(f, init, xs, length=length, reverse=reverse, unroll=unroll)
    if core.running_init():
        steps = length if length is not None else len(jax.tree.leaves(xs)[0])
        if steps:
            return _scan_first_step_unrolled(f, init, xs, steps, reverse, unroll)
        discovery.create_first([(f, (init, discovery.first_slice(xs, 0)))])
    return _pure_scan(f, init, xs, length, reverse, unroll)


def _scan_first_step_unrolled(f, init, xs, steps, reverse, unroll):
    """During init: the first step runs for real (creating parameters and state exactly as a
    Python loop would, with the same keys), then the other steps run in a scan."""
    first, rest = (steps - 1, slice(0, steps - 1)) if reverse else (0, slice(1, steps))
    pure = _scan_body(f)  # made first: every step starts from the names the first one had
    x_first = jax.tree.map(lambda x: x[first], xs)
    carry, y_first = f(init, x_first)
    carry, ys = _pure_scan(f, carry, jax.tree.map(lambda x: x[rest], xs), steps - 1, reverse,
                           unroll, pure)

    def join(y0, y_rest):
        y0 = jnp.expand_dims(y0, 0)
        return jnp.concatenate([y_rest, y0] if reverse else [y0, y_rest])

    return carry, jax.tree.map(join, y_first, ys)


def _scan_body(f) -> core.PureFunction:
    return core.PureFunction(f, creation_blocked=discovery.LOOP_CREATION.format(api="scan"))


def _pure_scan(f, init, xs, length, reverse, unroll, pure=None):
    pure = pure or _scan_body(f)

    def body(carry, x):
        carry, boundary = carry
        (carry, y), boundary = pure(boundary, carry, x)
        return (carry, boundary), y

    (carry, boundary), ys = jx.scan(body, (init, core.capture(pure.frame)), xs,
                                         length=length, reverse=reverse, unroll=unroll)
    core.commit(boundary, pure)
    return carry, ys


def map(f: Callable, xs: Any, *, batch_size: Optional[int] = None) -> Any:  # noqa: A001
    """``jax.lax.map`` that carries parameters, state and random keys inside a transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda xs: hk.map(hk.Linear(2), xs))
    >>> f.apply(f.init(jax.random.PRNGKey(0), jnp.ones([4, 1, 3])), None, jnp.ones([4, 1, 3])).shape
    (4, 1, 2)
    """
    if not core.inside_transform():
        return jx.map(f, xs, batch_size=batch_size)
    if batch_size is not None:
        raise NotImplementedError(
            "hk.map(batch_size=...) is not supported inside a transform yet; use hk.vmap inside "
            "hk.scan over chunks of the inputs.")
    return scan(lambda _, x: ((), f(x)), (), xs)[1]


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any, *,
              unroll: Optional[int] = None) -> Any:
    """``jax.lax.fori_loop`` that carries parameters, state and random keys inside a transform.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.fori_loop(0, 3, lambda i, x: hk.Linear(2)(x), x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    >>> jax.tree.map(jnp.shape, params)
    {'linear': {'b': (2,), 'w': (2, 2)}}
    """
    if not core.inside_transform():
        return jx.fori_loop(lower, upper, body_fun, init_val, unroll=unroll)
    pure = core.PureFunction(body_fun,
                             creation_blocked=discovery.LOOP_CREATION.format(api="fori_loop"))
    if core.running_init():
        bounds = _concrete(lower), _concrete(upper)
        if None not in bounds and bounds[0] < bounds[1]:
            # As in a Python loop: the first step runs for real, creating what the body uses.
            init_val = body_fun(lower, init_val)
            lower = lower + 1
        else:
            discovery.create_first([(body_fun, (lower, init_val))])

    def body(i, carry):
        value, boundary = carry
        return pure(boundary, i, value)

    value, boundary = jx.fori_loop(lower, upper, body, (init_val, core.capture(pure.frame)),
                                   unroll=unroll)
    core.commit(boundary, pure)
    return value


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``jax.lax.while_loop`` that carries parameters, state and random keys inside a transform.

    The condition may read parameters and state; changes it makes to state are discarded.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     return hk.while_loop(lambda x: x.sum() < 10., lambda x: x + hk.Bias(b_init=jnp.ones)(x), x)
    >>> f = hk.transform(f)
    >>> f.apply(f.init(jax.random.PRNGKey(0), jnp.zeros([2])), None, jnp.zeros([2]))
    Array([7., 7.], dtype=float32)
    """
    if not core.inside_transform():
        return jx.while_loop(cond_fun, body_fun, init_val)
    pure_cond, pure_body = _chained([cond_fun, body_fun], "while_loop")
    if core.running_init():
        go_on = _concrete(cond_fun(init_val))
        if go_on is not None and not go_on:
            # The body never runs, but its parameters and state are still created, so that
            # `apply` finds them whatever the condition says then.
            discovery.create_first([(body_fun, (init_val,))])
            return init_val
        if go_on:
            # As in a Python loop: the first step runs for real, creating what the body uses.
            init_val = body_fun(init_val)
        else:  # a traced condition (init under jit): create first, then loop
            discovery.create_first([(cond_fun, (init_val,)), (body_fun, (init_val,))])

    def cond(carry):
        value, boundary = carry
        return pure_cond(boundary, value)[0]

    def body(carry):
        value, boundary = carry
        return pure_body(boundary, value)

    value, boundary = jx.while_loop(cond, body, (init_val, core.capture(pure_body.frame)))
    core.commit(boundary, pure_body)
    return value
