"""Root-mean-square normalisation: ``RMSNorm``."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers
from senryu.layers.layer_norm import _check_axis_type, _describe, _param_shape, _resolve_axes

__all__ = ["RMSNorm"]


class RMSNorm(core.Module):
    """RMS normalisation (https://arxiv.org/abs/1910.07467).

    Divides the inputs by their root mean square over ``axis`` (no re-centring) and multiplies
    by a learned ``scale``: ``x * scale / sqrt(mean(x**2) + eps)``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda x: hk.RMSNorm(axis=-1)(x))
    >>> x = jnp.array([[3., 4.]])
    >>> params = f.init(None, x)
    >>> jax.tree.map(jnp.shape, params)
    {'rms_norm': {'scale': (2,)}}
    >>> f.apply(params, None, x).tolist()
    [[0.849, 1.131]]

    Args:
      axis: int, sequence of ints or slice: the axes to normalise over.
      eps: added to the mean square before the square root.
      scale_init: initializer for ``scale`` (default ones); only with ``create_scale=True``.
      name: module name.
      create_scale: whether to create a trainable ``scale``.
      param_axis: axes whose sizes ``scale`` keeps (default ``-1``).
    """

    def __init__(self, axis: Union[int, Sequence[int], slice], eps: float = 1e-5,
                 scale_init: Optional[initializers.Initializer] = None,
                 name: Optional[str] = None,
                 create_scale: bool = True,
                 *,
                 param_axis: Optional[Union[int, Sequence[int], slice]] = None):
        super().__init__(name=name)
        who = _describe(self)
        if not create_scale and scale_init is not None:
            raise ValueError(
                f"Cannot set `scale_init` if `create_scale=False` ({who}): pass "
                "create_scale=True or leave scale_init unset.")
        self.axis = _check_axis_type(axis, who)
        self.param_axis = -1 if param_axis is None else _check_axis_type(param_axis, who,
                                                                         "param_axis")
        self.eps = eps
        self.create_scale = create_scale
        self.scale_init = scale_init or jnp.ones

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Returns the normalised ``inputs`` (same shape)."""
        inputs = jnp.asarray(inputs)
        who = _describe(self)
        axes = _resolve_axes(self.axis, inputs.ndim, who, inputs.shape)
        param_axes = _resolve_axes(self.param_axis, inputs.ndim, who, inputs.shape,
                                   "param_axis")
        mean_squared = jnp.mean(jnp.square(inputs), axis=axes, keepdims=True)
        if self.create_scale:
            scale = core.get_parameter("scale", _param_shape(param_axes, inputs.shape),
                                       inputs.dtype, init=self.scale_init)
            scale = jnp.broadcast_to(scale, inputs.shape)
        else:
            scale = np.array(1., dtype=inputs.dtype)
        eps = jax.lax.convert_element_type(self.eps, mean_squared.dtype)
        return inputs * scale * jax.lax.rsqrt(mean_squared + eps)
