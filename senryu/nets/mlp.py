"""``MLP``: a stack of ``Linear`` layers with an activation between them."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import jax
import jax.numpy as jnp

from senryu import core
from senryu import initializers
from senryu import layers
from senryu.layers.basic import Linear

__all__ = ["MLP"]


class MLP(core.Module):
    """A multi-layer perceptron: ``Linear`` layers named ``linear_0``, ``linear_1``, ...

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 4]))
    >>> jax.tree.map(jnp.shape, params)
    {'mlp/~/linear_0': {'b': (3,), 'w': (4, 3)}, 'mlp/~/linear_1': {'b': (2,), 'w': (3, 2)}}

    Args:
      output_sizes: output size of each layer.
      w_init: initializer of the weights (default: ``Linear``'s).
      b_init: initializer of the biases (default zeros).
      with_bias: whether the layers have biases.
      activation: applied between layers (and after the last if ``activate_final``).
      activate_final: whether to apply the activation (and dropout) after the last layer.
      name: module name.
    """

    def __init__(self, output_sizes: Iterable[int],
                 w_init: Optional[initializers.Initializer] = None,
                 b_init: Optional[initializers.Initializer] = None,
                 with_bias: bool = True,
                 activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
                 activate_final: bool = False,
                 name: Optional[str] = None):
        if not with_bias and b_init is not None:
            raise ValueError("MLP: `b_init` was given but `with_bias=False`; drop one of them.")
        super().__init__(name=name)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init
        self.activation = activation
        self.activate_final = activate_final
        self.output_sizes = tuple(output_sizes)
        self.output_size = self.output_sizes[-1] if self.output_sizes else None
        self.layers = tuple(
            Linear(size, w_init=w_init, b_init=b_init, with_bias=with_bias, name=f"linear_{i}")
            for i, size in enumerate(self.output_sizes))

    def __call__(self, inputs: jax.Array, dropout_rate: Optional[float] = None,
                 rng: Optional[jax.Array] = None) -> jax.Array:
        """Applies the MLP; ``dropout_rate`` (with ``rng``) applies dropout after activations."""
        if dropout_rate is not None and rng is None:
            raise ValueError(
                f"{self.module_name}: `dropout_rate` was given without an `rng`; pass "
                "`rng=hk.next_rng_key()` to apply dropout.")
        if dropout_rate is None and rng is not None:
            raise ValueError(f"{self.module_name}: `rng` was given without a `dropout_rate`.")
        rngs = core.PRNGSequence(rng) if rng is not None else None
        out = inputs
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            out = layer(out)
            if i < last or self.activate_final:
                if dropout_rate is not None:
                    out = layers.dropout(next(rngs), dropout_rate, out)
                out = self.activation(out)
        return out

    def reverse(self, activate_final: Optional[bool] = None, name: Optional[str] = None) -> "MLP":
        """An MLP mirroring this one, back down to this MLP's input size.

        Call this MLP first, so its input size is known.
        """
        if activate_final is None:
            activate_final = self.activate_final
        if name is None:
            name = self.name + "_reversed"
        sizes = [layer.input_size for layer in self.layers]
        if any(size is None for size in sizes):
            raise ValueError(
                f"{self.module_name}: call the MLP before `reverse()`, so its input sizes are known.")
        return MLP(output_sizes=reversed(sizes), w_init=self.w_init, b_init=self.b_init,
                   with_bias=self.with_bias, activation=self.activation,
                   activate_final=activate_final, name=name)
