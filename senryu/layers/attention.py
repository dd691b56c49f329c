"""Multi-head attention: ``MultiHeadAttention``."""

from __future__ import annotations

import warnings
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers
from senryu.layers.basic import Linear

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(core.Module):
    """Multi-head scaled dot-product attention ("Attention is all you need",
    https://arxiv.org/abs/1706.03762).

    ``query`` ``[..., T, D_q]``, ``key`` ``[..., T', D_k]`` and ``value`` ``[..., T', D_v]`` are
    projected (``Linear`` modules ``query``, ``key``, ``value``) to ``num_heads`` heads of
    ``key_size`` (``value_size`` for values); each head attends with
    ``softmax(q k^T / sqrt(key_size))``, and the concatenated heads go through a final ``Linear``
    (``linear``) to ``model_size`` features. ``mask`` has the rank of the attention logits
    ``[..., num_heads, T, T']`` and broadcasts against them; positions where it is false/zero are
    not attended to.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(q, kv):
    ...     mha = hk.MultiHeadAttention(num_heads=2, key_size=4,
    ...                                 w_init=hk.initializers.VarianceScaling(1.0))
    ...     return mha(q, kv, kv)
    >>> f = hk.transform(f)
    >>> q, kv = jnp.ones([3, 5, 6]), jnp.ones([3, 7, 2])
    >>> params = f.init(jax.random.PRNGKey(0), q, kv)
    >>> jax.tree.map(jnp.shape, params)['multi_head_attention/key']
    {'b': (8,), 'w': (2, 8)}
    >>> f.apply(params, None, q, kv).shape
    (3, 5, 8)

    Args:
      num_heads: number of heads.
      key_size: size of each head's queries and keys.
      w_init_scale: deprecated; the same as ``w_init=hk.initializers.VarianceScaling(scale)``.
      w_init: initializer for the projection weights (required unless ``w_init_scale``).
      with_bias: whether the projections have biases.
      b_init: initializer for the biases (default zeros).
      value_size: size of each head's values (default ``key_size``).
      model_size: output size (default ``key_size * num_heads``).
      name: module name.
    """

    def __init__(self, num_heads: int, key_size: int, w_init_scale: Optional[float] = None,
                 *,
                 w_init: Optional[initializers.Initializer] = None,
                 with_bias: bool = True,
                 b_init: Optional[initializers.Initializer] = None,
                 value_size: Optional[int] = None,
                 model_size: Optional[int] = None,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.num_heads = num_heads
        self.key_size = key_size
        self.value_size = value_size or key_size
        self.model_size = model_size or key_size * num_heads

        if w_init_scale is not None:
            warnings.warn(
                "w_init_scale is deprecated; please pass an explicit weight initialiser "
                "instead.", DeprecationWarning, stacklevel=3)
        if w_init is not None and w_init_scale is not None:
            raise ValueError(
                f"Please provide only `w_init`, not `w_init_scale` (MultiHeadAttention "
                f"{self.module_name!r}).")
        if w_init is None and w_init_scale is None:
            raise ValueError(
                "Please provide a weight initializer: `w_init`. `w_init` will become mandatory "
                "once `w_init_scale` is fully deprecated (MultiHeadAttention "
                f"{self.module_name!r}).")
        if w_init is None:
            w_init = initializers.VarianceScaling(w_init_scale)
        self.w_init = w_init
        self.with_bias = with_bias
        self.b_init = b_init

    def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array,
                 mask: Optional[jax.Array] = None) -> jax.Array:
        """Attends from ``query`` to ``key``/``value``; returns ``[..., T, model_size]``."""
        who = f"MultiHeadAttention {self.module_name!r}"
        query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
        for arg_name, arg in (("query", query), ("key", key), ("value", value)):
            if arg.ndim < 2:
                raise ValueError(
                    f"{who}: {arg_name} must have shape [..., sequence_length, features], got "
                    f"shape {tuple(arg.shape)}.")
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(
                f"{who}: key and value must have the same sequence length (axis -2), got key "
                f"shape {tuple(key.shape)} and value shape {tuple(value.shape)}.")

        try:
            jnp.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
        except ValueError:
            raise ValueError(
                f"{who}: the leading (batch) dimensions of query {tuple(query.shape[:-2])}, key "
                f"{tuple(key.shape[:-2])} and value {tuple(value.shape[:-2])} must be equal or "
                "broadcast together (shapes are [..., sequence_length, features]).") from None
        query_heads = self._linear_projection(query, self.key_size, "query")
        key_heads = self._linear_projection(key, self.key_size, "key")
        value_heads = self._linear_projection(value, self.value_size, "value")

        attn_logits = jnp.einsum("...thd,...Thd->...htT", query_heads, key_heads)
        attn_logits = attn_logits / np.sqrt(self.key_size).astype(key.dtype)
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.ndim != attn_logits.ndim:
                raise ValueError(
                    f"Mask dimensionality {mask.ndim} must match logits dimensionality "
                    f"{attn_logits.ndim} ({who}: mask shape {tuple(mask.shape)}, logits shape "
                    f"{tuple(attn_logits.shape)} = [..., num_heads, query_length, key_length]).")
            try:
                jnp.broadcast_shapes(mask.shape, attn_logits.shape)
            except ValueError:
                raise ValueError(
                    f"{who}: mask of shape {tuple(mask.shape)} does not broadcast to the logits "
                    f"shape {tuple(attn_logits.shape)} = [..., num_heads, query_length, "
                    "key_length].") from None
            attn_logits = jnp.where(mask, attn_logits, -1e30)
        attn_weights = jax.nn.softmax(attn_logits)

        attn = jnp.einsum("...htT,...Thd->...thd", attn_weights, value_heads)
        # Explicit sizes (not -1): a zero-sized axis leaves -1 undetermined.
        attn = jnp.reshape(attn, (*attn.shape[:-2], attn.shape[-2] * attn.shape[-1]))

        final_projection = Linear(self.model_size, w_init=self.w_init,
                                  with_bias=self.with_bias, b_init=self.b_init)
        return final_projection(attn)

    @core.transparent
    def _linear_projection(self, x: jax.Array, head_size: int,
                           name: Optional[str] = None) -> jax.Array:
        y = Linear(self.num_heads * head_size, w_init=self.w_init, with_bias=self.with_bias,
                   b_init=self.b_init, name=name)(x)
        *leading_dims, _ = x.shape
        return y.reshape((*leading_dims, self.num_heads, head_size))
