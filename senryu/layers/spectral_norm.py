"""Spectral normalisation: ``SpectralNorm`` and ``SNParamsTree``."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers
from senryu.layers.moving_averages import _as_scoped_property, _map_params_tree

__all__ = ["SpectralNorm", "SNParamsTree"]


def _l2_normalize(x: jax.Array, eps: float) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.sum(jnp.square(x)) + eps)


def _check_options(who: str, n_steps: Any) -> None:
    if not isinstance(n_steps, numbers.Integral) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"{who}: `n_steps` must be a positive integer, got {n_steps!r}.")


class SpectralNorm(core.Module):
    """Divides a matrix by an estimate of its largest singular value (spectral normalisation).

    The singular value is estimated by ``n_steps`` of power iteration started from the vector
    ``u0`` kept in state (drawn from a normal distribution at init, so ``init`` needs an RNG key).
    Inputs of rank > 2 are flattened to ``[-1, last_dim]`` first. State: ``u0`` of shape
    ``[1, last_dim]`` and ``sigma``, the last estimate.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform_with_state(lambda w: hk.SpectralNorm()(w))
    >>> w = jnp.array([[3., 0.], [0., 1.]])
    >>> params, state = f.init(jax.random.PRNGKey(0), w)
    >>> for _ in range(20):
    ...     w_sn, state = f.apply(params, state, None, w)
    >>> w_sn.round(3)
    Array([[1.   , 0.   ],
           [0.   , 0.333]], dtype=float32)
    >>> state['spectral_norm']['sigma'].round(3)
    Array(3., dtype=float32)

    Args:
      eps: added to squared norms in the power iteration, for stability.
      n_steps: number of power-iteration steps per call.
      name: module name.
    """

    def __init__(self, eps: float = 1e-4, n_steps: int = 1, name: Optional[str] = None):
        super().__init__(name=name)
        _check_options(f"{type(self).__name__} {self.module_name!r}", n_steps)
        self.eps = eps
        self.n_steps = n_steps

    def __call__(self, value: Any, update_stats: bool = True,
                 error_on_non_matrix: bool = False) -> jax.Array:
        """Returns ``value`` divided by its estimated largest singular value.

        Raises:
          ValueError: for scalars and vectors, and for rank > 2 when ``error_on_non_matrix``.
        """
        value = jnp.asarray(value)
        who = f"{type(self).__name__} {self.module_name!r}"
        value_shape = value.shape
        if value.ndim <= 1:
            raise ValueError(
                "Spectral normalization is not well defined for scalar or vector inputs "
                f"({who} got shape {tuple(value_shape)}; it needs a matrix).")
        if value.ndim > 2:
            if error_on_non_matrix:
                raise ValueError(
                    f"Input is {value.ndim}D but error_on_non_matrix is True ({who}, shape "
                    f"{tuple(value_shape)}); reshape it to a matrix or pass "
                    "error_on_non_matrix=False to flatten the leading dimensions.")
            value = jnp.reshape(value, (int(np.prod(value.shape[:-1])), value.shape[-1]))

        u0 = core.get_state("u0", (1, value.shape[-1]), value.dtype,
                            init=initializers.RandomNormal())
        if u0.shape != (1, value.shape[-1]):
            raise ValueError(
                f"{who}: the power-iteration state u0 has shape {tuple(u0.shape)} but inputs of "
                f"shape {tuple(value_shape)} need (1, {value.shape[-1]}); the last dimension "
                "must not change after init.")

        v0 = None
        for _ in range(self.n_steps):
            v0 = _l2_normalize(jnp.matmul(u0, value.T), self.eps)
            u0 = _l2_normalize(jnp.matmul(v0, value), self.eps)
        u0 = jax.lax.stop_gradient(u0)
        v0 = jax.lax.stop_gradient(v0)
        sigma = jnp.matmul(jnp.matmul(v0, value), jnp.transpose(u0))[0, 0]

        if update_stats:
            core.set_state("u0", u0)
            core.set_state("sigma", sigma)
        return jnp.reshape(value / sigma, value_shape)

    def u0(self) -> jax.Array:
        """The current power-iteration vector (state entry ``u0``)."""
        return core.get_state("u0")

    def sigma(self) -> jax.Array:
        """The last singular-value estimate (state entry ``sigma``; 1 before any update)."""
        return core.get_state("sigma", shape=(), init=jnp.ones)


_as_scoped_property(SpectralNorm, "u0")
_as_scoped_property(SpectralNorm, "sigma")


class SNParamsTree(core.Module):
    """Applies ``SpectralNorm`` to every parameter of a tree (like ``EMAParamsTree``).

    Every parameter must be a matrix or higher-rank array unless its ``"module/param"`` path
    ``re.match``-es ``ignore_regex`` (e.g. ``".*b$"`` to skip biases).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> params = hk.transform(lambda x: hk.Linear(3)(x)).init(jax.random.PRNGKey(0),
    ...                                                      jnp.ones([1, 2]))
    >>> sn = hk.transform_with_state(lambda p: hk.SNParamsTree(ignore_regex=".*b$")(p))
    >>> _, state = sn.init(jax.random.PRNGKey(1), params)
    >>> sorted(state)
    ['sn_params_tree/linear__w']

    Args:
      eps: added to squared norms in the power iteration.
      n_steps: number of power-iteration steps per call.
      ignore_regex: parameters whose path matches are returned unchanged; ``""`` matches none.
      name: module name.
    """

    def __init__(self, eps: float = 1e-4, n_steps: int = 1, ignore_regex: str = "",
                 name: Optional[str] = None):
        super().__init__(name=name)
        _check_options(f"{type(self).__name__} {self.module_name!r}", n_steps)
        self.eps = eps
        self.n_steps = n_steps
        self.ignore_regex = ignore_regex

    def __call__(self, tree: Any, update_stats: bool = True) -> Any:
        """Returns the tree with every (non-ignored) parameter spectrally normalised."""

        def normalize(module_name: str, param_name: str, value: Any) -> jax.Array:
            name = f"{module_name}/{param_name}".replace("/", "__").replace("~", "_tilde")
            return SpectralNorm(self.eps, self.n_steps, name=name)(value,
                                                                   update_stats=update_stats)

        return _map_params_tree(self, tree, self.ignore_regex, normalize)
