"""Plain JAX inside a transform: the override makes it work; leak detection stops misuse."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
import thirdparty
from oracle import assert_close

override = hk.experimental.override_jax_transforms
X = jnp.linspace(-1., 1., 6).reshape(2, 3)


class Damped(hk.Module):
    """A module with a parameter, a state counter and dropout randomness."""

    def __call__(self, z, *, dropout=True):
        w = hk.get_parameter("w", [3, 3], init=lambda s, d: 0.2 * jnp.eye(3, dtype=d) + 0.05)
        calls = hk.get_state("calls", [], jnp.int32, init=jnp.zeros)
        hk.set_state("calls", calls + 1)
        out = jnp.tanh(z @ w)
        if dropout:
            keep = jax.random.bernoulli(hk.next_rng_key(), 0.9, out.shape)
            out = jnp.where(keep, out, 0.)
        return out


def reference(fn_of_module_apply, params, state, key):
    """The same computation by hand: the module's pure apply threaded through explicitly."""
    inner = hk.transform_with_state(lambda z, dropout: Damped()(z, dropout=dropout))
    return fn_of_module_apply(inner, params, state, key)


def test_fixed_point_solver_on_while_loop():
    @override()
    def forward(x):
        module = Damped()
        return thirdparty.fixed_point(lambda z: module(z + x, dropout=False), jnp.zeros_like(x))

    f = hk.transform_with_state(forward)
    params, state = f.init(None, X)
    assert int(state["damped"]["calls"]) == 0  # created once, as in a Python loop
    (solution, iterations), new_state = f.apply(params, state, None, X)
    # By hand: iterate the pure apply in Python.
    inner = hk.transform_with_state(lambda z: Damped()(z, dropout=False))
    z, s = jnp.zeros_like(X), {"damped": {"calls": jnp.array(0)}}
    inner_params = {"damped": params["damped"]}
    z, s = inner.apply(inner_params, s, None, z + X)
    for _ in range(int(iterations) - 1):
        z, s = inner.apply(inner_params, s, None, z + X)
    assert_close(solution, z, rtol=1e-5, atol=1e-6)
    assert int(new_state["damped"]["calls"]) == int(iterations)  # one call per iteration
    np.testing.assert_allclose(solution, jnp.tanh((solution + X) @ params["damped"]["w"]),
                               atol=1e-5)


def test_ode_integrator_on_scan_with_randomness():
    ts = jnp.linspace(0., 1., 5)

    @override()
    def forward(y0):
        module = Damped()
        return thirdparty.odeint_euler(lambda y, t: module(y), y0, ts)

    f = hk.transform_with_state(forward)
    key = jax.random.PRNGKey(0)
    params, state = f.init(key, X)
    assert jax.tree.map(jnp.shape, params) == {"damped": {"w": (3, 3)}}
    ys, new_state = f.apply(params, state, key, X)
    assert ys.shape == (4, 2, 3)
    assert int(new_state["damped"]["calls"]) == 4
    # By hand: the same module applied in a Python loop, in one transform (same key sequence).
    def python_loop(y0):
        module, y, out = Damped(), y0, []
        for t0, t1 in zip(ts[:-1], ts[1:]):
            y = y + (t1 - t0) * module(y)
            out.append(y)
        return jnp.stack(out)

    want, want_state = hk.transform_with_state(python_loop).apply(params, state, key, X)
    assert_close(ys, want, rtol=1e-5, atol=1e-6)
    assert_close(new_state, want_state)


def test_fisher_information_on_grad_and_vmap():
    samples = jax.random.normal(jax.random.PRNGKey(1), (4, 3))

    @override()
    def forward(x):
        net = hk.Linear(3, name="net")

        def log_likelihood(x, sample):
            return -jnp.sum((net(x) - sample) ** 2)

        return thirdparty.fisher_diagonal(log_likelihood, x, samples)

    f = hk.transform(forward)
    x = jnp.ones([3])
    params = f.init(jax.random.PRNGKey(0), x)
    got = f.apply(params, None, x)
    inner = hk.transform(lambda x: hk.Linear(3, name="net")(x))
    ll = lambda x, s: -jnp.sum((inner.apply(params, None, x) - s) ** 2)  # noqa: E731
    want = jnp.mean(jax.vmap(jax.grad(ll), in_axes=(None, 0))(x, samples) ** 2, axis=0)
    assert_close(got, want, rtol=1e-5)


def test_eval_shape_and_jit_helper():
    @override()
    def forward(x):
        return thirdparty.shape_checked_jit(hk.nets.MLP([4, 2]), x)

    f = hk.transform(forward)
    params = f.init(jax.random.PRNGKey(0), X)
    assert sorted(params) == ["mlp/~/linear_0", "mlp/~/linear_1"]
    plain = hk.transform(lambda x: hk.nets.MLP([4, 2])(x))
    assert_close(f.apply(params, None, X), plain.apply(params, None, X))
    assert_close(jax.jit(f.apply)(params, None, X), plain.apply(params, None, X), rtol=1e-5)


def test_notebook_example_works_under_override_and_fails_clearly_without():
    def eval_shape_net(x):
        net = hk.nets.MLP([300, 100])
        output_shape = jax.eval_shape(net, x)
        return output_shape, net(x)

    init = hk.transform(eval_shape_net).init
    with pytest.raises(hk.JaxUsageError) as error:
        init(jax.random.PRNGKey(666), jnp.ones((2, 2)))
    message = str(error.value)
    for fact in ["`jax.eval_shape`", "'mlp/~/linear_0/w'", "hk.eval_shape",
                 "override_jax_transforms"]:
        assert fact in message
    assert isinstance(error.value, jax.errors.UnexpectedTracerError)
    assert isinstance(error.value, ValueError)
    with override():
        params = init(jax.random.PRNGKey(666), jnp.ones((2, 2)))
        shape, _ = hk.transform(eval_shape_net).apply(params, None, jnp.ones((2, 2)))
    assert shape == jax.ShapeDtypeStruct((2, 100), jnp.float32)


@pytest.mark.parametrize("jax_fn,expected", [
    (lambda f, x: jax.vmap(f)(x), "`jax.vmap`"),
    (lambda f, x: jax.lax.scan(lambda c, y: (c, f(y)), 0., x)[1], "`jax.lax.scan`"),
    (lambda f, x: jax.lax.map(f, x), "`jax.lax.map`"),
    (lambda f, x: jax.jit(f)(x), "`jax.jit`"),
    (lambda f, x: jax.grad(lambda y: f(y).sum())(x), "`jax.grad`"),
    (lambda f, x: jax.lax.cond(True, f, f, x), "`jax.lax.cond`"),
    (lambda f, x: jax.lax.fori_loop(0, 2, lambda i, y: f(y), x), "`jax.lax.fori_loop`"),
    (lambda f, x: jax.checkpoint(f)(x), "`jax.checkpoint`"),
])
@pytest.mark.parametrize("misuse", ["parameter", "state", "rng"])
def test_every_leak_raises_jax_usage_error_with_the_facts(jax_fn, expected, misuse):
    def body(y):
        if misuse == "parameter":
            return y + hk.Bias(name="leaky")(y)
        if misuse == "state":
            hk.set_state("seen", y.sum())
            return y
        return y * jax.random.uniform(hk.next_rng_key())

    f = hk.transform_with_state(lambda x: jax_fn(body, x))
    with pytest.raises(hk.JaxUsageError) as error:
        f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    message = str(error.value)
    assert expected in message
    assert "override_jax_transforms" in message
    if misuse == "parameter":
        assert "'leaky/b'" in message
    elif misuse == "state":
        assert "'~/seen'" in message
    else:
        assert "hk.next_rng_key" in message


def test_reading_parameters_under_raw_jax_is_allowed():
    def f(x):
        w = hk.get_parameter("w", [3], init=jnp.ones)
        return jax.vmap(lambda row: row * hk.get_parameter("w", [3], init=jnp.ones))(x) + w

    t = hk.transform(f)
    params = t.init(None, X)
    assert_close(t.apply(params, None, X), X + 1.)


def test_names_bound_before_the_override_are_caught_not_leaked():
    from jax.lax import scan as bound_scan

    def forward(x):
        return bound_scan(lambda c, y: (c, hk.Linear(2)(y)), 0., x)[1]

    with override(), pytest.raises(hk.JaxUsageError, match="jax.lax.scan"):
        hk.transform(forward).init(jax.random.PRNGKey(0), jnp.ones([4, 1, 3]))


def test_override_restores_everything_even_on_error_and_nests():
    originals = (jax.jit, jax.vmap, jax.grad, jax.lax.scan, jax.lax.cond, jax.lax.while_loop)
    with override():
        with override():
            assert jax.vmap is not originals[1]
        assert jax.vmap is not originals[1]
    assert (jax.jit, jax.vmap, jax.grad, jax.lax.scan, jax.lax.cond,
            jax.lax.while_loop) == originals
    with pytest.raises(RuntimeError):
        with override():
            raise RuntimeError("boom")
    assert jax.vmap is originals[1]


def test_outside_a_transform_the_override_is_plain_jax():
    with override():
        out = jax.vmap(lambda x: x * 2)(jnp.arange(3.))
        carry, ys = jax.lax.scan(lambda c, x: (c + x, c), 0., jnp.arange(4.))
    np.testing.assert_array_equal(out, [0., 2., 4.])
    assert float(carry) == 6. and ys.tolist() == [0., 0., 1., 3.]


def test_other_threads_are_not_affected():
    started, release = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        # A transform in another thread without the override: still gets the leak error.
        f = hk.transform(lambda x: jax.vmap(hk.Linear(2))(x))
        started.set()
        release.wait(timeout=30)
        try:
            f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
        except hk.JaxUsageError:
            seen["error"] = True

    thread = threading.Thread(target=other_thread)
    with override():
        thread.start()
        started.wait(timeout=30)
        release.set()
        thread.join()
        params = hk.transform(lambda x: jax.vmap(hk.Linear(2))(x)).init(
            jax.random.PRNGKey(0), jnp.ones([2, 3]))
    assert seen == {"error": True}
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (2,), "w": (3, 2)}}


def test_global_switch():
    f = hk.transform(lambda x: jax.vmap(hk.Linear(2))(x))
    try:
        hk.config.set(override_jax_transforms=True)
        params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    finally:
        hk.config.set(override_jax_transforms=False)
    assert sorted(params) == ["linear"]
    with pytest.raises(hk.JaxUsageError):
        f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))


def test_check_can_be_disabled():
    f = hk.transform(lambda x: jax.vmap(lambda y: y * jax.random.uniform(hk.next_rng_key()))(x))
    with hk.config.context(check_jax_usage=False):
        f.apply({}, jax.random.PRNGKey(0), jnp.ones([2]))  # no error (and silently shares a key)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "hessian"])
def test_jacobians_under_override(name):
    @override()
    def forward(x):
        lin = hk.Linear(2)
        return getattr(jax, name)(lambda x: jnp.sum(jnp.tanh(lin(x))))(x)

    f = hk.transform(forward)
    params = f.init(jax.random.PRNGKey(0), jnp.ones([3]))
    inner = hk.transform(lambda x: jnp.sum(jnp.tanh(hk.Linear(2)(x))))
    want = getattr(jax, name)(lambda x: inner.apply(params, None, x))(jnp.ones([3]))
    assert_close(f.apply(params, None, jnp.ones([3])), want, rtol=1e-5)


def test_jvp_vjp_linearize_under_override():
    inner = hk.transform(lambda x: jnp.tanh(hk.Linear(2)(x)))

    @override()
    def forward(x):
        lin = hk.Linear(2)
        g = lambda x: jnp.tanh(lin(x))  # noqa: E731
        _, tangent = jax.jvp(g, (x,), (jnp.ones_like(x),))
        out, vjp_fn = jax.vjp(g, x)
        _, lin_fn = jax.linearize(g, x)
        return tangent, vjp_fn(jnp.ones_like(out))[0], lin_fn(jnp.ones_like(x))

    f = hk.transform(forward)
    x = jnp.ones([3])
    params = f.init(jax.random.PRNGKey(0), x)
    g = lambda x: inner.apply(params, None, x)  # noqa: E731
    tangent, cotangent, linear = f.apply(params, None, x)
    assert_close(tangent, jax.jvp(g, (x,), (jnp.ones_like(x),))[1], rtol=1e-5)
    assert_close(cotangent, jax.vjp(g, x)[1](jnp.ones([2]))[0], rtol=1e-5)
    assert_close(linear, tangent, rtol=1e-5)
