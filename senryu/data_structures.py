"""Utilities for the two-level parameter/state structures ``{module_name: {name: value}}``.

senryu's ``init``/``apply`` return plain nested ``dict``s; the functions here filter, map, merge,
partition and measure such structures. Like dm-haiku 0.0.17, the functions that build a new
structure return plain ``dict``s whose keys are in sorted order (they iterate with
:func:`traverse`), and leave out modules that end up empty.
"""

from __future__ import annotations

import collections.abc
import json
import operator
from collections.abc import Callable, Generator, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

import jax
import numpy as np

__all__ = [
    "filter",
    "is_subset",
    "map",
    "merge",
    "partition",
    "partition_n",
    "to_haiku_dict",
    "to_immutable_dict",
    "to_mutable_dict",
    "traverse",
    "tree_bytes",
    "tree_size",
]

T = TypeVar("T")
InT = TypeVar("InT")
OutT = TypeVar("OutT")
K = TypeVar("K")
V = TypeVar("V")

# ---------------------------------------------------------------------------------------------
# FlatMap: the immutable mapping returned by to_immutable_dict.


class FlatMap(Mapping):
    """An immutable, hashable mapping that is a JAX pytree (what :func:`to_immutable_dict` returns).

    Nested mappings are converted to ``FlatMap`` too. It compares equal to a ``dict`` with the same
    items, and flattens like a ``dict`` (values in sorted key order).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> m = hk.data_structures.to_immutable_dict({"linear": {"w": 1.0}})
    >>> m
    FlatMap({'linear': FlatMap({'w': 1.0})})
    >>> m == {"linear": {"w": 1.0}}
    True
    >>> jax.tree_util.tree_map(lambda x: 2 * x, m)
    FlatMap({'linear': FlatMap({'w': 2.0})})
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, mapping: Mapping[Any, Any] | collections.abc.Iterable = ()):
        data = dict(mapping)
        for key, value in data.items():
            if isinstance(value, Mapping) and not isinstance(value, FlatMap):
                data[key] = FlatMap(value)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _from_dict(cls, data: dict) -> FlatMap:
        # Used by unflatten: children may be tracers or placeholders, so no conversion.
        self = object.__new__(cls)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_hash", None)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"FlatMap is immutable: cannot set attribute {name!r}. Convert it "
                             f"with hk.data_structures.to_mutable_dict(...) to modify it.")

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(frozenset(self._data.items())))
        return self._hash

    def __reduce__(self):
        return (FlatMap, (self._data,))

    def __repr__(self) -> str:
        # Haiku's layout: one line when it fits in 80 characters, else one item per line.
        items = [(repr(k), repr(v)) for k, v in self._data.items()]
        one_line = "FlatMap({" + ", ".join(f"{k}: {v}" for k, v in items) + "})"
        if len(one_line) <= 80:
            return one_line
        lines = ["FlatMap({"]
        for k, v in items:
            prefix = f"  {k}: "
            lines.append(prefix + v.replace("\n", "\n" + " " * len(prefix)) + ",")
        lines.append("})")
        return "\n".join(lines)

    __str__ = __repr__


def _sorted_keys(data: dict) -> list:
    try:
        return sorted(data)
    except TypeError:  # keys of mixed types: keep insertion order
        return list(data)


def _flatten_with_keys(m: FlatMap):
    keys = _sorted_keys(m._data)
    return [(jax.tree_util.DictKey(k), m._data[k]) for k in keys], tuple(keys)


def _flatten(m: FlatMap):
    keys = _sorted_keys(m._data)
    return [m._data[k] for k in keys], tuple(keys)


def _unflatten(keys: tuple, children) -> FlatMap:
    return FlatMap._from_dict(dict(zip(keys, children)))


jax.tree_util.register_pytree_with_keys(FlatMap, _flatten_with_keys, _unflatten, _flatten)
# Exported functions (jax.export) taking or returning a FlatMap can be serialised; the keys
# (module and parameter names) travel as JSON.
jax.export.register_pytree_node_serialization(
    FlatMap, serialized_name="senryu.FlatMap",
    serialize_auxdata=lambda keys: json.dumps(list(keys)).encode(),
    deserialize_auxdata=lambda data: tuple(json.loads(data.decode())))


# ---------------------------------------------------------------------------------------------
# Conversions.


def to_haiku_dict(structure: Mapping[K, V]) -> MutableMapping[K, V]:
    """Returns a copy of a two-level structure as the mapping type ``init``/``apply`` return.

    The outer mapping and each inner mapping are copied into new ``dict``s (deeper levels are
    shared, not copied).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {"linear": {"w": 1.0}}
    >>> copy = hk.data_structures.to_haiku_dict(params)
    >>> copy, copy is params, copy["linear"] is params["linear"]
    ({'linear': {'w': 1.0}}, False, False)
    """
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in structure.items()}


def to_immutable_dict(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """Returns an immutable copy of ``mapping`` (nested mappings become immutable too).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> frozen = hk.data_structures.to_immutable_dict({"linear": {"w": 1.0}})
    >>> frozen["linear"]["w"]
    1.0
    >>> frozen["linear"]["w"] = 2.0
    Traceback (most recent call last):
    ...
    TypeError: 'FlatMap' object does not support item assignment
    """
    if isinstance(mapping, FlatMap):
        return mapping
    return FlatMap(mapping)


def to_mutable_dict(mapping: Mapping[K, V]) -> MutableMapping[K, V]:
    """Turns an immutable mapping (from :func:`to_immutable_dict`) into a mutable ``dict``.

    Immutable values are converted recursively; other values (including plain ``dict``s) are
    kept as they are, not copied.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> frozen = hk.data_structures.to_immutable_dict({"linear": {"w": 1.0}})
    >>> hk.data_structures.to_mutable_dict(frozen)
    {'linear': {'w': 1.0}}
    """
    return {k: to_mutable_dict(v) if isinstance(v, FlatMap) else v for k, v in mapping.items()}


# ---------------------------------------------------------------------------------------------
# Traversal and transformations.


def traverse(structure: Mapping[str, Mapping[str, T]]) -> Generator[tuple[str, str, T], None, None]:
    """Iterates over a structure yielding ``(module_name, name, value)``, in sorted key order.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {"linear": {"w": 1.0, "b": 2.0}, "conv": {"w": 3.0}}
    >>> list(hk.data_structures.traverse(params))
    [('conv', 'w', 3.0), ('linear', 'b', 2.0), ('linear', 'w', 1.0)]
    """
    for module_name in sorted(structure):
        bundle = structure[module_name]
        if not isinstance(bundle, Mapping):
            raise TypeError(
                f"Expected a two-level structure {{module_name: {{name: value}}}}, but the value "
                f"for module {module_name!r} is a {type(bundle).__name__}, not a mapping."
            )
        for name in sorted(bundle):
            yield module_name, name, bundle[name]


def filter(  # pylint: disable=redefined-builtin
    predicate: Callable[[str, str, T], bool],
    structure: Mapping[str, Mapping[str, T]],
) -> Mapping[str, Mapping[str, T]]:
    """Returns a new structure with only the entries for which ``predicate(module, name, value)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {'linear': {'w': None, 'b': None}}
    >>> predicate = lambda module_name, name, value: name == 'w'
    >>> hk.data_structures.filter(predicate, params)
    {'linear': {'w': None}}
    """
    out: dict[str, dict[str, T]] = {}
    for module_name, name, value in traverse(structure):
        if predicate(module_name, name, value):
            out.setdefault(module_name, {})[name] = value
    return out


def map(  # pylint: disable=redefined-builtin
    fn: Callable[[str, str, InT], OutT],
    structure: Mapping[str, Mapping[str, InT]],
) -> Mapping[str, Mapping[str, OutT]]:
    """Returns a new structure with each value replaced by ``fn(module_name, name, value)``.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {'linear': {'w': 1.0, 'b': 2.0}}
    >>> fn = lambda module_name, name, value: 2 * value if name == 'w' else value
    >>> hk.data_structures.map(fn, params)
    {'linear': {'b': 2.0, 'w': 2.0}}
    """
    out: dict[str, dict[str, OutT]] = {}
    for module_name, name, value in traverse(structure):
        out.setdefault(module_name, {})[name] = fn(module_name, name, value)
    return out


def _describe(value: Any) -> str:
    """``f32[2,3]`` for arrays (and anything with shape and dtype), ``repr`` otherwise."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        name = np.dtype(value.dtype).name
        for long, short in (("bfloat", "bf"), ("float", "f"), ("complex", "c"), ("uint", "u"),
                            ("int", "s")):
            name = name.replace(long, short)
        return f"{name}[{','.join(str(d) for d in value.shape)}]"
    return repr(value)


def _shape_dtype(value: Any) -> tuple | None:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return tuple(value.shape), np.dtype(value.dtype)
    return None


def merge(
    *structures: Mapping[str, Mapping[str, Any]],
    check_duplicates: bool = False,
) -> MutableMapping[str, MutableMapping[str, Any]]:
    """Merges structures into a new one; for a path present in several, the last value wins.

    Args:
      *structures: the structures to merge.
      check_duplicates: if True, raise a ``ValueError`` when a path appears in several structures
        with values of different shape or dtype.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> weights = {'linear': {'w': None}}
    >>> biases = {'linear': {'b': None}}
    >>> hk.data_structures.merge(weights, biases)
    {'linear': {'w': None, 'b': None}}
    >>> hk.data_structures.merge({'linear': {'w': 1}}, {'linear': {'w': 2}})
    {'linear': {'w': 2}}
    """
    out: dict[str, dict[str, Any]] = {}
    for structure in structures:
        for module_name, name, value in traverse(structure):
            bundle = out.setdefault(module_name, {})
            if check_duplicates and name in bundle:
                previous = bundle[name]
                if _shape_dtype(previous) != _shape_dtype(value):
                    raise ValueError(
                        f"merge(check_duplicates=True): duplicate entry {module_name}.{name} with "
                        f"different shape/dtype: {_describe(previous)} vs {_describe(value)}. "
                        f"Make the structures agree, or pass check_duplicates=False to keep the "
                        f"last value."
                    )
            bundle[name] = value
    return out


def partition(
    predicate: Callable[[str, str, jax.Array], bool],
    structure: Mapping[str, Mapping[str, T]],
) -> tuple[Mapping[str, Mapping[str, T]], Mapping[str, Mapping[str, T]]]:
    """Splits a structure in two: entries matching ``predicate(module, name, value)``, and the rest.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {'linear': {'w': None, 'b': None}}
    >>> predicate = lambda module_name, name, value: name == 'w'
    >>> weights, biases = hk.data_structures.partition(predicate, params)
    >>> weights
    {'linear': {'w': None}}
    >>> biases
    {'linear': {'b': None}}
    """
    true: dict[str, dict[str, T]] = {}
    false: dict[str, dict[str, T]] = {}
    for module_name, name, value in traverse(structure):
        out = true if predicate(module_name, name, value) else false
        out.setdefault(module_name, {})[name] = value
    return true, false


def partition_n(
    fn: Callable[[str, str, T], int],
    structure: Mapping[str, Mapping[str, T]],
    n: int,
) -> tuple[Mapping[str, Mapping[str, T]], ...]:
    """Splits a structure into ``n`` structures; ``fn(module, name, value)`` picks the bucket.

    >>> import collections
    >>> import itertools
    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> def partition_by_module(structure):
    ...     cnt = itertools.count()
    ...     d = collections.defaultdict(lambda: next(cnt))
    ...     fn = lambda m, n, v: d[m]
    ...     return hk.data_structures.partition_n(fn, structure, len(structure))
    >>> structure = {f'layer_{i}': {'w': None, 'b': None} for i in range(3)}
    >>> for substructure in partition_by_module(structure):
    ...     print(substructure)
    {'layer_0': {'b': None, 'w': None}}
    {'layer_1': {'b': None, 'w': None}}
    {'layer_2': {'b': None, 'w': None}}
    """
    outs: list[dict[str, dict[str, T]]] = [{} for _ in range(n)]
    for module_name, name, value in traverse(structure):
        bucket = fn(module_name, name, value)
        try:
            index = operator.index(bucket)
        except TypeError:
            raise TypeError(
                f"partition_n: fn returned {bucket!r} (type {type(bucket).__name__}) for "
                f"{module_name}.{name}; it must return an integer bucket index in [0, {n})."
            ) from None
        if not 0 <= index < n:
            raise ValueError(
                f"partition_n: fn returned bucket {index} for {module_name}.{name}, which is not "
                f"in range [0, {n}). Return an index below n={n}, or increase n."
            )
        outs[index].setdefault(module_name, {})[name] = value
    return tuple(outs)


def is_subset(
    *,
    subset: Mapping[str, Mapping[str, Any]],
    superset: Mapping[str, Mapping[str, Any]],
) -> bool:
    """Checks whether every ``(module_name, name)`` path of ``subset`` is also in ``superset``.

    Only paths are compared, not values. This is vacuously true when ``subset`` has no leaves:

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> hk.data_structures.is_subset(subset={'a': {}}, superset={})
    True
    >>> hk.data_structures.is_subset(subset={'a': {'w': 0}}, superset={'a': {'w': 1, 'b': 2}})
    True
    >>> hk.data_structures.is_subset(subset={'a': {'w': 0}}, superset={'b': {'w': 0}})
    False
    """
    paths = {(m, n) for m, n, _ in traverse(superset)}
    return all((m, n) in paths for m, n, _ in traverse(subset))


# ---------------------------------------------------------------------------------------------
# Sizes.


def _leaves_with_size(tree: Any, who: str) -> list:
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    for path, leaf in leaves:
        if not (hasattr(leaf, "size") and hasattr(leaf, "dtype")):
            where = jax.tree_util.keystr(path) or "the root"
            raise TypeError(
                f"{who} expects a pytree of arrays, but the leaf at {where} is a "
                f"{type(leaf).__name__} ({leaf!r}). Convert it with jnp.asarray first."
            )
    return [leaf for _, leaf in leaves]


def tree_size(tree: Any) -> int:
    """Total number of elements of all arrays in a pytree.

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {'linear': {'w': jnp.ones([3, 4]), 'b': jnp.ones([4])}}
    >>> hk.data_structures.tree_size(params)
    16
    """
    return int(sum(int(leaf.size) for leaf in _leaves_with_size(tree, "tree_size")))


def tree_bytes(tree: Any) -> int:
    """Total size in bytes of all arrays in a pytree (the minimum; devices may pad buffers).

    >>> import senryu as hk
    >>> import jax
    >>> import jax.numpy as jnp
    >>> params = {'linear': {'w': jnp.ones([3, 4]), 'b': jnp.ones([4], jnp.bfloat16)}}
    >>> hk.data_structures.tree_bytes(params)  # 12 * 4 + 4 * 2
    56
    """
    return int(sum(int(leaf.size) * np.dtype(leaf.dtype).itemsize
                   for leaf in _leaves_with_size(tree, "tree_bytes")))
