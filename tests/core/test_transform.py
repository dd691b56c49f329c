"""Transforms: documented examples, purity under JAX transforms, misuse errors, threads."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import senryu as hk
from oracle import assert_close, assert_same_tree, both

X = jnp.array([[1., 2., 3.]])


class MyLinear1(hk.Module):
    def __init__(self, output_size, name=None):
        super().__init__(name=name)
        self.output_size = output_size

    def __call__(self, x):
        j, k = x.shape[-1], self.output_size
        w_init = hk.initializers.TruncatedNormal(1. / np.sqrt(j))
        w = hk.get_parameter("w", shape=[j, k], dtype=x.dtype, init=w_init)
        b = hk.get_parameter("b", shape=[k], dtype=x.dtype, init=jnp.ones)
        return jnp.dot(x, w) + b


def test_first_example_of_the_basics():
    forward = hk.transform(lambda x: MyLinear1(output_size=2)(x))
    params = forward.init(rng=jax.random.PRNGKey(42), x=X)
    assert list(params) == ["my_linear1"]
    assert params["my_linear1"]["w"].shape == (3, 2)
    np.testing.assert_array_equal(params["my_linear1"]["b"], [1., 1.])
    out1 = forward.apply(params=params, x=X, rng=jax.random.PRNGKey(42))
    expected = X @ params["my_linear1"]["w"] + 1.
    np.testing.assert_allclose(out1, expected, rtol=1e-6)
    no_rng = hk.without_apply_rng(forward)
    np.testing.assert_allclose(no_rng.apply(params, X), out1)
    mutated = jax.tree.map(lambda p: p + 1., params)
    np.testing.assert_allclose(no_rng.apply(mutated, X), X @ (params["my_linear1"]["w"] + 1) + 2.,
                               rtol=1e-6)


def test_stateful_counter_example():
    def stateful_f(x):
        counter = hk.get_state("counter", shape=[], dtype=jnp.int32, init=jnp.ones)
        multiplier = hk.get_parameter("multiplier", shape=[1], dtype=x.dtype, init=jnp.ones)
        hk.set_state("counter", counter + 1)
        return x + multiplier * counter

    f = hk.without_apply_rng(hk.transform_with_state(stateful_f))
    x = jnp.array([[5.]])
    params, state = f.init(x=x, rng=jax.random.PRNGKey(42))
    assert params == {"~": {"multiplier": jnp.ones([1])}}
    assert int(state["~"]["counter"]) == 1
    for i in range(3):
        out, state = f.apply(params, state, x=x)
        assert float(out[0, 0]) == 6. + i
        assert int(state["~"]["counter"]) == 2 + i


def test_transform_docstring_example():
    class MyModule(hk.Module):
        def __call__(self, x):
            return x + hk.get_parameter("w", [], init=jnp.zeros)

    f = hk.transform(lambda x: MyModule()(x) + MyModule()(x))
    params = f.init(None, 1)
    assert jax.tree.map(float, params) == {"my_module": {"w": 0.}, "my_module_1": {"w": 0.}}
    new_params = {"my_module": {"w": jnp.array(2.)}, "my_module_1": {"w": jnp.array(3.)}}
    assert float(f.apply(new_params, None, 2)) == 9.


def test_multi_transform_matches_haiku():
    def program(hk):
        def f():
            encoder = hk.Linear(1, name="encoder")
            decoder = hk.Linear(1, name="decoder")
            return (lambda x: decoder(encoder(x))), (encoder, decoder)
        return hk.multi_transform(f)

    ours, theirs = both(program)
    key, x = jax.random.PRNGKey(42), jnp.ones([1, 1])
    params = theirs.init(key, x)
    assert_same_tree(ours.init(key, x), params)
    assert_close(ours.init(key, x), params, rtol=0, atol=0)
    encode, decode = ours.apply
    h_encode, h_decode = theirs.apply
    assert_close(decode(params, None, encode(params, None, x)),
                 h_decode(params, None, h_encode(params, None, x)))


def test_multi_transform_with_state():
    def count():
        hk.set_state("n", hk.get_state("n", [], init=jnp.zeros) + 1)

    def f():
        counter = hk.to_module(count)()
        return (lambda: counter()), {"step": counter}

    t = hk.multi_transform_with_state(f)
    params, state = t.init(None)
    _, state = t.apply["step"](params, state, None)
    assert float(state["count"]["n"]) == 1.
    no_rng = hk.without_apply_rng(t)
    _, state = no_rng.apply["step"](params, state)
    assert float(state["count"]["n"]) == 2.


def test_without_state_and_with_empty_state():
    f = hk.without_state(hk.transform_with_state(lambda x: hk.Linear(10)(x)))
    key, x = jax.random.PRNGKey(42), jnp.zeros([1, 1])
    np.testing.assert_array_equal(f.apply(f.init(key, x), key, x), jnp.zeros([1, 10]))
    g = hk.with_empty_state(hk.transform(lambda x: hk.Linear(10)(x)))
    params, state = g.init(key, x)
    assert state == {}
    out, state = g.apply(params, state, key, x)
    assert state == {} and out.shape == (1, 10)
    stateful = hk.without_state(hk.transform_with_state(lambda: hk.set_state("s", 1.)))
    with pytest.raises(ValueError, match="use `hk.transform_with_state`"):
        stateful.init(None)


def test_init_and_apply_are_pure_under_jit_grad_vmap():
    f = hk.transform(lambda x: hk.nets.MLP([4, 1])(x))
    key = jax.random.PRNGKey(0)
    params = jax.jit(f.init)(key, X)
    assert_close(params, f.init(key, X))
    assert_close(jax.jit(f.apply)(params, None, X), f.apply(params, None, X))
    grads = jax.grad(lambda p: f.apply(p, None, X).sum())(params)
    assert_same_tree(grads, params)
    batched = jax.vmap(f.apply, in_axes=(None, None, 0))(params, None, jnp.stack([X, 2 * X]))
    assert_close(batched[1], f.apply(params, None, 2 * X))
    per_key = jax.vmap(f.init, in_axes=(0, None))(jax.random.split(key, 3), X)
    assert per_key["mlp/~/linear_0"]["w"].shape == (3, 3, 4)


def test_training_with_optax_reduces_loss():
    f = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([8, 1])(x)))
    xs = jnp.linspace(-1, 1, 32)[:, None]
    ys = xs ** 2
    params = f.init(jax.random.PRNGKey(0), xs)
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((f.apply(p, xs) - ys) ** 2))(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(100):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


def test_apply_with_missing_or_misshapen_params_names_the_full_path():
    f = hk.transform(lambda x: hk.nets.MLP([2, 2])(x))
    params = f.init(jax.random.PRNGKey(0), X)
    missing = {k: v for k, v in params.items() if k != "mlp/~/linear_1"}
    with pytest.raises(ValueError, match=r"'mlp/~/linear_1/w'.*created as part of `init`"):
        f.apply(missing, None, X)
    with pytest.raises(ValueError, match=r"'mlp/~/linear_0/w' with retrieved shape \(3, 2\) does "
                                         r"not match shape=\[4, 2\]"):
        f.apply(params, None, jnp.ones([1, 4]))


def test_misuse_outside_a_transform():
    with pytest.raises(ValueError, match="must be initialized inside an `hk.transform`"):
        hk.Linear(1)
    with pytest.raises(ValueError, match=r"`hk.get_parameter` must be used as part of an "
                                         r"`hk.transform`"):
        hk.get_parameter("w", [], init=jnp.zeros)
    with pytest.raises(ValueError, match=r"`hk.next_rng_key` must be used"):
        hk.next_rng_key()
    for api in (hk.get_state, hk.running_init, hk.current_name):
        with pytest.raises(ValueError, match="must be used as part of an `hk.transform`"):
            api("x") if api is hk.get_state else api()


def test_missing_rng():
    f = hk.transform(lambda: jax.random.uniform(hk.next_rng_key()))
    for call in (lambda: f.init(None), lambda: f.apply({}, None)):
        with pytest.raises(hk.MissingRNGError, match="called with rng=None"):
            call()
    assert issubclass(hk.MissingRNGError, ValueError)


def test_set_state_on_a_parameter_name_is_an_error_and_nothing_is_half_written():
    def f():
        hk.get_parameter("w", [], init=jnp.zeros)
        hk.set_state("w", 1.)

    with pytest.raises(ValueError, match=r"'~/w' is a parameter, not state"):
        hk.transform_with_state(f).init(None)


def test_non_array_parameters_are_rejected():
    f = hk.transform(lambda: hk.get_parameter("w", [], init=lambda s, d: "x"))
    with pytest.raises(TypeError, match=r"Parameter '~/w' must be an array"):
        f.init(None)
    g = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.zeros))
    with pytest.raises(TypeError, match=r"Parameter '~/w' must be an array, got list"):
        g.apply({"~": {"w": [1., 2.]}}, None)


def test_apply_does_not_mutate_its_inputs_even_on_error():
    def f():
        hk.set_state("s", hk.get_state("s", [], init=jnp.zeros) + 1)
        hk.get_parameter("missing", [], init=jnp.zeros)

    f = hk.transform_with_state(f)
    params, state = {"~": {}}, {"~": {"s": jnp.zeros([])}}
    with pytest.raises(ValueError):
        f.apply(params, state, None)
    assert params == {"~": {}} and float(state["~"]["s"]) == 0.


def test_wrong_argument_order_is_explained():
    f = hk.transform(lambda x: hk.Linear(1)(x))
    params = f.init(jax.random.PRNGKey(0), X)
    with pytest.raises(TypeError, match="wrong order"):
        f.apply(jax.random.PRNGKey(0), params, X)
    with pytest.raises(ValueError, match="wrong order"):
        f.init(X, jax.random.PRNGKey(0))


def test_transform_of_a_transformed_function_is_an_error():
    f = hk.transform(lambda x: x)
    with pytest.raises(ValueError, match="already transformed"):
        hk.transform(f)
    with pytest.raises(ValueError, match="apply_rng"):
        hk.transform(lambda x: x, apply_rng=False)


def test_transforms_in_two_threads_do_not_see_each_other():
    barrier = threading.Barrier(2)
    results = {}

    def make(size):
        def f(x):
            out = hk.Linear(size)(x)
            barrier.wait(timeout=30)  # both threads are inside their transform now
            return out, list(hk.get_params())
        return hk.transform(f)

    def run(size):
        f = make(size)
        params = f.init(jax.random.PRNGKey(size), X)
        results[size] = (jax.tree.map(jnp.shape, params), f.apply(params, None, X)[1])

    threads = [threading.Thread(target=run, args=(size,)) for size in (2, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[2][0] == {"linear": {"b": (2,), "w": (3, 2)}}
    assert results[5][0] == {"linear": {"b": (5,), "w": (3, 5)}}
    assert results[2][1] == results[5][1] == ["linear"]


def test_nested_transform_inside_a_transform_is_independent():
    inner = hk.transform(lambda x: hk.Linear(2)(x))

    def outer(x):
        params = inner.init(jax.random.PRNGKey(0), x)
        return hk.Linear(1)(inner.apply(params, None, x))

    params = hk.transform(outer).init(jax.random.PRNGKey(1), X)
    assert list(params) == ["linear"]


def test_running_init_and_state_views():
    seen = []

    def f():
        seen.append(hk.running_init())
        x = hk.get_state("x", [], init=jnp.zeros)
        hk.set_state("x", x + 1)
        return hk.get_initial_state(), hk.get_current_state()

    f = hk.transform_with_state(f)
    _, state = f.init(None)
    assert float(state["~"]["x"]) == 0.
    (initial, current), _ = f.apply({}, {"~": {"x": jnp.array(10.)}}, None)
    assert float(initial["~"]["x"]) == 10. and float(current["~"]["x"]) == 11.
    assert seen == [True, False]


def test_params_dict_and_state_dict():
    class Net(hk.Module):
        def __call__(self, x):
            hk.set_state("count", jnp.ones([]))
            return hk.Linear(2)(x)

    def f(x):
        net = Net()
        net(x)
        return sorted(net.params_dict()), sorted(net.state_dict())

    names, states = hk.transform_with_state(f).apply(
        *hk.transform_with_state(f).init(jax.random.PRNGKey(0), X), None, X)[0]
    assert names == ["net/linear/b", "net/linear/w"]
    assert states == ["net/count"]
