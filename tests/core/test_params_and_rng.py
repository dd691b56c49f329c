"""Parameters, state, custom creators/getters/setters, interceptors and random keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from oracle import assert_close, both


def test_get_parameter_returns_the_same_value_when_reused():
    def f():
        w1 = hk.get_parameter("w", [], init=jnp.zeros)
        w2 = hk.get_parameter("w", [], init=jnp.zeros)
        return w1 is w2

    assert hk.transform(f).apply({"~": {"w": jnp.zeros([])}}, None)
    with pytest.raises(ValueError, match="Initializer must be specified"):
        hk.transform(lambda: hk.get_parameter("w", [])).init(None)


def test_get_state_needs_an_init_first_time():
    with pytest.raises(ValueError, match="No value for state 'x' in module '~'"):
        hk.transform_with_state(lambda: hk.get_state("x")).init(None)


def test_state_created_during_apply_is_returned_like_haiku():
    def program(hk):
        def f():
            hk.set_state("t", jnp.array(2.))
            return hk.get_state("u", [], init=jnp.ones)
        return hk.transform_with_state(f)

    ours, theirs = both(program)
    assert_close(ours.apply({}, {}, None), theirs.apply({}, {}, None))


def test_creator_and_getter_order_and_examples():
    order = []

    def tag(label):
        def creator(next_creator, shape, dtype, init, context):
            order.append(label)
            return next_creator(shape, dtype, init)
        return creator

    def getter_tag(label):
        def getter(next_getter, value, context):
            order.append(label)
            assert context.full_name == "linear/w" or context.full_name == "linear/b"
            assert context.module_name == "linear"
            return next_getter(value)
        return getter

    def f(x):
        with hk.custom_creator(tag("c1")), hk.custom_creator(tag("c2")), \
                hk.custom_getter(getter_tag("g1")), hk.custom_getter(getter_tag("g2")):
            return hk.Linear(1)(x)

    hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 1]))
    assert order == ["c1", "c2", "g1", "g2", "c1", "c2", "g1", "g2"]

    def zeros_creator(next_creator, shape, dtype, init, context):
        return next_creator(shape, dtype, jnp.zeros)

    def g():
        with hk.custom_creator(zeros_creator, state=True):
            return hk.get_parameter("z", [], jnp.float32, jnp.ones), hk.get_state(
                "s", [], jnp.float32, jnp.ones)

    (z, s), _ = hk.transform_with_state(g).apply({}, {}, None) if False else (None, None), None
    params, state = hk.transform_with_state(g).init(None)
    assert float(params["~"]["z"]) == 0. and float(state["~"]["s"]) == 0.


def test_bf16_getter_on_params_and_state():
    def bf16_getter(next_getter, value, context):
        return next_getter(value.astype(jnp.bfloat16))

    def f():
        with hk.custom_getter(bf16_getter, state=True):
            return (hk.get_parameter("w", [], jnp.float32, jnp.ones).dtype,
                    hk.get_state("c", [], jnp.float32, jnp.ones).dtype)

    params, state = hk.transform_with_state(f).init(None)
    assert params["~"]["w"].dtype == jnp.float32  # stored value is unchanged
    out, _ = hk.transform_with_state(f).apply(params, state, None)
    assert out == (jnp.bfloat16, jnp.bfloat16)


def test_custom_setter_and_do_not_store_like_haiku():
    def program(hk):
        pretrained = {"torso": {"w": jnp.ones([3, 4]), "b": jnp.ones([4])}}

        def my_creator(next_creator, shape, dtype, init, context):
            if context.module_name in pretrained:
                return hk.DO_NOT_STORE
            return next_creator(shape, dtype, init)

        def my_getter(next_getter, value, context):
            if context.module_name in pretrained:
                assert value is hk.DO_NOT_STORE
                value = pretrained[context.module_name][context.name]
            return next_getter(value)

        def zero_during_init(next_setter, value, context):
            if hk.running_init():
                value = jnp.zeros_like(value)
            return next_setter(value)

        def f(x):
            with hk.custom_creator(my_creator), hk.custom_getter(my_getter), \
                    hk.custom_setter(zero_during_init):
                hk.set_state("x", jnp.ones([2]))
                return hk.Linear(2, name="tail")(hk.Linear(4, name="torso")(x))
        return hk.transform_with_state(f)

    ours, theirs = both(program)
    key, x = jax.random.PRNGKey(42), jnp.ones([1, 3])
    (p1, s1), (p2, s2) = ours.init(key, x), theirs.init(key, x)
    assert list(p1) == list(p2) == ["tail"]
    assert_close(s1, s2)
    assert_close(ours.apply(p2, s2, None, x), theirs.apply(p2, s2, None, x))


def test_method_interceptors_run_in_order_and_can_short_circuit():
    log = []

    def make(label, short_circuit=False):
        def interceptor(next_fun, args, kwargs, context):
            log.append((label, context.module.name, context.method_name))
            if short_circuit:
                return context.orig_method(*args, **kwargs)
            return next_fun(*args, **kwargs)
        return interceptor

    def f(x):
        module = hk.Linear(1, name="method_context_example")
        with hk.intercept_methods(make("one")), hk.intercept_methods(make("two")):
            module(x)
        with hk.intercept_methods(make("one", short_circuit=True)), \
                hk.intercept_methods(make("two")):
            return module(x)

    hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 1]))
    assert log == [("one", "method_context_example", "__call__"),
                   ("two", "method_context_example", "__call__"),
                   ("one", "method_context_example", "__call__")]


def test_interceptor_can_cast_inputs():
    def to_f32(next_fun, args, kwargs, context):
        return next_fun(*[a.astype(jnp.float32) for a in args], **kwargs)

    def f(x):
        with hk.intercept_methods(to_f32):
            return hk.Linear(2)(x)

    x = jnp.ones([1, 3], jnp.bfloat16)
    params = hk.transform(f).init(jax.random.PRNGKey(0), x)
    assert params["linear"]["w"].dtype == jnp.float32
    assert hk.transform(f).apply(params, None, x).dtype == jnp.float32


@pytest.mark.parametrize("seed", [0, 42])
def test_prng_sequence_matches_haiku(seed):
    import haiku
    ours, theirs = hk.PRNGSequence(seed), haiku.PRNGSequence(seed)
    for _ in range(3):
        np.testing.assert_array_equal(next(ours), next(theirs))
    ours.reserve(4)
    theirs.reserve(4)
    np.testing.assert_array_equal(np.stack(ours.take(5)), np.stack(theirs.take(5)))
    key = jax.random.PRNGKey(seed)
    np.testing.assert_array_equal(next(hk.PRNGSequence(key)), next(haiku.PRNGSequence(key)))


def test_prng_sequence_rejects_bad_keys():
    with pytest.raises(ValueError, match="int seed or a JAX random key"):
        hk.PRNGSequence(jnp.ones([3]))
    with pytest.raises(ValueError, match="int seed or a JAX random key"):
        hk.PRNGSequence("seed")


def test_rng_functions_match_haiku():
    def program(hk):
        def f():
            a = hk.next_rng_key()
            hk.reserve_rng_keys(2)
            b = hk.next_rng_keys(3)
            c = hk.maybe_next_rng_key()
            with hk.with_rng(jax.random.PRNGKey(428)):
                d = jax.random.uniform(hk.next_rng_key(), ())
            state = hk.maybe_get_rng_sequence_state()
            e = hk.next_rng_key()
            hk.replace_rng_sequence_state(state)
            return a, b, c, d, e, hk.next_rng_key()
        return hk.transform(f)

    ours, theirs = both(program)
    key = jax.random.PRNGKey(7)
    got, want = ours.apply({}, key), theirs.apply({}, key)
    assert_close(got, want, rtol=0, atol=0)
    np.testing.assert_array_equal(got[4], got[5])
    assert hk.transform(lambda: hk.maybe_next_rng_key()).apply({}, None) is None


def test_rng_documented_example_is_deterministic():
    class HkRandom2(hk.Module):
        def __call__(self, x):
            return jax.random.bernoulli(hk.next_rng_key(), 0.5, shape=x.shape)

    class HkRandomNest(hk.Module):
        def __init__(self):
            super().__init__()
            self._another = HkRandom2()

        def __call__(self, x):
            key2 = hk.next_rng_key()
            return self._another(x), jax.random.bernoulli(key2, 0.5, shape=x.shape)

    forward = hk.transform(lambda x: HkRandomNest()(x))
    key = jax.random.PRNGKey(42)
    params = forward.init(key, jnp.array(1.))
    outs = {tuple(map(bool, forward.apply(params, key, jnp.array(1.)))) for _ in range(5)}
    assert len(outs) == 1


@pytest.mark.parametrize("typed", [False, True])
def test_initial_values_match_haiku_for_the_same_key(typed):
    import haiku
    key = jax.random.key(3) if typed else jax.random.PRNGKey(3)
    x = jnp.ones([2, 5])
    ours = hk.transform(lambda x: hk.nets.MLP([4, 3])(x)).init(key, x)
    theirs = haiku.transform(lambda x: haiku.nets.MLP([4, 3])(x)).init(key, x)
    assert_close(ours, theirs, rtol=0, atol=0)
