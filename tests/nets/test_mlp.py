"""MLP compared with dm-haiku 0.0.17 (the oracle)."""

import inspect
import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu
from oracle import assert_close, assert_same_tree
from senryu.nets.mlp import MLP

RTOL, ATOL = 1e-5, 1e-6
X = jax.random.normal(jax.random.PRNGKey(1), [3, 5])


def _both(make):
    """``make(hk)`` is the function to transform (built with ``hk``)."""
    return senryu.transform(make(senryu)), haiku.transform(make(haiku))


def _check_against_haiku(make, x=X, apply_key=None):
    ours, theirs = _both(make)
    key = jax.random.PRNGKey(0)
    params = theirs.init(key, x)
    our_params = ours.init(key, x)
    assert_same_tree(our_params, params)
    assert_close(our_params, params)  # same initializers consuming the same keys
    out = theirs.apply(params, apply_key, x)
    our_out = ours.apply(params, apply_key, x)
    assert_close(our_out, out, RTOL, ATOL)
    return our_params, our_out


@pytest.mark.parametrize(
    "output_sizes, with_bias, activate_final, activation",
    list(itertools.product([(3,), (4, 6, 2)], [True, False], [False, True],
                           ["relu", "tanh"])))
def test_matches_haiku(output_sizes, with_bias, activate_final, activation):
    def make(hk):
        return lambda x: hk.nets.MLP(output_sizes, with_bias=with_bias,
                                     activation=getattr(jax.nn, activation),
                                     activate_final=activate_final)(x)
    params, out = _check_against_haiku(make)
    assert list(params) == [f"mlp/~/linear_{i}" for i in range(len(output_sizes))]
    assert all(("b" in p) == with_bias for p in params.values())
    assert out.shape == (3, output_sizes[-1])
    if activate_final and activation == "relu":
        assert (out >= 0).all()


def test_initializers_and_name_match_haiku():
    def make(hk):
        return lambda x: hk.nets.MLP([4, 2], w_init=hk.initializers.RandomUniform(),
                                     b_init=hk.initializers.Constant(0.5), name="net")(x)
    params, _ = _check_against_haiku(make)
    assert list(params) == ["net/~/linear_0", "net/~/linear_1"]
    np.testing.assert_array_equal(params["net/~/linear_1"]["b"], [0.5, 0.5])


def test_default_activation_is_relu():
    assert inspect.signature(MLP.__init__).parameters["activation"].default is jax.nn.relu
    f = senryu.transform(lambda x: MLP([2], activate_final=True)(x))
    params = {"mlp/~/linear_0": {"w": jnp.array([[1., -1.]]), "b": jnp.zeros([2])}}
    np.testing.assert_array_equal(f.apply(params, None, jnp.array([[2.]])), [[2., 0.]])


def test_empty_mlp_is_the_identity():
    f = senryu.transform(lambda x: MLP([])(x))
    params = f.init(None, X)
    assert params == {}
    np.testing.assert_array_equal(f.apply(params, None, X), X)


def test_reverse_matches_haiku():
    def make(hk):
        def f(x):
            mlp = hk.nets.MLP([4, 6, 2], activate_final=True)
            y = mlp(x)
            reversed_mlp = mlp.reverse()
            assert reversed_mlp.activate_final  # inherited
            return reversed_mlp(y)
        return f
    params, out = _check_against_haiku(make)
    assert list(params)[3:] == [f"mlp/~reverse/mlp_reversed/~/linear_{i}" for i in range(3)]
    assert [params[f"mlp/~reverse/mlp_reversed/~/linear_{i}"]["w"].shape
            for i in range(3)] == [(2, 6), (6, 4), (4, 5)]
    assert out.shape == X.shape


def test_reverse_with_options_matches_haiku():
    def make(hk):
        def f(x):
            mlp = hk.nets.MLP([4, 3], with_bias=False, activate_final=True,
                              activation=jax.nn.sigmoid)
            y = mlp(x)
            return mlp.reverse(activate_final=False, name="decoder")(y)
        return f
    params, out = _check_against_haiku(make)
    assert list(params)[2:] == ["mlp/~reverse/decoder/~/linear_0",
                                "mlp/~reverse/decoder/~/linear_1"]
    assert all("b" not in p for p in params.values())
    assert (out < 0).any()  # not activated: the sigmoid would be positive


def test_documented_reverse_example():
    def f(x):
        mlp = senryu.nets.MLP([1, 2, 3])
        y = mlp(x)
        rev = mlp.reverse()
        return rev(y)
    f = senryu.transform(f)
    x = jnp.ones([1, 2])
    assert f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape == (1, 2)


@pytest.mark.parametrize("activate_final", [False, True])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_dropout_matches_haiku(activate_final, activation):
    def make(hk):
        return lambda x: hk.nets.MLP([16, 8], activate_final=activate_final,
                                     activation=getattr(jax.nn, activation))(
            x, dropout_rate=0.5, rng=hk.next_rng_key())
    _, out = _check_against_haiku(make, apply_key=jax.random.PRNGKey(7))
    _, other = _check_against_haiku(make, apply_key=jax.random.PRNGKey(8))
    assert not np.allclose(out, other)  # the mask depends on the key


def test_dropout_zeroes_and_rescales():
    f = senryu.transform(lambda x: MLP([64, 1], w_init=jnp.ones, activation=lambda v: v)(
        x, dropout_rate=0.75, rng=senryu.next_rng_key()))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 1]))
    params["mlp/~/linear_1"]["w"] = jnp.ones([64, 1])
    out = f.apply(params, jax.random.PRNGKey(1), jnp.ones([1, 1]))
    # Each of the 64 hidden units is kept (and multiplied by 4) with probability 0.25.
    assert float(out[0, 0]) % 4 == 0 and 0 < float(out[0, 0]) < 64 * 4


def test_gradients_match_haiku():
    ours, theirs = _both(lambda hk: lambda x: hk.nets.MLP([4, 3], activation=jnp.tanh)(x))
    params = theirs.init(jax.random.PRNGKey(0), X)

    def loss(transformed):
        return jax.grad(lambda p, x: jnp.sum(transformed.apply(p, None, x) ** 2),
                        argnums=(0, 1))
    assert_close(loss(ours)(params, X), loss(theirs)(params, X), RTOL, ATOL)


def _attributes(hk, output_sizes, *names):
    def f(x):
        mlp = hk.nets.MLP(output_sizes, activate_final=True)
        mlp(x)
        return tuple(getattr(mlp, name) for name in names)
    return hk.transform(f).apply(hk.transform(f).init(jax.random.PRNGKey(0), X), None, X)


def test_attributes_match_haiku():
    names = ("with_bias", "w_init", "b_init", "activation", "activate_final", "name",
             "module_name")
    assert _attributes(senryu, [4, 3], *names) == _attributes(haiku, [4, 3], *names)
    layers, = _attributes(senryu, [4, 3], "layers")
    assert type(layers) is tuple and [type(layer).__name__ for layer in layers] == ["Linear"] * 2


@pytest.mark.parametrize("output_sizes", [[4, 3], []])
def test_output_size_matches_haiku(output_sizes):
    # Haiku's MLP exposes the size of its last layer (None when there are no layers).
    assert (_attributes(senryu, output_sizes, "output_size")
            == _attributes(haiku, output_sizes, "output_size"))


def test_signature_matches_haiku():
    for method in ("__init__", "__call__", "reverse"):
        ours = inspect.signature(getattr(MLP, method)).parameters
        theirs = inspect.signature(getattr(haiku.nets.MLP, method)).parameters
        assert list(ours) == list(theirs), method
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


def test_b_init_without_bias_raises():
    with pytest.raises(ValueError, match=r"with_bias=False"):
        senryu.transform(lambda: MLP([2], with_bias=False, b_init=jnp.ones)).init(None)


def test_reverse_before_call_raises():
    with pytest.raises(ValueError, match=r"mlp: call the MLP before `reverse\(\)`"):
        senryu.transform(lambda: MLP([2, 3]).reverse()).init(None)


def test_dropout_without_rng_raises():
    f = senryu.transform(lambda x: MLP([2])(x, dropout_rate=0.5))
    with pytest.raises(ValueError, match=r"mlp: `dropout_rate` was given without an `rng`"):
        f.init(jax.random.PRNGKey(0), X)


def test_rng_without_dropout_raises():
    f = senryu.transform(lambda x: MLP([2])(x, rng=senryu.next_rng_key()))
    with pytest.raises(ValueError, match=r"mlp: `rng` was given without a `dropout_rate`"):
        f.init(jax.random.PRNGKey(0), X)
