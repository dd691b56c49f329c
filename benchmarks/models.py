"""The benchmark models, written once against the Haiku API (``hk`` is senryu or haiku)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

MLP_SIZES = [512] * 8


def mlp(hk):
    """8x512 MLP on a [8, 512] batch: (transform, init args)."""
    f = hk.transform(lambda x: hk.nets.MLP(MLP_SIZES)(x))
    return f, (jnp.ones([8, 512]),)


def resnet50(hk):
    """ResNet-50, ``transform_with_state``, training mode, 2x64x64x3 input."""
    f = hk.transform_with_state(lambda x: hk.nets.ResNet50(1000)(x, is_training=True))
    return f, (jnp.ones([2, 64, 64, 3]),)


VOCAB, D_MODEL, HEADS, SEQ, LAYERS = 256, 256, 4, 128, 12


def transformer_fn(hk):
    """A 12-layer pre-norm transformer language model (d_model 256, 4 heads, vocab 256)."""
    class Block(hk.Module):
        def __call__(self, h, mask):
            attn_in = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
            h = h + hk.MultiHeadAttention(num_heads=HEADS, key_size=D_MODEL // HEADS,
                                          w_init=hk.initializers.VarianceScaling(0.1))(
                attn_in, attn_in, attn_in, mask=mask)
            mlp_in = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
            h = h + hk.nets.MLP([4 * D_MODEL, D_MODEL], activation=jax.nn.gelu)(mlp_in)
            return h

    def forward(tokens):
        seq = tokens.shape[-1]
        h = hk.Embed(VOCAB, D_MODEL)(tokens)
        h = h + hk.get_parameter("pos", [seq, D_MODEL], init=hk.initializers.TruncatedNormal(0.02))
        mask = jnp.tril(jnp.ones([1, 1, seq, seq], bool))
        for _ in range(LAYERS):
            h = Block()(h, mask)
        h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
        return hk.Linear(VOCAB)(h)

    return forward


def transformer(hk):
    return hk.transform(transformer_fn(hk)), (jnp.zeros([2, SEQ], jnp.int32),)


MODELS = {"mlp": mlp, "transformer": transformer, "resnet50": resnet50}


def pure_mlp_apply(params, x):
    """The MLP by hand, same math as ``hk.nets.MLP`` (the pure-JAX baseline)."""
    for i in range(len(MLP_SIZES)):
        layer = params[f"mlp/~/linear_{i}"]
        x = x @ layer["w"] + layer["b"]
        if i < len(MLP_SIZES) - 1:
            x = jax.nn.relu(x)
    return x
