"""Stateless functions: ``dropout``, ``multinomial`` and ``one_hot``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp

__all__ = ["dropout", "multinomial", "one_hot"]


def _concrete(value: Any) -> Optional[float]:
    """The Python value of ``value`` if it is known at trace time, else None."""
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def dropout(rng: Optional[jax.Array], rate: float, x: jax.Array,
            broadcast_dims: Sequence[int] = ()) -> jax.Array:
    """Zeroes each element of ``x`` with probability ``rate`` and scales the rest by
    ``1 / (1 - rate)``.

    The keep mask is ``jax.random.bernoulli(rng, 1 - rate, shape)``, where ``shape`` is
    ``x.shape`` with the ``broadcast_dims`` set to 1 (the same mask is then shared along them).
    ``rate=0`` returns ``x`` unchanged (``rng`` may then be None). A ``rate`` with a low-precision
    dtype (e.g. ``np.float16(0.1)``) makes the random draw cheaper.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> y = hk.dropout(jax.random.PRNGKey(0), 0.5, jnp.ones([2, 4]))
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    >>> hk.dropout(None, 0.0, jnp.ones([2]))
    Array([1., 1.], dtype=float32)

    Args:
      rng: a JAX random key.
      rate: probability of dropping each element, in ``[0, 1)``.
      x: the array to drop out.
      broadcast_dims: axes along which the mask is shared.

    Returns:
      ``x`` with dropped elements set to zero and kept ones scaled.

    Raises:
      ValueError: if ``rate`` (when known at trace time) is not in ``[0, 1)``.
    """
    concrete_rate = _concrete(rate)
    if concrete_rate is not None:
        if not 0 <= concrete_rate < 1:
            raise ValueError(
                f"dropout: rate must be in [0, 1), got {rate!r}. (rate is the probability of "
                "dropping an element; to drop everything use jnp.zeros_like(x).)")
        if concrete_rate == 0:
            return x
    if rng is None:
        raise TypeError(
            f"dropout: rng is None but rate={rate!r} is not zero; pass a random key, e.g. "
            "hk.next_rng_key(), or use rate=0 (e.g. at evaluation time).")
    x = jnp.asarray(x)
    keep_rate = 1.0 - rate
    shape = list(x.shape)
    for dim in broadcast_dims:
        shape[dim] = 1
    keep = jax.random.bernoulli(rng, keep_rate, shape)
    return jnp.where(keep, x / keep_rate, 0)


def multinomial(rng: jax.Array, logits: jax.Array, num_samples: int) -> jax.Array:
    """Draws ``num_samples`` category indices per row of unnormalised log-probabilities.

    Deprecated in Haiku in favour of :func:`jax.random.categorical`; kept for compatibility.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> logits = jnp.log(jnp.array([[0., 1., 0.], [1., 0., 0.]]))
    >>> hk.multinomial(jax.random.PRNGKey(0), logits, num_samples=3)
    Array([[1, 1, 1],
           [0, 0, 0]], dtype=int32)

    Args:
      rng: a JAX random key.
      logits: array whose last dimension holds the categories.
      num_samples: number of samples per row.

    Returns:
      Integer array of shape ``logits.shape[:-1] + (num_samples,)``.
    """
    logits = jnp.asarray(logits)
    samples = jax.random.categorical(rng, logits, axis=-1,
                                     shape=(num_samples,) + logits.shape[:-1])
    return jnp.moveaxis(samples, 0, -1)


def one_hot(x: jax.Array, num_classes: int, dtype: Any = jnp.float32) -> jax.Array:
    """One-hot encodes integer ``x``: output shape ``x.shape + (num_classes,)``.

    Ids outside ``[0, num_classes)`` give all-zero rows. Deprecated in Haiku in favour of
    :func:`jax.nn.one_hot`; kept for compatibility.

    >>> import jax.numpy as jnp, senryu as hk
    >>> hk.one_hot(jnp.array([0, 2]), 3)
    Array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    return jax.nn.one_hot(x, num_classes, dtype=dtype)
