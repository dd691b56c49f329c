"""Tests of ``eval_summary``, ``tabulate`` and their records, with dm-haiku 0.0.17 as the oracle."""

import dataclasses
import re

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from senryu.experimental import summarise
from senryu.experimental.summarise import (ArraySpec, MethodInvocation, ModuleDetails,
                                           eval_summary, tabulate)

LIBS = (hk, haiku)


def make_classes(lib):
    """The same custom modules, written against either library."""

    class Block(lib.Module):
        def __init__(self, size, name=None):
            super().__init__(name=name)
            self.size = size
            self.inner = lib.Linear(size, name="inner")

        def __call__(self, x, *, scale=None, flag=True):
            count = lib.get_state("count", [], jnp.int32, jnp.zeros)
            lib.set_state("count", count + 1)
            g = lib.get_parameter("gain", [self.size], jnp.bfloat16, jnp.ones)
            y = self.inner(x) * g.astype(jnp.float32)
            if scale is not None:
                y = y * scale
            self.side(y)
            return {"y": y, "count": count, "n": 3}, (y.astype(jnp.int8), None)

        def side(self, y):
            del y
            return None

        def summary(self):
            return jnp.zeros([2], jnp.uint8)

    class Net(lib.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.a = Block(4)
            self.b = Block(2, name="second")

        def __call__(self, x):
            out, _ = self.a(x, scale=jnp.ones([], jnp.float16), flag=False)
            out2, extra = self.b(out["y"])
            return out2["y"], extra, self.b.summary()

    return Block, Net


def networks(lib):
    """(name, function of x, input) for several networks."""
    _, Net = make_classes(lib)

    def conv_bn(x):
        x = lib.Conv2D(3, 3)(x)
        x = lib.BatchNorm(True, True, 0.9)(x, is_training=True)
        return lib.Linear(2)(jax.nn.relu(x).reshape([x.shape[0], -1]))

    def nested_sequential(x):
        inner = lib.Sequential([lib.Linear(3)], name="inner")
        return lib.Sequential([inner, jax.nn.relu, lib.Linear(2)], name="outer")(x)

    def shared_layer(x):
        layer = lib.Linear(2)
        a, b = lib.Sequential([layer], name="a"), lib.Sequential([layer], name="b")
        return b(a(x))

    return [
        ("nested_sequential", nested_sequential, jnp.ones([1, 2])),
        ("shared_layer", shared_layer, jnp.ones([1, 2])),
        ("mlp", lambda x: lib.nets.MLP([300, 100, 10])(x), jnp.ones([8, 28 * 28])),
        ("sequential", lambda x: lib.Sequential([lib.Linear(3), jax.nn.relu, lib.Linear(2)])(x),
         jnp.ones([2, 5])),
        ("custom", lambda x: Net()(x), jnp.ones([3, 5])),
        ("conv_bn", conv_bn, jnp.ones([2, 4, 4, 1])),
        ("layer_norm", lambda x: lib.LayerNorm(-1, True, True)(lib.Linear(6)(x)),
         jnp.ones([2, 3], jnp.bfloat16)),
    ]


NETWORK_NAMES = [name for name, _, _ in networks(hk)]


def comparable(invocation):
    d = invocation.module_details
    return (d.module.module_name, type(d.module).__name__, d.method_name,
            repr(invocation.args_spec), repr(invocation.kwargs_spec),
            repr(invocation.output_spec), repr(d.params), repr(d.state),
            tuple((c.module.module_name, c.method_name) for c in invocation.call_stack),
            invocation.context.method_name, type(invocation.context.module).__name__)


def network(lib, name):
    return next((f, x) for n, f, x in networks(lib) if n == name)


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_eval_summary_matches_haiku(name):
    (ours, x), (theirs, _) = network(hk, name), network(haiku, name)
    got = [comparable(i) for i in eval_summary(ours)(x)]
    expected = [comparable(i) for i in haiku.experimental.eval_summary(theirs)(x)]
    assert got == expected


def auto_repr_available():
    return not repr(hk.transform(lambda: hk.Linear(1)).apply({}, None)).startswith("<")


def table_columns():
    """All columns, except ``config`` (the modules' repr) while modules have no auto repr."""
    columns = summarise._DEFAULT_COLUMNS
    return columns if auto_repr_available() else tuple(c for c in columns if c != "config")


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_tabulate_matches_haiku(name):
    (ours, x), (theirs, _) = network(hk, name), network(haiku, name)
    columns = table_columns()
    expected = haiku.experimental.tabulate(theirs, columns=columns)(x)
    assert tabulate(ours, columns=columns)(x) == expected


@pytest.mark.parametrize("options", [
    dict(columns=("module", "input", "params_bytes"), filters=("has_params",)),
    dict(columns=("output", "module", "owned_params"), filters=()),
    dict(columns=("module", "params_size"), filters=None),
    dict(columns=("module", "output", "params_size"), tabulate_kwargs={"tablefmt": "github"}),
    dict(columns=("module", "input"), tabulate_kwargs={"tablefmt": "plain"}),
])
def test_tabulate_options_match_haiku(options):
    (ours, x), (theirs, _) = network(hk, "custom"), network(haiku, "custom")
    assert tabulate(ours, **options)(x) == haiku.experimental.tabulate(theirs, **options)(x)


def test_documented_mlp_table():
    """The spec's example: same rows, columns and numbers as the documentation shows."""
    f = hk.transform(lambda x: hk.nets.MLP([300, 100, 10])(x))
    table = tabulate(f)(jnp.ones([8, 28 * 28]))
    lines = table.splitlines()
    header = [c.strip() for c in lines[1].strip("|").split("|")]
    assert header == ["Module", "Config", "Module params", "Input", "Output", "Param count",
                      "Param bytes"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if line.startswith("|")][1:]
    firsts = [(r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows if r[0] and not r[0].startswith("└")]
    assert firsts == [
        ("mlp (MLP)", "", "f32[8,784]", "f32[8,10]", "266,610", "1.07 MB"),
        ("mlp/~/linear_0 (Linear)", "w: f32[784,300]", "f32[8,784]", "f32[8,300]", "235,500",
         "942.00 KB"),
        ("mlp/~/linear_1 (Linear)", "w: f32[300,100]", "f32[8,300]", "f32[8,100]", "30,100",
         "120.40 KB"),
        ("mlp/~/linear_2 (Linear)", "w: f32[100,10]", "f32[8,100]", "f32[8,10]", "1,010",
         "4.04 KB"),
    ]
    assert [r[2] for r in rows if r[0].startswith("└")] == ["b: f32[300]", "b: f32[100]",
                                                            "b: f32[10]"]
    assert [r[0] for r in rows if r[0].startswith("└")] == ["└ mlp (MLP)"] * 3


def test_config_column_is_the_module_repr():
    f = lambda x: hk.Linear(2, name="lin")(x)  # noqa: E731
    table = tabulate(f, columns=("config",), tabulate_kwargs={"tablefmt": "plain"})(
        jnp.ones([1, 3]))
    cell = table.splitlines()[1].strip()
    if auto_repr_available():
        assert cell == "Linear(output_size=2, name='lin')"
    else:
        assert re.fullmatch(r"<senryu\.[\w.]*Linear object at 0x[0-9a-f]+>", cell), cell


def test_documented_eval_summary_example():
    f = lambda x: hk.nets.MLP([300, 100, 10])(x)  # noqa: E731
    lines = ["mod := {:14} | in := {} out := {}".format(
        i.module_details.module.module_name, i.args_spec[0], i.output_spec)
        for i in eval_summary(f)(jnp.ones([8, 28 * 28]))]
    assert lines == ["mod := mlp            | in := f32[8,784] out := f32[8,10]",
                     "mod := mlp/~/linear_0 | in := f32[8,784] out := f32[8,300]",
                     "mod := mlp/~/linear_1 | in := f32[8,300] out := f32[8,100]",
                     "mod := mlp/~/linear_2 | in := f32[8,100] out := f32[8,10]"]


def test_invocation_records():
    _, Net = make_classes(hk)
    calls = eval_summary(lambda x: Net()(x))(jnp.ones([3, 5]))
    names = [(c.module_details.module.module_name, c.module_details.method_name) for c in calls]
    assert names == [("net", "__call__"), ("net/~/block", "__call__"),
                     ("net/~/block/~/inner", "__call__"), ("net/~/block", "side"),
                     ("net/~/second", "__call__"), ("net/~/second/~/inner", "__call__"),
                     ("net/~/second", "side"), ("net/~/second", "summary")]
    inner = calls[2]
    assert isinstance(inner, MethodInvocation) and isinstance(inner.module_details, ModuleDetails)
    assert [d.module.module_name for d in inner.call_stack] == [
        "net/~/block/~/inner", "net/~/block", "net"]
    assert inner.call_stack[0] is inner.module_details
    block = calls[1]
    assert block.kwargs_spec == {"flag": False, "scale": ArraySpec((), jnp.float16)}
    assert block.args_spec == (ArraySpec((3, 5), jnp.float32),)
    assert block.module_details.params == {
        "net/~/block/gain": ArraySpec((4,), jnp.bfloat16),
        "net/~/block/~/inner/b": ArraySpec((4,), jnp.float32),
        "net/~/block/~/inner/w": ArraySpec((5, 4), jnp.float32)}
    assert block.module_details.state == {"net/~/block/count": ArraySpec((), jnp.int32)}
    assert repr(block.output_spec) == (
        "({'count': s32[], 'n': 3, 'y': f32[3,4]}, (s8[3,4], None))")
    assert calls[3].output_spec is None
    assert block.context.module is block.module_details.module
    assert block.context.method_name == "__call__"
    with pytest.raises(dataclasses.FrozenInstanceError):
        block.output_spec = None


def test_child_created_in_call_owns_only_its_subtree():
    class Outer(hk.Module):
        def __call__(self, x):
            hk.get_parameter("p", [7], init=jnp.ones)
            return hk.Linear(2)(x)

    calls = eval_summary(lambda x: Outer()(x))(jnp.ones([1, 3]))
    assert sorted(calls[0].module_details.params) == ["outer/linear/b", "outer/linear/w",
                                                      "outer/p"]
    assert sorted(calls[1].module_details.params) == ["outer/linear/b", "outer/linear/w"]


@pytest.mark.parametrize("kind", ["transform_with_state", "without_apply_rng", "function"])
def test_transformed_inputs_and_shape_structs(kind):
    def f(x):
        counter = hk.get_state("c", [], init=jnp.zeros)
        hk.set_state("c", counter + 1)
        return hk.Linear(2)(x) + hk.next_rng_key().shape[0]

    target = {"transform_with_state": hk.transform_with_state(f),
              "without_apply_rng": hk.without_apply_rng(hk.transform_with_state(f)),
              "function": f}[kind]
    x = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    (call,) = eval_summary(target)(x)
    assert (call.args_spec, call.output_spec) == ((ArraySpec((4, 3), jnp.float32),),
                                                  ArraySpec((4, 2), jnp.float32))


def test_transform_without_state():
    f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    calls = eval_summary(f)(jnp.ones([1, 4]))
    assert [c.module_details.module.module_name for c in calls] == [
        "mlp", "mlp/~/linear_0", "mlp/~/linear_1"]


def test_records_apply_not_init():
    """Like Haiku, the calls recorded are those of ``apply``."""
    class Phase(hk.Module):
        def __call__(self, x):
            return x[:1] if hk.running_init() else x

    f = lambda x: Phase()(x)  # noqa: E731
    for target in (f, hk.transform_with_state(f)):
        (call,) = eval_summary(target)(jnp.ones([3]))
        assert call.output_spec == ArraySpec((3,), jnp.float32)


def test_records_apply_not_init_for_transform():
    class Phase(hk.Module):
        def __call__(self, x):
            return x[:1] if hk.running_init() else x

    (call,) = eval_summary(hk.transform(lambda x: Phase()(x)))(jnp.ones([3]))
    assert call.output_spec == ArraySpec((3,), jnp.float32)


def test_static_arguments_are_passed_unchanged():
    def f(x, is_training, size=3):
        assert isinstance(is_training, bool) and isinstance(size, int)
        return hk.Linear(size)(x) if is_training else x

    (call,) = eval_summary(f)(jnp.ones([1, 2]), True, size=4)
    assert call.output_spec == ArraySpec((1, 4), jnp.float32)
    assert eval_summary(f)(jnp.ones([1, 2]), False) == []


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.float16, jnp.bfloat16, jnp.int8,
                                   jnp.int16, jnp.int32, jnp.int64, jnp.uint8, jnp.uint32,
                                   jnp.complex64, jnp.bool_])
def test_array_spec_repr_matches_haiku(dtype):
    ours = ArraySpec((2, 3), np.dtype(dtype))
    assert repr(ours) == str(ours) == repr(haiku.experimental.ArraySpec((2, 3), np.dtype(dtype)))
    assert repr(ArraySpec((), np.dtype(dtype))).endswith("[]")


def test_array_spec():
    spec = ArraySpec.from_array(np.zeros([4, 1], np.float32))
    assert spec == ArraySpec((4, 1), jnp.float32) == ArraySpec((4, 1), np.dtype("float32"))
    assert spec != ArraySpec((4, 1), jnp.float16) and spec != ArraySpec((1, 4), jnp.float32)
    assert (spec.shape, spec.dtype) == ((4, 1), np.dtype("float32"))
    assert hash(spec) == hash(ArraySpec((4, 1), np.dtype("float32")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.shape = (1,)


@pytest.mark.parametrize("num_bytes,text", [
    (0, "0.00 B"), (20, "20.00 B"), (999, "999.00 B"), (1000, "1.00 KB"), (1005, "1.00 KB"),
    (999_999, "1000.00 KB"), (1_000_000, "1.00 MB"), (1_066_440, "1.07 MB"),
    (1_234_567, "1.23 MB"), (10**9, "1.00 GB"), (3 * 10**12, "3.00 TB"), (10**16, "10000.00 TB"),
])
def test_format_bytes(num_bytes, text):
    assert summarise._format_bytes(num_bytes) == text


def test_bad_columns_and_filters():
    f = lambda x: hk.Linear(1)(x)  # noqa: E731
    with pytest.raises(ValueError, match=r"Invalid column\(s\) \['bad'\].*valid columns are"):
        tabulate(f, columns=("module", "bad"))
    with pytest.raises(ValueError, match=r"Invalid filter\(s\) \['nope'\].*'has_params'"):
        tabulate(f, filters=("nope",))
    with pytest.raises(TypeError, match=r"sequence of names, got the string 'module'"):
        tabulate(f, columns="module")
    with pytest.raises(TypeError, match=r"does not support multi-transformed"):
        eval_summary(hk.multi_transform(lambda: (lambda: None, ())))
    with pytest.raises(TypeError, match=r"expects a function using modules.*got int"):
        eval_summary(3)


def test_errors_in_the_function_propagate():
    def f(x):
        return hk.Linear(2)(x.reshape([7]))

    with pytest.raises(TypeError, match="reshape"):
        eval_summary(f)(jnp.ones([2, 3]))


def test_specs_under_mixed_precision_match_haiku():
    """Policies are applied outside the summary: it sees cast inputs and uncast outputs."""
    import jmp

    from senryu import mixed_precision

    policy = jmp.get_policy("params=float32,compute=float16,output=bfloat16")
    results = []
    for lib, summary in ((hk, eval_summary), (haiku, haiku.experimental.eval_summary)):
        with lib.mixed_precision.push_policy(lib.Linear, policy):
            calls = summary(lambda x, lib=lib: lib.nets.MLP([3, 2])(x))(jnp.ones([1, 2]))
        results.append([(c.module_details.module.module_name, repr(c.args_spec),
                         repr(c.output_spec)) for c in calls])
    assert results[0] == results[1] == [("mlp", "(f32[1,2],)", "bf16[1,2]"),
                                        ("mlp/~/linear_0", "(f16[1,2],)", "f16[1,3]"),
                                        ("mlp/~/linear_1", "(f16[1,3],)", "f16[1,2]")]
    assert mixed_precision.get_policy(hk.Linear) is None
