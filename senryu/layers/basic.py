"""The simplest layers: ``Linear``, ``Bias`` and ``Sequential``."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers

__all__ = ["Linear", "Bias", "Sequential"]


class Linear(core.Module):
    """A fully connected layer: ``y = x @ w + b``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    >>> jax.tree.map(jnp.shape, params)
    {'linear': {'b': (2,), 'w': (3, 2)}}

    Args:
      output_size: number of output features.
      with_bias: whether to add a bias ``b``.
      w_init: initializer of ``w``; default truncated normal with stddev ``1/sqrt(input_size)``.
      b_init: initializer of ``b``; default zeros.
      name: module name.
    """

    def __init__(self, output_size: int, with_bias: bool = True,
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.input_size: Optional[int] = None
        self.output_size = output_size
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs: jax.Array, *, precision: Optional[jax.lax.Precision] = None
                 ) -> jax.Array:
        """Applies the layer to ``inputs`` of shape ``[..., input_size]``."""
        if not inputs.shape:
            raise ValueError(
                f"{self.module_name}: Linear needs inputs with at least one dimension (the "
                "features), got a scalar.")
        input_size = self.input_size = inputs.shape[-1]
        dtype = inputs.dtype
        w_init = self.w_init
        if w_init is None:
            w_init = initializers.TruncatedNormal(stddev=1. / np.sqrt(input_size))
        w = core.get_parameter("w", [input_size, self.output_size], dtype, init=w_init)
        out = jnp.dot(inputs, w, precision=precision)
        if self.with_bias:
            b = core.get_parameter("b", [self.output_size], dtype, init=self.b_init)
            out = out + jnp.broadcast_to(b, out.shape)
        return out


class Bias(core.Module):
    """Adds a learned bias to the inputs.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Bias()(x))
    >>> jax.tree.map(jnp.shape, f.init(jax.random.PRNGKey(0), jnp.ones([2, 3])))
    {'bias': {'b': (3,)}}

    Args:
      output_size: the bias shape; inferred from the inputs if None.
      bias_dims: which input dimensions the bias spans (default: the last one); other dimensions
        are broadcast.
      b_init: initializer of the bias; default zeros.
      name: module name.
    """

    def __init__(self, output_size: Optional[Sequence[int]] = None,
                 bias_dims: Optional[Sequence[int]] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.output_size = output_size
        self.bias_dims = bias_dims
        self.b_init = b_init or jnp.zeros
        self.bias_shape = None
        self.input_size = None

    def __call__(self, inputs: jax.Array, multiplier: Optional[Any] = None) -> jax.Array:
        """Adds the bias (times ``multiplier``, if given) to ``inputs``."""
        bias_dims = self.bias_dims if self.bias_dims is not None else [-1]
        rank = inputs.ndim
        dims = sorted(d % rank for d in bias_dims) if rank else []
        shape = [1] * rank
        for d in dims:
            shape[d] = inputs.shape[d]
        # Leading dimensions of size 1 are dropped, like numpy broadcasting allows.
        first = min(dims) if dims else rank
        bias_shape = tuple(shape[first:])
        if self.output_size is not None and tuple(self.output_size) != bias_shape and (
                tuple(self.output_size) != tuple(inputs.shape[d] for d in dims)):
            raise ValueError(
                f"{self.module_name}: Bias expected inputs with bias dimensions "
                f"{tuple(self.output_size)}, got input shape {inputs.shape}.")
        self.bias_shape = bias_shape
        self.input_size = inputs.shape
        b = core.get_parameter("b", bias_shape, inputs.dtype, init=self.b_init)
        b = jnp.broadcast_to(b, inputs.shape)
        if multiplier is not None:
            b = b * multiplier
        return inputs + b


class Sequential(core.Module):
    """Calls a list of layers in order, feeding each output to the next.

    Only the first layer gets extra arguments.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.Sequential([hk.Linear(3), jax.nn.relu, hk.Linear(1)])(x))
    >>> list(f.init(jax.random.PRNGKey(0), jnp.ones([1, 2])))
    ['linear', 'linear_1']
    """

    def __init__(self, layers: Iterable[Callable[..., Any]], name: Optional[str] = None):
        super().__init__(name=name)
        self.layers = tuple(layers)

    def __call__(self, inputs, *args, **kwargs):
        out = inputs
        for i, layer in enumerate(self.layers):
            out = layer(out, *args, **kwargs) if i == 0 else layer(out)
        return out
