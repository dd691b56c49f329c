"""Tests of ``to_dot`` and ``abstract_to_dot``: well-formed DOT naming every module."""

import re

import jax
import jax.numpy as jnp
import pytest

import senryu as hk
from senryu.experimental.dot import abstract_to_dot, to_dot

_STRING = r'"(?:[^"\\]|\\.)*"'
_ATTR = rf'\w+=(?:{_STRING}|[\w.#]+)'
_PATTERNS = {
    "open_graph": re.compile(r"digraph \w+ \{"),
    "open_cluster": re.compile(r"subgraph (cluster_\d+) \{"),
    "close": re.compile(r"\}"),
    "attribute": re.compile(rf"{_ATTR};"),
    "node": re.compile(rf"(\w+) \[{_ATTR}(?:, {_ATTR})*\];"),
    "edge": re.compile(r"(\w+) -> (\w+);"),
}


def parse_dot(source):
    """A small structural DOT check; returns nodes {id: label}, edges, and clusters.

    Clusters are {cluster_id: (label, parent_cluster_id, [node ids])}.
    """
    lines = [line.strip() for line in source.strip().splitlines()]
    assert _PATTERNS["open_graph"].fullmatch(lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes, edges, clusters, stack = {}, [], {}, []
    depth = 0
    for line in lines:
        kind = next((k for k, p in _PATTERNS.items() if p.fullmatch(line)), None)
        assert kind is not None, f"malformed DOT line: {line!r}"
        if kind in ("open_graph", "open_cluster"):
            depth += 1
            if kind == "open_cluster":
                name = _PATTERNS["open_cluster"].fullmatch(line).group(1)
                clusters[name] = [None, stack[-1] if stack else None, []]
                stack.append(name)
        elif kind == "close":
            depth -= 1
            assert depth >= 0, "unbalanced braces"
            if depth >= 1:
                stack.pop()
        elif kind == "attribute" and line.startswith("label=") and stack:
            clusters[stack[-1]][0] = eval(line[len("label="):-1])  # a DOT/Python string
        elif kind == "node" and not line.startswith("node "):
            node_id = _PATTERNS["node"].fullmatch(line).group(1)
            assert node_id not in nodes, f"node {node_id} declared twice"
            label = re.search(rf"label=({_STRING})", line).group(1)
            nodes[node_id] = eval(label).replace("\\n", "\n")
            if stack:
                clusters[stack[-1]][2].append(node_id)
        elif kind == "edge":
            edges.append(_PATTERNS["edge"].fullmatch(line).groups())
    assert depth == 0, "unbalanced braces"
    for source_id, target_id in edges:
        assert source_id in nodes and target_id in nodes, (source_id, target_id)
    return nodes, edges, {k: tuple(v) for k, v in clusters.items()}


def test_plain_function():
    def f(a):
        b = jnp.sin(a)
        c = jnp.cos(b)
        d = b + c
        return a + d

    nodes, edges, clusters = parse_dot(to_dot(f)(jnp.ones([1])))
    assert clusters == {}
    by_label = {}
    for node_id, label in nodes.items():
        by_label.setdefault(label.split("\n")[0], []).append(node_id)
    assert sorted(by_label) == ["add", "args[0]", "cos", "output", "sin"]
    assert all(label.endswith("f32[1]") for label in nodes.values())
    (arg,), (sin,), (cos,), (out,) = (by_label[k] for k in ("args[0]", "sin", "cos", "output"))
    add_d, add_e = by_label["add"]
    assert sorted(edges) == sorted([(arg, sin), (sin, cos), (sin, add_d), (cos, add_d),
                                    (arg, add_e), (add_d, add_e), (add_e, out)])


def mlp_dot(make_dot, x):
    f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    params = f.init(jax.random.PRNGKey(42), jnp.ones(x.shape))
    return make_dot(f.apply)(params, None, x)


def test_modules_are_clusters():
    nodes, edges, clusters = parse_dot(mlp_dot(to_dot, jnp.ones([1, 4])))
    labels = {label: (parent, members) for label, parent, members in clusters.values()}
    assert sorted(labels) == ["mlp (MLP)", "mlp/~/linear_0 (Linear)", "mlp/~/linear_1 (Linear)"]
    mlp_cluster = next(k for k, v in clusters.items() if v[0] == "mlp (MLP)")
    for name in ("mlp/~/linear_0 (Linear)", "mlp/~/linear_1 (Linear)"):
        parent, members = labels[name]
        assert parent == mlp_cluster
        ops = sorted(nodes[n].split("\n")[0] for n in members)
        assert ops == ["add", "broadcast_in_dim", "dot_general"]
    assert [nodes[n].split("\n")[0] for n in labels["mlp (MLP)"][1]] == ["custom_jvp_call[relu]"]
    inputs = sorted(label.split("\n")[0] for label in nodes.values() if label.startswith("args"))
    assert inputs == ["args[0]['mlp/~/linear_0']['b']", "args[0]['mlp/~/linear_0']['w']",
                      "args[0]['mlp/~/linear_1']['b']", "args[0]['mlp/~/linear_1']['w']",
                      "args[2]"]
    outputs = [label for label in nodes.values() if label.startswith("output")]
    assert outputs == ["output\nf32[1,2]"]


def test_abstract_to_dot_matches_to_dot():
    concrete = mlp_dot(to_dot, jnp.ones([2, 4]))
    abstract = mlp_dot(abstract_to_dot, jax.ShapeDtypeStruct((2, 4), jnp.float32))
    assert abstract == concrete
    f = hk.transform(lambda x: hk.Linear(2)(x))
    x = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    params = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)  # all abstract
    nodes, _, clusters = parse_dot(abstract_to_dot(f.apply)(params, None, x))
    assert [c[0] for c in clusters.values()] == ["linear (Linear)"]


class Model(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.encoder = hk.Linear(3, name="encoder")

    def encode(self, x):
        return self.encoder(x)

    def __call__(self, x, *, shift):
        h = hk.jit(lambda h: jax.nn.sigmoid(hk.Linear(2, name="jitted")(h)))(self.encode(x))
        Identity()(h)
        return {"h": h + shift, "n": jnp.zeros([], jnp.int32)}


class Identity(hk.Module):
    def __call__(self, x):
        return x


def test_methods_jit_empty_modules_kwargs_and_tree_outputs():
    f = hk.transform(lambda x, shift: Model()(x, shift=shift))
    x = jnp.ones([1, 4])
    params = f.init(jax.random.PRNGKey(0), x, shift=1.0)
    source = to_dot(f.apply)(params, None, x, shift=jnp.float32(2.0))
    nodes, edges, clusters = parse_dot(source)
    labels = sorted(c[0] for c in clusters.values())
    assert labels == ["model (Model)", "model (Model.encode)", "model/identity (Identity)",
                      "model/jitted (Linear)", "model/~/encoder (Linear)"]
    # The module called inside `hk.jit` still gets its operations.
    jitted = next(c for c in clusters.values() if c[0] == "model/jitted (Linear)")
    assert "dot_general" in [nodes[n].split("\n")[0] for n in jitted[2]]
    # A module doing no operation is still named (with an invisible placeholder node).
    assert "empty_" in source and 'label="model/identity (Identity)";' in source
    assert "kwargs['shift']\nf32[]" in nodes.values()
    assert sorted(v for v in nodes.values() if v.startswith("output")) == [
        "output['h']\nf32[1,2]", "output['n']\ns32[]"]


def test_python_scalars_and_flags_are_static():
    def f(x, is_training, scale=2):
        assert isinstance(is_training, bool) and isinstance(scale, int)
        return x * scale if is_training else x

    nodes, _, _ = parse_dot(to_dot(f)(jnp.ones([2]), True, scale=3))
    assert sorted(label.split("\n")[0] for label in nodes.values()) == ["args[0]", "mul", "output"]


def test_function_name_is_graph_label():
    def my_function(x):
        return x + 1

    assert 'label="my_function";' in to_dot(my_function)(jnp.ones([1]))


def test_output_that_is_an_input_or_constant():
    nodes, edges, _ = parse_dot(to_dot(lambda x: (x, 3.0))(jnp.ones([1])))
    arg = next(k for k, v in nodes.items() if v.startswith("args[0]"))
    out0 = next(k for k, v in nodes.items() if v.startswith("output[0]"))
    assert (arg, out0) in edges
    assert any(v.startswith("output[1]") for v in nodes.values())


@pytest.mark.parametrize("api", [to_dot, abstract_to_dot])
def test_misuse(api):
    with pytest.raises(TypeError, match=r"expects a function.*got int"):
        api(3)
    with pytest.raises(TypeError):
        api(lambda x: x.reshape([7]))(jnp.ones([2]))


@pytest.mark.parametrize("jit", [False, True])
def test_captured_constants_and_key_inputs(jit):
    import numpy as np

    c = np.arange(1000.0, dtype=np.float32)
    f = (lambda x, key: x + jnp.asarray(c) + jax.random.normal(key, [1000]))
    nodes, edges, _ = parse_dot(to_dot(jax.jit(f) if jit else f)(jnp.ones([1000]),
                                                                 jax.random.key(0)))
    const = [k for k, v in nodes.items() if v == "const\nf32[1000]"]
    assert len(const) == 1 and any(src == const[0] for src, _ in edges)
    assert "args[1]\nkey<fry>[]" in nodes.values()
    assert 'rankdir=TB;' in to_dot(f)(jnp.ones([1000]), jax.random.key(0))
