"""``BatchApply`` (merge leading dimensions around a call) and ``expand_apply``."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BatchApply", "expand_apply"]


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "ndim"))


class BatchApply:
    """Merges the first ``num_dims`` dimensions of the inputs into one around a call to ``f``.

    Every array argument (in ``args``/``kwargs`` pytrees) with at least ``num_dims`` dimensions
    is reshaped from ``[d0, ..., d{num_dims-1}, *rest]`` to ``[d0 * ... * d{num_dims-1}, *rest]``;
    other leaves are passed unchanged. The leading dimension of every output array is then split
    back into the leading dimensions of the first such input. Handy to apply a module to a
    ``[Time, Batch, ...]`` array.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.BatchApply(hk.Linear(4))(x))
    >>> x = jnp.ones([5, 2, 3])  # [T, B, F]
    >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
    (5, 2, 4)

    Args:
      f: the callable to apply to the merged arrays.
      num_dims: how many leading dimensions to merge (>= 1).
    """

    def __init__(self, f: Callable[..., Any], num_dims: int = 2):
        if not isinstance(num_dims, (int, np.integer)) or num_dims < 1:
            raise ValueError(f"BatchApply: num_dims must be an int >= 1, got {num_dims!r}.")
        self._f = f
        self.num_dims = int(num_dims)

    def __call__(self, *args, **kwargs):
        """Calls ``f`` on the merged inputs and splits its outputs."""
        n = self.num_dims
        leaves = [x for x in jax.tree_util.tree_leaves((args, kwargs))
                  if _is_array(x) and x.ndim >= n]
        if not leaves:
            raise ValueError(
                f"BatchApply requires at least one input array with ndim >= num_dims={n}; got "
                "none (scalars and smaller arrays are passed to f unchanged).")
        leading = tuple(leaves[0].shape[:n])
        merged = int(np.prod(leading, dtype=np.int64))

        def merge(x):
            # Like dm-haiku, every large-enough array is merged by its own leading dimensions.
            if _is_array(x) and x.ndim >= n:
                return jnp.reshape(x, (-1,) + tuple(x.shape[n:]))
            return x

        out = self._f(*jax.tree_util.tree_map(merge, args),
                      **jax.tree_util.tree_map(merge, kwargs))

        def split(y):
            if not _is_array(y) or y.ndim < 1 or y.shape[0] != merged:
                raise ValueError(
                    f"BatchApply: every output of f must be an array whose first dimension is the "
                    f"merged batch size {merged} (= prod{leading}), but f returned "
                    f"{getattr(y, 'shape', type(y).__name__)}.")
            return jnp.reshape(y, leading + tuple(y.shape[1:]))

        return jax.tree_util.tree_map(split, out)


def expand_apply(f: Callable[..., Any], axis: int = 0) -> Callable[..., Any]:
    """Wraps ``f`` to add a size-1 axis at ``axis`` to its inputs and remove it from its outputs.

    Useful to apply a function written for ``[Time, Batch, ...]`` arrays to a single step.

    >>> import jax.numpy as jnp, senryu as hk
    >>> def f(x):  # expects [T, B]
    ...     return x.sum(axis=0, keepdims=True) * 2
    >>> hk.expand_apply(f)(jnp.ones([3])).shape
    (3,)

    Args:
      f: the function to wrap; its inputs and outputs are pytrees of arrays.
      axis: where the size-1 axis is inserted (and squeezed); default 0.
    """
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"expand_apply: axis must be an int, got {axis!r}.")

    def wrapper(*args, **kwargs):
        expand = lambda t: jnp.expand_dims(t, axis)  # noqa: E731
        args, kwargs = jax.tree_util.tree_map(expand, (args, kwargs))
        out = f(*args, **kwargs)
        return jax.tree_util.tree_map(lambda t: jnp.squeeze(t, axis), out)

    return wrapper
