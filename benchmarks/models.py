"""The benchmark models, written once against the Haiku API (``hk`` is senryu or haiku)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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
        x = _pure_linear(layer, x)
        if i < len(MLP_SIZES) - 1:
            x = jax.nn.relu(x)
    return x


def _pure_linear(layer, x):
    out = jnp.dot(x, layer["w"])
    return out + jnp.broadcast_to(layer["b"], out.shape)


def _pure_layer_norm(layer, x, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.var(x, axis=-1, keepdims=True)
    return layer["scale"] * jax.lax.rsqrt(variance + eps) * (x - mean) + layer["offset"]


def _pure_attention(params, prefix, h, mask):
    *lead, seq, _ = h.shape
    key_size = D_MODEL // HEADS

    def heads(name):
        return _pure_linear(params[f"{prefix}/{name}"], h).reshape(*lead, seq, HEADS, key_size)

    q, k, v = heads("query"), heads("key"), heads("value")
    logits = jnp.einsum("...thd,...Thd->...htT", q, k) / np.sqrt(key_size).astype(h.dtype)
    weights = jax.nn.softmax(jnp.where(mask, logits, -1e30))
    attn = jnp.einsum("...htT,...Thd->...thd", weights, v).reshape(*lead, seq, -1)
    return _pure_linear(params[f"{prefix}/linear"], attn)


def pure_transformer_apply(params, tokens):
    """The transformer by hand, same math and the same params as ``transformer_fn``."""
    seq = tokens.shape[-1]
    h = params["embed"]["embeddings"][tokens] + params["~"]["pos"]
    mask = jnp.tril(jnp.ones([1, 1, seq, seq], bool))
    for i in range(LAYERS):
        block = "block" if i == 0 else f"block_{i}"
        attn_in = _pure_layer_norm(params[f"{block}/layer_norm"], h)
        h = h + _pure_attention(params, f"{block}/multi_head_attention", attn_in, mask)
        mlp_in = _pure_layer_norm(params[f"{block}/layer_norm_1"], h)
        hidden = jax.nn.gelu(_pure_linear(params[f"{block}/mlp/~/linear_0"], mlp_in))
        h = h + _pure_linear(params[f"{block}/mlp/~/linear_1"], hidden)
    h = _pure_layer_norm(params["layer_norm"], h)
    return _pure_linear(params["linear"], h)


PURE_APPLY = {"mlp": pure_mlp_apply, "transformer": pure_transformer_apply}
