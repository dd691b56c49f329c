"""Padding helpers for convolutions (the ``hk.pad`` namespace).

A padding function (:data:`PadFn`) takes the *effective* kernel size of one spatial dimension
(``(kernel - 1) * rate + 1``) and returns how many elements to add ``(before, after)`` it:

>>> import senryu as hk
>>> [f(3) for f in (hk.pad.valid, hk.pad.same, hk.pad.causal, hk.pad.reverse_causal, hk.pad.full)]
[(0, 0), (1, 1), (2, 0), (0, 2), (2, 2)]

Convolutions accept a ``PadFn`` (or one per spatial dimension) as their ``padding``:

>>> import jax, jax.numpy as jnp
>>> f = hk.transform(lambda x: hk.Conv1D(1, 3, padding=hk.pad.causal)(x))
>>> x = jnp.ones([1, 5, 1])
>>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
(1, 5, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

__all__ = [
    "PadFn",
    "is_padfn",
    "create",
    "create_from_padfn",
    "create_from_tuple",
    "causal",
    "full",
    "reverse_causal",
    "same",
    "valid",
]

PadFn = Callable[[int], tuple[int, int]]
"""A function ``effective_kernel_size -> (pad_before, pad_after)``."""

# One padding specification per spatial dimension: a PadFn or an explicit ``(before, after)`` pair.
_PadSpec = Union[PadFn, Sequence[int]]


def valid(effective_kernel_size: int) -> tuple[int, int]:
    """No padding: the kernel only visits positions fully inside the input.

    >>> import senryu as hk
    >>> hk.pad.valid(5)
    (0, 0)
    """
    del effective_kernel_size
    return (0, 0)


def same(effective_kernel_size: int) -> tuple[int, int]:
    """Pads so that a stride-1 convolution keeps the input size (extra element after).

    >>> import senryu as hk
    >>> hk.pad.same(3), hk.pad.same(4)
    ((1, 1), (1, 2))
    """
    k = effective_kernel_size
    return ((k - 1) // 2, k // 2)


def full(effective_kernel_size: int) -> tuple[int, int]:
    """Pads as much as possible while every output still sees at least one real element.

    >>> import senryu as hk
    >>> hk.pad.full(3)
    (2, 2)
    """
    k = effective_kernel_size
    return (k - 1, k - 1)


def causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pads only before, so that output ``i`` depends on inputs ``<= i`` (no look-ahead).

    >>> import senryu as hk
    >>> hk.pad.causal(3)
    (2, 0)
    """
    k = effective_kernel_size
    return (k - 1, 0)


def reverse_causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pads only after, so that output ``i`` depends on inputs ``>= i``.

    >>> import senryu as hk
    >>> hk.pad.reverse_causal(3)
    (0, 2)
    """
    k = effective_kernel_size
    return (0, k - 1)


def is_padfn(padding: Any) -> bool:
    """Whether ``padding`` is a :data:`PadFn` or a non-empty sequence of them.

    >>> import senryu as hk
    >>> hk.pad.is_padfn(hk.pad.same), hk.pad.is_padfn([hk.pad.same, hk.pad.causal])
    (True, True)
    >>> hk.pad.is_padfn("SAME"), hk.pad.is_padfn((1, 1)), hk.pad.is_padfn([])
    (False, False, False)
    """
    if callable(padding):
        return True
    if isinstance(padding, (str, bytes)) or not isinstance(padding, Sequence):
        return False
    return len(padding) > 0 and all(callable(p) for p in padding)


def _is_pair(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, (str, bytes))
            and len(value) == 2 and all(_is_int(v) for v in value))


def _is_int(value: Any) -> bool:
    try:
        return int(value) == value and not isinstance(value, (bool, str))
    except (TypeError, ValueError):
        return False


def _per_dim(value: Any, n: int, what: str) -> tuple:
    """Broadcasts ``value`` (a scalar, or a sequence of length 1 or ``n``) to ``n`` entries."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) == 1:
            return tuple(value) * n
        if len(value) == n:
            return tuple(value)
        raise TypeError(
            f"{what} must be a scalar or a sequence of length 1 or {n} (one per spatial "
            f"dimension), got {value!r} of length {len(value)}.")
    return (value,) * n


def _pad_pair(value: Any, where: str) -> tuple[int, int]:
    if not _is_pair(value):
        raise TypeError(
            f"{where} must be a pair of integers (pad_before, pad_after), got {value!r}.")
    return (int(value[0]), int(value[1]))


def create_from_tuple(padding: Union[Sequence[int], Sequence[Sequence[int]]],
                      n: int) -> tuple[tuple[int, int], ...]:
    """Expands explicit padding to one ``(before, after)`` pair per spatial dimension.

    ``padding`` is a single pair (used for every dimension), or a sequence of 1 or ``n`` pairs.

    >>> import senryu as hk
    >>> hk.pad.create_from_tuple((1, 2), 2)
    ((1, 2), (1, 2))
    >>> hk.pad.create_from_tuple([(1, 2), (3, 4)], 2)
    ((1, 2), (3, 4))
    """
    if _is_pair(padding):
        pairs = (padding,) * n
    elif isinstance(padding, Sequence) and not isinstance(padding, (str, bytes)) and padding:
        pairs = _per_dim(padding, n, "padding")
    else:
        raise TypeError(
            f"padding must be a pair (pad_before, pad_after) or a sequence of 1 or {n} such "
            f"pairs, got {padding!r}.")
    return tuple(_pad_pair(p, f"padding {padding!r}: each element") for p in pairs)


def create_from_padfn(padding: Union[_PadSpec, Sequence[_PadSpec]],
                      kernel: Union[int, Sequence[int]],
                      rate: Union[int, Sequence[int]],
                      n: int) -> tuple[tuple[int, int], ...]:
    """Computes ``(before, after)`` pairs for ``n`` spatial dimensions from padding functions.

    ``padding`` is a :data:`PadFn` or a ``(before, after)`` pair, or a sequence of 1 or ``n`` of
    them; ``kernel`` and ``rate`` are ints or sequences of 1 or ``n`` ints. Each function gets the
    effective kernel size ``(kernel - 1) * rate + 1`` of its dimension.

    >>> import senryu as hk
    >>> hk.pad.create_from_padfn(hk.pad.same, kernel=3, rate=2, n=2)
    ((2, 2), (2, 2))
    >>> hk.pad.create_from_padfn([hk.pad.same, hk.pad.causal], kernel=(3, 4), rate=(1, 2), n=2)
    ((1, 1), (6, 0))
    """
    if callable(padding) or _is_pair(padding):
        specs = (padding,) * n
    else:
        specs = _per_dim(padding, n, "padding")
    kernels = _per_dim(kernel, n, "kernel")
    rates = _per_dim(rate, n, "rate")
    out = []
    for spec, k, r in zip(specs, kernels, rates):
        if callable(spec):
            effective = (int(k) - 1) * int(r) + 1
            out.append(_pad_pair(tuple(spec(effective)),
                                 f"the padding function {spec!r} returned a value that"))
        else:
            out.append(_pad_pair(spec, "each padding element (a PadFn or a pair)"))
    return tuple(out)


def create(padding: Union[_PadSpec, Sequence[_PadSpec]],
           kernel: Union[int, Sequence[int]],
           rate: Union[int, Sequence[int]],
           n: int) -> tuple[tuple[int, int], ...]:
    """Computes one ``(before, after)`` pair per spatial dimension (see :func:`create_from_padfn`).

    >>> import senryu as hk
    >>> hk.pad.create(hk.pad.causal, kernel=3, rate=1, n=1)
    ((2, 0),)
    >>> hk.pad.create([(1, 0), hk.pad.full], kernel=3, rate=1, n=2)
    ((1, 0), (2, 2))
    """
    return create_from_padfn(padding, kernel, rate, n)
