"""Module names and parameter-tree layout, compared with dm-haiku for the same programs."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import pytest

import senryu
from oracle import assert_close, assert_same_tree, both

X = jnp.ones([2, 3])


def nested_program(hk):
    class Child(hk.Module):
        def __call__(self, x):
            return x + hk.get_parameter("c", [], init=jnp.zeros)

    class Parent(hk.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.a = Child()
            self.b = Child()
            self.n = Child(name="named")
            self.n2 = Child(name="named")

        def __call__(self, x):
            x = self.b(self.a(x))
            x = Child()(Child()(x))
            x = self.n2(self.n(x))
            return self.other(x)

        def other(self, x):
            return Child()(x) + Child(name="foo")(x)

    def f(x):
        y = Parent()(x) + Parent()(x) + Parent(name="parent")(x)
        return y + Child(name="child_1")(x) + Child()(x) + Child()(x)

    return hk.transform(f)


def test_nested_names_match_haiku():
    ours, theirs = both(nested_program)
    assert_same_tree(ours.init(None, 1.), theirs.init(None, 1.))


NAME_SEQUENCES = [
    ["lin", "lin_0"], ["lin_3", None, "lin"], [None, "c_0", None], ["c_5", "c_2", None],
    ["a_b", "a_b_1", "a_b"], ["c", "c_1"], [None, "c_1"], [None, None, None], ["x", "x", "x"],
]


@pytest.mark.parametrize("names", NAME_SEQUENCES, ids=str)
def test_explicit_and_automatic_names_match_haiku(names):
    def program(hk):
        class C(hk.Module):
            def __call__(self, x):
                return x + hk.get_parameter("c", [], init=jnp.zeros)

        def f(x):
            for n in names:
                x = C(name=n)(x)
            return x
        return hk.transform(f)

    ours, theirs = both(program)
    assert list(ours.init(None, 1.)) == list(theirs.init(None, 1.))


@pytest.mark.parametrize("names", [["lin_0", "lin_0"], ["c_1", "c_1"], [None, None, "c_1"]], ids=str)
def test_repeated_explicit_index_is_an_error(names):
    class C(senryu.Module):
        def __call__(self, x):
            return x

    def f():
        for n in names:
            C(name=n)

    with pytest.raises(ValueError, match="is not unique"):
        senryu.transform(f).init(None)


@pytest.mark.parametrize("bad", ["Bad-Name", "1x", "a/b", ""])
def test_invalid_names(bad):
    with pytest.raises(ValueError, match="not a valid module name"):
        senryu.transform(lambda: senryu.Linear(1, name=bad)).init(None)


CLASS_NAMES = ["MyLinear1", "HkRandom2", "MLP", "BatchNorm", "VanillaRNN", "Conv2D", "ResNet50",
               "Conv2DTranspose", "ABCDef", "A", "aB", "SNParamsTree", "EMAParamsTree", "LSTM",
               "Conv1DLSTM", "XLNet", "x_y", "IdentityCore", "HTTPServer2Go", "_Foo", "_FooBar",
               "_DeepRNN", "My_Class"]


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_default_names_are_snake_case_like_haiku(class_name):
    def program(hk):
        cls = type(class_name, (hk.Module,), {"__call__": lambda self: None})
        return hk.transform(lambda: cls().module_name)

    ours, theirs = both(program)
    assert ours.apply({}, None) == theirs.apply({}, None)


def test_mlp_and_sequential_and_custom_layout_match_haiku():
    def program(hk):
        class MyModuleCustom(hk.Module):
            def __init__(self, output_size=2, name="custom_linear"):
                super().__init__(name=name)
                self._internal_linear_1 = hk.nets.MLP(output_sizes=[2, 3], name="hk_internal_linear")
                self._internal_linear_2 = hk.Linear(output_size, name="old_linear")

            def __call__(self, x):
                return self._internal_linear_2(self._internal_linear_1(x))

        def f(x):
            seq = hk.Sequential([hk.Linear(4), jax.nn.relu, hk.Linear(3)])
            return MyModuleCustom()(x) + hk.nets.MLP([5, 2])(x) + seq(x)[:, :2]
        return hk.without_apply_rng(hk.transform(f))

    ours, theirs = both(program)
    key = jax.random.PRNGKey(42)
    ours_params, theirs_params = ours.init(key, X), theirs.init(key, X)
    assert_same_tree(ours_params, theirs_params)
    # Same key, same initializers, same order: identical initial values.
    assert_close(ours_params, theirs_params, rtol=0, atol=0)
    assert_close(ours.apply(theirs_params, X), theirs.apply(theirs_params, X))
    assert "custom_linear/~/hk_internal_linear/~/linear_0" in ours_params


def test_dataclass_modules():
    def program(hk):
        @dataclasses.dataclass
        class Dense(hk.Module):
            size: int
            name: str = None

            def __call__(self, x):
                return hk.Linear(self.size)(x)

        def f(x):
            return Dense(3, name="foo")(Dense(2)(x))
        return hk.transform(f)

    ours, theirs = both(program)
    key = jax.random.PRNGKey(0)
    assert_same_tree(ours.init(key, X), theirs.init(key, X))


def test_module_name_and_name_properties():
    class Inner(senryu.Module):
        def __call__(self):
            return senryu.current_name()

    class Outer(senryu.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

    def f():
        outer = Outer()
        return outer.module_name, outer.inner.module_name, outer.inner.name, outer.inner()

    assert senryu.transform(f).apply({}, None) == ("outer", "outer/~/inner", "inner",
                                                   "outer/~/inner")


def test_name_scope_matches_haiku():
    def program(hk):
        def f():
            with hk.name_scope("a"):
                hk.get_parameter("w", [], init=jnp.zeros)
                inner = hk.current_name()
            with hk.name_scope("a"):
                hk.get_parameter("v", [], init=jnp.zeros)
            with hk.name_scope("a/b"):
                hk.get_parameter("v", [], init=jnp.zeros)
            return inner
        return hk.transform(f)

    ours, theirs = both(program)
    assert list(ours.init(None)) == list(theirs.init(None))
    assert ours.apply(ours.init(None), None) == "a"


def test_transparent_name_like_and_force_name():
    def program(hk):
        class Autoencoder(hk.Module):
            @hk.name_like("__call__")
            def encode(self, x):
                return hk.Linear(2, name="enc")(x)

            @hk.transparent
            def helper(self, x):
                return hk.Linear(2)(x)

            def __call__(self, x):
                return self.helper(self.encode(x))

        def f(x):
            a = hk.Linear(3)
            b = hk.Linear(3, name=hk.force_name(a.module_name))
            return Autoencoder()(b(a(x)))
        return hk.transform(f)

    ours, theirs = both(program)
    key = jax.random.PRNGKey(1)
    assert_same_tree(ours.init(key, X), theirs.init(key, X))


def test_to_module_and_deferred():
    def program(hk):
        def bias_fn(x):
            return x + hk.get_parameter("b", [], init=jnp.ones)

        Bias = hk.to_module(bias_fn)

        def f(x):
            b = Bias(name="my_bias")
            encoder = hk.Linear(4)
            decoder = hk.Deferred(lambda: hk.Linear(encoder.input_size))
            return decoder(encoder(b(x) * b(x)))
        return hk.transform(f)

    ours, theirs = both(program)
    key = jax.random.PRNGKey(3)
    params = theirs.init(key, X)
    assert_same_tree(ours.init(key, X), params)
    assert_close(ours.apply(params, None, X), theirs.apply(params, None, X))


@pytest.mark.parametrize("first,second", list(itertools.product(["init", "apply"], repeat=2)))
def test_names_restart_in_every_call(first, second):
    f = senryu.transform(lambda x: senryu.Linear(1)(x))
    params = f.init(jax.random.PRNGKey(0), X)
    for stage in (first, second):
        if stage == "init":
            assert list(f.init(jax.random.PRNGKey(0), X)) == ["linear"]
        else:
            assert f.apply(params, None, X).shape == (2, 1)


def test_private_methods_and_properties_are_scoped_like_haiku():
    def program(hk):
        class P(hk.Module):
            @property
            def thing(self):
                return hk.get_state("s", [], init=jnp.ones) + hk.Linear(1)(jnp.ones([1, 1])).sum()

            def _helper(self, x):
                return hk.Linear(1)(x)

            def __private(self, x):
                return hk.Linear(1)(x)

            def __call__(self, x):
                return self.thing + self._helper(x) + self.__private(x)
        return hk.transform_with_state(lambda x: P()(x))

    ours, theirs = both(program)
    key, x = jax.random.PRNGKey(0), jnp.ones([1, 1])
    (p1, s1), (p2, s2) = ours.init(key, x), theirs.init(key, x)
    assert_same_tree(p1, p2)
    assert_same_tree(s1, s2)
    assert "p/~_P__private/linear" in p1 and "p/~thing/linear" in p1


def test_auto_repr_matches_haiku():
    def program(hk):
        def f():
            return (repr(hk.Linear(2)), repr(hk.Linear(2, with_bias=False, name="foo")),
                    repr(hk.nets.MLP([2, 3])), repr(hk.Sequential([hk.Linear(2), hk.Linear(1)])),
                    repr(hk.nets.MLP([3] * 30)))
        return hk.transform(f)

    ours, theirs = both(program)
    assert ours.apply({}, None) == theirs.apply({}, None)


def test_calling_a_module_again_reuses_the_submodules_of_its_first_call():
    def program(hk):
        class Foo(hk.Module):
            def __call__(self, x):
                return hk.Linear(2)(x) + hk.Linear(2)(x)

        def f(x):
            m = Foo()
            return m(x) + m(x) + Foo()(x)
        return hk.transform(f)

    ours, theirs = both(program)
    key, x = jax.random.PRNGKey(0), jnp.ones([1, 2])
    params = theirs.init(key, x)
    assert_same_tree(ours.init(key, x), params)
    assert list(params) == ["foo/linear", "foo/linear_1", "foo_1/linear", "foo_1/linear_1"]
    assert_close(ours.apply(params, None, x), theirs.apply(params, None, x))


def test_signature_of_a_module_class_is_its_constructor():
    import inspect
    assert list(inspect.signature(senryu.Linear).parameters) == [
        "output_size", "with_bias", "w_init", "b_init", "name"]


def test_abstract_module_raises_type_error_even_outside_a_transform():
    import abc

    class Abstract(senryu.Module, abc.ABC):
        @abc.abstractmethod
        def __call__(self, x):
            ...

    with pytest.raises(TypeError, match="abstract"):
        Abstract()
