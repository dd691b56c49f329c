"""Embed and EmbedLookupStyle against dm-haiku 0.0.17 (oracle)."""

import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(11)


def spec(tree):
    return jax.tree_util.tree_map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a).name), tree)


def run_both(build, ids, rtol=1e-6, same_dtype=True):
    theirs = haiku.transform(lambda ids: build(haiku)(ids))
    ours = hk.transform(lambda ids: build(hk)(ids))
    pt = theirs.init(KEY, ids)
    po = ours.init(KEY, ids)
    assert spec(po) == spec(pt)
    for a, b in zip(jax.tree_util.tree_leaves(po), jax.tree_util.tree_leaves(pt)):
        np.testing.assert_array_equal(a, b)  # same initial values from the same key
    out_o = ours.apply(pt, None, ids)
    out_t = theirs.apply(pt, None, ids)
    assert out_o.shape == out_t.shape
    assert out_o.dtype == out_t.dtype or not same_dtype
    np.testing.assert_allclose(np.asarray(out_o, np.float64), np.asarray(out_t, np.float64),
                               rtol=rtol)
    return pt, out_o


IDS = {
    "vector": jnp.array([0, 3, 9, 1]),
    "matrix": jnp.array([[1, 2, 3], [4, 5, 9]]),
    "scalar": jnp.array(7),
    "uint8": jnp.array([[2], [8]], jnp.uint8),
}

GRID = list(itertools.product(
    ["sizes", "matrix"],
    ["ARRAY_INDEX", "ONE_HOT", "one_hot", "enum_one_hot", "call_one_hot"],
    list(IDS),
))


def style(lib, name):
    return {"enum_one_hot": lib.EmbedLookupStyle.ONE_HOT}.get(name, name)


@pytest.mark.parametrize("construct,lookup,ids", GRID)
def test_embed_matches_haiku(construct, lookup, ids):
    matrix = np.random.RandomState(0).randn(10, 4).astype(np.float32)

    def build(lib):
        ctor_style = "ARRAY_INDEX" if lookup == "call_one_hot" else style(lib, lookup)
        if construct == "sizes":
            mod = lib.Embed(10, 4, lookup_style=ctor_style)
        else:
            mod = lib.Embed(embedding_matrix=matrix, lookup_style=ctor_style)
        if lookup == "call_one_hot":
            return lambda ids: mod(ids, lookup_style="ONE_HOT")
        return mod

    params, out = run_both(build, IDS[ids])
    assert list(params) == ["embed"] and list(params["embed"]) == ["embeddings"]
    table = params["embed"]["embeddings"]
    if construct == "matrix":
        np.testing.assert_array_equal(table, matrix)
    np.testing.assert_allclose(out, np.asarray(table)[np.asarray(IDS[ids])], rtol=1e-6)


def test_default_initializer_is_truncated_normal():
    params = hk.transform(lambda: hk.Embed(6, 3)(jnp.array([0]))).init(KEY)
    manual = hk.transform(lambda: hk.get_parameter(
        "w", [6, 3], init=hk.initializers.TruncatedNormal())).init(KEY)
    np.testing.assert_array_equal(params["embed"]["embeddings"], manual["~"]["w"])


def test_custom_initializer_and_precision_match_haiku():
    ids = jnp.array([[0, 1], [2, 3]])
    run_both(lambda lib: lib.Embed(5, 2, w_init=lib.initializers.RandomUniform(),
                                   lookup_style="ONE_HOT",
                                   precision=jax.lax.Precision.DEFAULT), ids, rtol=1e-2)
    run_both(lambda lib: (lambda ids: lib.Embed(5, 2, lookup_style="ONE_HOT")(
        ids, precision=jax.lax.Precision.HIGHEST)), ids)


def test_out_of_range_ids_match_haiku():
    matrix = jnp.arange(8.).reshape(4, 2)
    for lookup in ["ARRAY_INDEX", "ONE_HOT"]:
        run_both(lambda lib: lib.Embed(embedding_matrix=matrix, lookup_style=lookup),
                 jnp.array([5, -1, 2]))


@pytest.mark.parametrize("dtype,x64", list(itertools.product(["float64", "bfloat16", "float16"],
                                                             [False, True])))
def test_embedding_matrix_dtype_is_kept(dtype, x64):
    if dtype == "float64" and not x64:
        return
    with jax.enable_x64(x64):
        matrix = jnp.asarray(np.random.RandomState(1).randn(5, 3), dtype)
        for lookup in ["ARRAY_INDEX", "ONE_HOT"]:
            # dm-haiku's ONE_HOT lookup promotes half-precision tables to the default float dtype
            # (float32, or float64 under x64); senryu keeps the table's dtype, as ARRAY_INDEX does.
            params, out = run_both(
                lambda lib: lib.Embed(embedding_matrix=matrix, lookup_style=lookup),
                jnp.array([1, 4]), rtol=1e-2,
                same_dtype=lookup == "ARRAY_INDEX" or dtype == "float64")
            assert params["embed"]["embeddings"].dtype == jnp.dtype(dtype)
            assert out.dtype == jnp.dtype(dtype)


def test_list_ids_and_attributes():
    def f():
        embed = hk.Embed(4, 2)
        assert (embed.vocab_size, embed.embed_dim, embed.lookup_style) == (4, 2, "ARRAY_INDEX")
        assert embed.precision == jax.lax.Precision.HIGHEST
        out = embed([0, 3])
        assert out.shape == (2, 2)
        assert embed.embeddings.shape == (4, 2)
        return out
    hk.transform(f).init(KEY)
    assert [s.name for s in hk.EmbedLookupStyle] == ["ARRAY_INDEX", "ONE_HOT"]
    assert hk.EmbedLookupStyle.ARRAY_INDEX.value == 1 and hk.EmbedLookupStyle.ONE_HOT.value == 2


@pytest.mark.parametrize("lookup", ["ARRAY_INDEX", "ONE_HOT"])
def test_jit_and_grad_match_haiku(lookup):
    ids = jnp.array([[0, 1, 1], [3, 2, 0]])
    weights = jnp.arange(6.).reshape(2, 3, 1)

    def loss(lib):
        f = lib.transform(lambda ids: lib.Embed(4, 3, lookup_style=lookup)(ids))
        return f, lambda p, ids: jnp.sum(jnp.sin(f.apply(p, None, ids)) * weights)

    (fo, lo), (ft, lt) = loss(hk), loss(haiku)
    params = ft.init(KEY, ids)
    np.testing.assert_allclose(jax.jit(fo.apply)(params, None, ids), ft.apply(params, None, ids),
                               rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(lo))(params, ids)["embed"]["embeddings"],
                               jax.grad(lt)(params, ids)["embed"]["embeddings"], rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match=r"embed: Embed needs either an initial `embedding_matrix` "
                                         r"or both `vocab_size` and `embed_dim` \(got "
                                         r"vocab_size=4, embed_dim=None\)"):
        hk.transform(lambda: hk.Embed(4)).init(None)
    with pytest.raises(ValueError, match=r"embed: an `embedding_matrix` of shape \(4, 2\) was "
                                         r"given, which is inconsistent with vocab_size=3"):
        hk.transform(lambda: hk.Embed(3, embedding_matrix=jnp.ones([4, 2]))).init(None)
    with pytest.raises(ValueError, match=r"embed: an `embedding_matrix` of shape \(4, 2\) was "
                                         r"given, which is inconsistent with embed_dim=5"):
        hk.transform(lambda: hk.Embed(embed_dim=5, embedding_matrix=jnp.ones([4, 2]))).init(None)
    with pytest.raises(ValueError, match=r"words: Embed must be called with an array of integer "
                                         r"ids, but got dtype float32 \(shape \(2,\)\)"):
        hk.transform(lambda: hk.Embed(4, 2, name="words")(jnp.array([1., 2.]))).init(KEY)
    with pytest.raises(AttributeError, match=r"embed: Unknown embedding lookup_style 'FOO'"):
        hk.transform(lambda: hk.Embed(4, 2, lookup_style="FOO")(jnp.array([1]))).init(KEY)
    with pytest.raises(AttributeError, match=r"embed: Unknown embedding lookup_style 'BAR'"):
        hk.transform(lambda: hk.Embed(4, 2)(jnp.array([1]), lookup_style="BAR")).init(KEY)
    # Like dm-haiku, a bad constructor style is only an error when it is used.
    hk.transform(lambda: hk.Embed(4, 2, lookup_style="FOO")(jnp.array([1]),
                                                            lookup_style="ONE_HOT")).init(KEY)
