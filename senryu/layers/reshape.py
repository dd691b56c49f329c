"""Reshaping modules that keep leading (batch) dimensions: ``Reshape`` and ``Flatten``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core

__all__ = ["Reshape", "Flatten"]


class Reshape(core.Module):
    """Reshapes the trailing dimensions of its input, keeping the first ``preserve_dims``.

    >>> import jax.numpy as jnp, senryu as hk
    >>> x = jnp.ones([2, 3, 4, 5])
    >>> f = hk.transform(lambda x: hk.Reshape(output_shape=(-1, 5))(x))
    >>> f.apply({}, None, x).shape
    (2, 12, 5)
    >>> f = hk.transform(lambda x: hk.Reshape(output_shape=(-1, 5), preserve_dims=-2)(x))
    >>> f.apply({}, None, x[0]).shape
    (3, 4, 5)

    Inputs with at most ``preserve_dims`` dimensions are returned unchanged.

    Args:
      output_shape: the new shape of the non-preserved dimensions; one entry may be ``-1``
        (inferred).
      preserve_dims: number of leading dimensions kept as they are; if negative, ``-k`` means
        that the last ``k`` dimensions are replaced by ``output_shape``.
      name: module name.

    Raises:
      ValueError: if ``preserve_dims`` is zero or ``-1`` appears more than once.
    """

    def __init__(self, output_shape: Sequence[int], preserve_dims: int = 1,
                 name: Optional[str] = None):
        super().__init__(name=name)
        if preserve_dims == 0:
            raise ValueError(f"{self.module_name}: preserve_dims must be non-zero (a positive "
                             "number of leading dimensions kept, or a negative number of trailing "
                             "dimensions replaced).")
        output_shape = tuple(int(d) for d in np.asarray(output_shape).reshape(-1))
        if output_shape.count(-1) > 1:
            raise ValueError(f"{self.module_name}: -1 can only occur once in output_shape, got "
                             f"{output_shape}.")
        if any(d < -1 for d in output_shape):
            raise ValueError(f"{self.module_name}: output_shape entries must be >= 0 or -1, got "
                             f"{output_shape}.")
        self.output_shape = output_shape
        self.preserve_dims = preserve_dims

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Reshapes ``inputs``."""
        inputs = jnp.asarray(inputs)
        if inputs.ndim <= self.preserve_dims:
            return inputs
        keep = self.preserve_dims if self.preserve_dims > 0 else max(
            inputs.ndim + self.preserve_dims, 0)
        kept = inputs.shape[:keep]
        rest = int(np.prod(inputs.shape[keep:], dtype=np.int64))
        shape = list(self.output_shape)
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if -1 in shape:
            if (known == 0 and rest != 0) or (known and rest % known):
                raise self._size_error(inputs.shape, keep)
            shape[shape.index(-1)] = rest // known if known else 0
        elif known != rest:
            raise self._size_error(inputs.shape, keep)
        return jnp.reshape(inputs, kept + tuple(shape))

    def _size_error(self, shape, keep) -> ValueError:
        return ValueError(
            f"{self.module_name}: cannot reshape the trailing dimensions {tuple(shape[keep:])} of "
            f"an input of shape {tuple(shape)} (preserve_dims={self.preserve_dims}) into "
            f"output_shape {self.output_shape}: the number of elements differs.")


class Flatten(Reshape):
    """Flattens all dimensions after the first ``preserve_dims`` into one.

    >>> import jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Flatten()(x))
    >>> f.apply({}, None, jnp.ones([3, 2, 4])).shape
    (3, 8)
    >>> f = hk.transform(lambda x: hk.Flatten(preserve_dims=-2)(x))
    >>> f.apply({}, None, jnp.ones([2, 4])).shape
    (8,)

    Inputs with at most ``preserve_dims`` dimensions are returned unchanged.

    Args:
      preserve_dims: number of leading dimensions kept; if negative, ``-k`` flattens the last
        ``k`` dimensions.
      name: module name.
    """

    def __init__(self, preserve_dims: int = 1, name: Optional[str] = None):
        super().__init__(output_shape=(-1,), preserve_dims=preserve_dims, name=name)
