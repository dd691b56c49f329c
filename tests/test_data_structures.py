"""Tests for ``senryu.data_structures`` against dm-haiku 0.0.17 (imported as ``haiku``)."""

import collections
import itertools
import pickle

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
import senryu.data_structures  # noqa: F401  (makes hk.data_structures available)

ds = hk.data_structures
hds = haiku.data_structures

MODULES = ["linear", "mlp/~/linear_0", "mlp/~/linear_1", "conv", "~", "batch_norm/~/mean_ema"]
NAMES = ["w", "b", "scale", "offset", "counter", "hidden"]
DTYPES = [np.float32, np.int32, np.float16, jnp.bfloat16, np.bool_, np.complex64]


def random_structure(rng, empty_modules=True):
    """A random {module: {name: array}} dict with keys in random (unsorted) order."""
    structure = {}
    for module in rng.permutation(MODULES)[: rng.integers(0, len(MODULES) + 1)]:
        names = rng.permutation(NAMES)[: rng.integers(0 if empty_modules else 1, len(NAMES) + 1)]
        bundle = {}
        for name in names:
            shape = tuple(rng.integers(0, 4, size=rng.integers(0, 3)))
            dtype = DTYPES[rng.integers(len(DTYPES))]
            bundle[str(name)] = np.asarray(rng.normal(size=shape)).astype(dtype)
        structure[str(module)] = bundle
    return structure


def assert_same(expected, actual):
    """Same types, same key order at every level, and the very same leaf objects."""
    assert type(actual) is type(expected), (type(actual), type(expected))
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(expected[key], actual[key])
    elif isinstance(expected, tuple):
        assert len(actual) == len(expected)
        for e, a in zip(expected, actual):
            assert_same(e, a)
    else:
        assert actual is expected


def predicate(module_name, name, value):
    return (len(module_name) + len(name) + value.ndim) % 2 == 0


def bucket(module_name, name, value):
    return (len(module_name) * 7 + len(name) + value.size) % 3


SEEDS = list(range(12))


@pytest.mark.parametrize("seed", SEEDS)
def test_filter_map_partition_match_haiku(seed):
    structure = random_structure(np.random.default_rng(seed))
    assert_same(hds.filter(predicate, structure), ds.filter(predicate, structure))
    # fn's results are new objects: compare them by value, in the same key order.
    fn = lambda m, n, v: f"{m}|{n}|{v.dtype}{v.shape}"  # noqa: E731
    expected, actual = hds.map(fn, structure), ds.map(fn, structure)
    assert type(actual) is dict and actual == expected
    assert [list(b) for b in actual.values()] == [list(b) for b in expected.values()]
    assert list(actual) == list(expected)
    assert_same(hds.partition(predicate, structure), ds.partition(predicate, structure))
    assert_same(hds.partition_n(bucket, structure, 3), ds.partition_n(bucket, structure, 3))
    assert list(hds.traverse(structure)) == list(ds.traverse(structure))


@pytest.mark.parametrize("seed", SEEDS)
def test_merge_matches_haiku(seed):
    rng = np.random.default_rng(seed)
    structures = [random_structure(rng) for _ in range(rng.integers(0, 4))]
    assert_same(hds.merge(*structures), ds.merge(*structures))
    a = random_structure(rng)
    # Paths shared between structures, with identical shapes and dtypes, pass the check.
    b = jax.tree.map(lambda x: x.copy(), a)
    assert_same(hds.merge(a, b, check_duplicates=True), ds.merge(a, b, check_duplicates=True))


@pytest.mark.parametrize("seed", SEEDS)
def test_is_subset_matches_haiku(seed):
    rng = np.random.default_rng(seed)
    a, b = random_structure(rng), random_structure(rng)
    sub = hds.filter(predicate, a)
    for subset, superset in [(a, b), (b, a), (sub, a), (a, sub), (a, a), ({}, a), (a, {})]:
        expected = hds.is_subset(subset=subset, superset=superset)
        assert ds.is_subset(subset=subset, superset=superset) is expected


@pytest.mark.parametrize("seed", SEEDS)
def test_conversions_match_haiku(seed):
    structure = random_structure(np.random.default_rng(seed))
    assert_same(hds.to_haiku_dict(structure), ds.to_haiku_dict(structure))
    assert_same(hds.to_mutable_dict(structure), ds.to_mutable_dict(structure))
    frozen, h_frozen = ds.to_immutable_dict(structure), hds.to_immutable_dict(structure)
    assert_same(hds.to_mutable_dict(h_frozen), ds.to_mutable_dict(frozen))
    assert_same(hds.to_haiku_dict(h_frozen), ds.to_haiku_dict(frozen))
    assert list(hds.traverse(h_frozen)) == list(ds.traverse(frozen))
    leaves, h_leaves = jax.tree.leaves(frozen), jax.tree.leaves(h_frozen)
    assert len(leaves) == len(h_leaves) and all(x is y for x, y in zip(leaves, h_leaves))


@pytest.mark.parametrize("seed", SEEDS)
def test_tree_size_and_bytes_match_haiku(seed):
    rng = np.random.default_rng(seed)
    tree = [random_structure(rng), (random_structure(rng), jnp.ones([2, 3], jnp.bfloat16))]
    assert ds.tree_size(tree) == hds.tree_size(tree)
    assert ds.tree_bytes(tree) == hds.tree_bytes(tree)
    assert type(ds.tree_size(tree)) is int and type(ds.tree_bytes(tree)) is int


# ---------------------------------------------------------------------------------------------
# The documented examples.


def test_documented_examples():
    params = {'linear': {'w': None, 'b': None}}
    is_w = lambda module_name, name, value: name == 'w'  # noqa: E731
    assert ds.filter(is_w, params) == {'linear': {'w': None}}
    assert ds.is_subset(subset={'a': {}}, superset={}) is True
    fn = lambda module_name, name, value: 2 * value if name == 'w' else value  # noqa: E731
    mapped = ds.map(fn, {'linear': {'w': 1.0, 'b': 2.0}})
    assert repr(mapped) == "{'linear': {'b': 2.0, 'w': 2.0}}"
    merged = ds.merge({'linear': {'w': None}}, {'linear': {'b': None}})
    assert repr(merged) == "{'linear': {'w': None, 'b': None}}"
    assert ds.merge({'linear': {'w': 1}}, {'linear': {'w': 2}}) == {'linear': {'w': 2}}
    weights, biases = ds.partition(is_w, params)
    assert (weights, biases) == ({'linear': {'w': None}}, {'linear': {'b': None}})

    def partition_by_module(structure):
        cnt = itertools.count()
        d = collections.defaultdict(lambda: next(cnt))
        return ds.partition_n(lambda m, n, v: d[m], structure, len(structure))

    structure = {f'layer_{i}': {'w': None, 'b': None} for i in range(3)}
    assert [repr(s) for s in partition_by_module(structure)] == [
        "{'layer_0': {'b': None, 'w': None}}",
        "{'layer_1': {'b': None, 'w': None}}",
        "{'layer_2': {'b': None, 'w': None}}",
    ]


def test_tree_size_resnet50_example():
    # The documented numbers, on the abstract ResNet50 parameters (no compute needed).
    f = haiku.transform_with_state(lambda x: haiku.nets.ResNet50(1000)(x, True))
    params, _ = jax.eval_shape(f.init, jax.random.PRNGKey(42), jnp.ones([1, 224, 224, 3]))
    assert ds.tree_size(params) == 25557032
    assert f"{ds.tree_bytes(params) / 1e6:.2f}MB" == "102.23MB"
    params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16), params)
    assert ds.tree_size(params) == 25557032
    assert f"{ds.tree_bytes(params) / 1e6:.2f}MB" == "51.11MB"


# ---------------------------------------------------------------------------------------------
# Specific behaviours.


def test_outputs_are_sorted_new_dicts_without_empty_modules():
    structure = {'b': {'z': 1, 'a': 2}, 'a': {'w': 3}, 'e': {}}
    for out in [ds.filter(lambda *_: True, structure), ds.map(lambda m, n, v: v, structure),
                ds.partition(lambda *_: True, structure)[0], ds.merge(structure)]:
        assert out == {'a': {'w': 3}, 'b': {'a': 2, 'z': 1}}
        assert list(out) == ['a', 'b'] and list(out['b']) == ['a', 'z']
        assert out is not structure and out['a'] is not structure['a']
    assert ds.partition(lambda *_: True, structure)[1] == {}
    assert ds.merge() == {}


def test_merge_order_and_last_value_wins():
    merged = ds.merge({'b': {'w': 1}}, {'a': {'w': 1}}, {'b': {'a': 3, 'w': 4}})
    assert repr(merged) == "{'b': {'w': 4, 'a': 3}, 'a': {'w': 1}}"


@pytest.mark.parametrize("first,second,described", [
    (jnp.ones(2), jnp.ones(3), r"f32\[2\] vs f32\[3\]"),
    (jnp.ones(2), jnp.ones(2, jnp.int32), r"f32\[2\] vs s32\[2\]"),
    (np.ones((2, 3)), jnp.ones((2, 3), jnp.bfloat16), r"f64\[2,3\] vs bf16\[2,3\]"),
    (1, np.ones(3), r"1 vs f64\[3\]"),
])
def test_merge_check_duplicates_errors(first, second, described):
    with pytest.raises(ValueError, match=r"duplicate entry mod.w with different shape/dtype: "
                                         + described):
        ds.merge({'mod': {'w': first}}, {'mod': {'w': second}}, check_duplicates=True)
    with pytest.raises(ValueError, match=r"Duplicate array found with different shape/dtype"):
        hds.merge({'mod': {'w': first}}, {'mod': {'w': second}}, check_duplicates=True)


def test_merge_check_duplicates_allows_same_shape_and_dtype():
    a, b = {'m': {'w': jnp.ones(2), 's': 1}}, {'m': {'w': jnp.zeros(2), 's': 2.0}}
    assert_same(hds.merge(a, b, check_duplicates=True), ds.merge(a, b, check_duplicates=True))


def test_partition_n_bad_bucket():
    with pytest.raises(ValueError, match=r"fn returned bucket 5 for m.w, which is not in range "
                                         r"\[0, 2\)"):
        ds.partition_n(lambda *_: 5, {'m': {'w': 1}}, 2)
    with pytest.raises(ValueError, match=r"fn returned bucket -1"):
        ds.partition_n(lambda *_: -1, {'m': {'w': 1}}, 2)
    with pytest.raises(TypeError, match=r"fn returned 1.0 \(type float\) for m.w; it must return "
                                        r"an integer"):
        ds.partition_n(lambda *_: 1.0, {'m': {'w': 1}}, 2)
    # numpy / jax integer scalars are fine.
    assert ds.partition_n(lambda *_: jnp.int32(1), {'m': {'w': 1}}, 2) == ({}, {'m': {'w': 1}})


def test_traverse_needs_two_levels():
    with pytest.raises(TypeError, match=r"value for module 'a' is a int, not a mapping"):
        list(ds.traverse({'a': 1}))


def test_is_subset_is_keyword_only_and_ignores_values():
    with pytest.raises(TypeError):
        ds.is_subset({}, {})  # pylint: disable=too-many-function-args
    assert ds.is_subset(subset={'a': {'w': 99}}, superset={'a': {'w': 3}})
    assert not ds.is_subset(subset={'a': {'q': 3}}, superset={'a': {'w': 3}})


def test_to_haiku_dict_copies_two_levels():
    params = {'a': {'b': {'c': 1}}, 'x': 1}
    copy = ds.to_haiku_dict(params)
    assert copy == params and copy is not params and copy['a'] is not params['a']
    assert copy['a']['b'] is params['a']['b']


def test_to_mutable_dict_keeps_plain_dicts():
    params = {'a': {'w': 1}}
    out = ds.to_mutable_dict(params)
    assert out is not params and out['a'] is params['a']


def test_immutable_dict():
    params = {'b_mod': {'z': 1, 'a': 2}, 'a_mod': {'w': 3}}
    frozen = ds.to_immutable_dict(params)
    h_frozen = hds.to_immutable_dict(params)
    assert repr(frozen) == repr(h_frozen)
    for example in [{'k%02d' % i: i for i in range(n)} for n in (7, 8)] + [
            {'a' * 64: 1}, {'a' * 65: 1}, {'a' * 56: 1, 'b': 2}, {'a' * 57: 1, 'b': 2}, {},
            {'a' * 30: {'b' * 30: {'c' * 30: 1, 'd': 2}}, 'e': 1},
            {'a': {'b': {'c': 1, 'd': {'e': 'x' * 60}}}},
            {'m': {'w': jnp.ones((2, 2)), 'b': 1}},
            {'b_mod': {'z': 1, 'a': 2}, 'a_mod': {'w': 3, 'b': 4}}]:
        assert repr(ds.to_immutable_dict(example)) == repr(hds.to_immutable_dict(example))
    assert ds.to_immutable_dict(frozen) is frozen
    assert frozen == params and params == frozen and frozen == h_frozen
    assert list(frozen) == ['b_mod', 'a_mod'] and list(frozen['b_mod']) == ['z', 'a']
    reordered = ds.to_immutable_dict({'a_mod': {'w': 3}, 'b_mod': {'a': 2, 'z': 1}})
    assert hash(frozen) == hash(reordered)
    with pytest.raises(TypeError, match="does not support item assignment"):
        frozen['c'] = 1
    with pytest.raises(TypeError, match="does not support item assignment"):
        frozen['a_mod']['w'] = 1
    with pytest.raises(AttributeError, match="FlatMap is immutable"):
        frozen.x = 1
    params['a_mod']['w'] = 10  # a copy: later changes to the input do not show
    assert frozen['a_mod']['w'] == 3
    assert pickle.loads(pickle.dumps(frozen)) == frozen
    # A pytree, flattened like the equivalent dict (sorted keys).
    assert jax.tree.leaves(frozen) == jax.tree.leaves(h_frozen) == [3, 2, 1]
    doubled = jax.tree.map(lambda x: 2 * x, frozen)
    assert isinstance(doubled, type(frozen))
    assert doubled == {'a_mod': {'w': 6}, 'b_mod': {'a': 4, 'z': 2}}
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(frozen)]
    assert paths == ["['a_mod']['w']", "['b_mod']['a']", "['b_mod']['z']"]
    frozen_arrays = ds.to_immutable_dict({'m': {'w': jnp.ones(2)}})
    out = jax.jit(lambda t: jax.tree.map(lambda x: x + 1, t))(frozen_arrays)
    np.testing.assert_array_equal(out['m']['w'], [2.0, 2.0])


def test_tree_size_and_bytes():
    tree = {'a': jnp.ones((2, 3)), 'b': [np.ones(4), jax.ShapeDtypeStruct((5,), jnp.bfloat16)]}
    assert ds.tree_size(tree) == 15 == hds.tree_size(tree)
    assert ds.tree_bytes(tree) == 6 * 4 + 4 * 8 + 5 * 2 == hds.tree_bytes(tree)
    tree = [jnp.ones(3, jnp.bool_), jnp.ones(2, jnp.complex64), jnp.ones(1, jnp.int8)]
    assert ds.tree_bytes(tree) == 3 + 16 + 1
    assert ds.tree_size({}) == ds.tree_bytes({}) == ds.tree_size(None) == 0
    assert ds.tree_size(np.float32(1.0)) == 1 and ds.tree_bytes(np.float32(1.0)) == 4


def test_tree_size_rejects_non_arrays():
    with pytest.raises(TypeError, match=r"tree_size expects a pytree of arrays, but the leaf at "
                                        r"\['b'\]\[1\] is a float"):
        ds.tree_size({'a': jnp.ones(2), 'b': [jnp.ones(1), 1.0]})
    with pytest.raises(TypeError, match=r"tree_bytes expects a pytree of arrays, but the leaf at "
                                        r"the root is a str"):
        ds.tree_bytes("abc")


def test_transform_outputs_work():
    f = hk.transform(lambda: [hk.get_parameter("w", [2, 3], init=jnp.ones),
                              hk.get_parameter("b", [3], init=jnp.zeros)])
    params = f.init(jax.random.PRNGKey(0))
    assert ds.tree_size(params) == 9 and ds.tree_bytes(params) == 36
    weights, biases = ds.partition(lambda m, n, v: n == "w", params)
    assert list(weights["~"]) == ["w"] and list(biases["~"]) == ["b"]
    assert_same(params["~"]["w"], ds.merge(biases, weights)["~"]["w"])


def test_flat_map_survives_jax_export_serialisation():
    params = hk.data_structures.to_haiku_dict({"mlp/~/linear_0": {"w": jnp.ones([2, 2])}})
    flat = hk.data_structures.to_immutable_dict(params)
    exported = jax.export.export(jax.jit(lambda p: jax.tree.map(lambda a: a * 2, p)))(flat)
    restored = jax.export.deserialize(exported.serialize())
    out = restored.call(flat)
    assert isinstance(out, type(flat))
    assert list(out) == ["mlp/~/linear_0"]
    np.testing.assert_array_equal(out["mlp/~/linear_0"]["w"], 2 * np.ones([2, 2]))
