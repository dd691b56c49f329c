"""Tests of Conv1DLSTM, Conv2DLSTM and Conv3DLSTM, with dm-haiku 0.0.17 as the oracle."""

import inspect
import itertools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu

RTOL = 1e-5
ATOL = 1e-6


def plain(tree):
    return {k: dict(v) for k, v in tree.items()}


def spec(params):
    return jax.tree_util.tree_map(lambda a: (tuple(a.shape), jnp.dtype(a.dtype)), plain(params))


def to_plain_tuples(tree, lib):
    return jax.tree_util.tree_map(lambda x: tuple(x) if isinstance(x, lib.LSTMState) else x, tree,
                                  is_leaf=lambda x: isinstance(x, lib.LSTMState))


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, (a_def, e_def)
    for a, e in zip(a_leaves, e_leaves):
        assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def compare(build, *args):
    """Same params tree and init values as haiku; same outputs with haiku's (random) params."""
    h = haiku.transform(lambda *a: build(haiku, *a))
    s = senryu.transform(lambda *a: build(senryu, *a))
    key = jax.random.PRNGKey(0)
    h_params = h.init(key, *args)
    s_params = s.init(key, *args)
    assert spec(s_params) == spec(h_params)
    assert_close(plain(s_params), plain(h_params), rtol=0, atol=0)
    rng = np.random.RandomState(0)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(-0.5, 0.5, a.shape), a.dtype), plain(h_params))
    s_out = to_plain_tuples(s.apply(params, None, *args), senryu)
    h_out = to_plain_tuples(h.apply(params, None, *args), haiku)
    assert_close(s_out, h_out)
    return s_out


def perturb(state):
    return jax.tree_util.tree_map(
        lambda a: a + 0.5 * jnp.sin(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape) + 1.0), state)


def inputs(shape, seed=1):
    return jnp.asarray(np.random.RandomState(seed).normal(size=shape).astype(np.float32))


CLASSES = {1: "Conv1DLSTM", 2: "Conv2DLSTM", 3: "Conv3DLSTM"}
SPATIAL = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}
KERNELS = {1: [3, (2,)], 2: [3, (3, 1)], 3: [2, (3, 1, 2)]}


@pytest.mark.parametrize(
    "dims,batch_size,in_channels,kernel_index",
    # Batch size, channels and kernel form (int or sequence) change together, to stay lean.
    [(dims,) + rest for dims, rest in itertools.product([1, 2, 3], [(None, 1, 0), (2, 3, 1)])])
def test_step_matches_haiku(dims, batch_size, in_channels, kernel_index):
    spatial = SPATIAL[dims]
    kernel = KERNELS[dims][kernel_index]
    batch = () if batch_size is None else (batch_size,)
    x = inputs(batch + spatial + (in_channels,))

    def build(lib, x):
        core = getattr(lib, CLASSES[dims])(input_shape=spatial, output_channels=2,
                                           kernel_shape=kernel)
        initial = core.initial_state(batch_size)
        out1, state1 = core(x, perturb(initial))
        out2, state2 = core(-x, state1)
        return initial, out1, state1, out2, state2

    initial, out1, state1, out2, state2 = compare(build, x)
    assert initial[0].shape == batch + spatial + (2,)
    assert out2.shape == batch + spatial + (2,)
    np.testing.assert_array_equal(out2, state2[0])


@pytest.mark.parametrize("time_major,reverse", list(itertools.product([True, False],
                                                                     [False, True])))
def test_dynamic_unroll_matches_haiku(time_major, reverse):
    xs = inputs((3, 2, 5, 3))
    if not time_major:
        xs = jnp.swapaxes(xs, 0, 1)

    def build(lib, xs):
        core = lib.Conv1DLSTM(input_shape=(5,), output_channels=2, kernel_shape=(2,))
        return lib.dynamic_unroll(core, xs, core.initial_state(2), time_major=time_major,
                                  reverse=reverse)

    compare(build, xs)


def test_static_unroll_matches_haiku():
    xs = inputs((3, 2, 4, 3, 1))

    def build(lib, xs):
        core = lib.Conv2DLSTM(input_shape=[4, 3], output_channels=2, kernel_shape=3)
        return lib.static_unroll(core, xs, core.initial_state(2))

    compare(build, xs)


def test_equations_by_hand():
    """Gates [i, g, f, o] of SAME-padded convolutions of x and h, +1 on the forget gate."""
    x = inputs((1, 5, 2))
    h0, c0 = inputs((1, 5, 3), seed=2), inputs((1, 5, 3), seed=3)

    def f(x, h, c):
        return senryu.Conv1DLSTM([5], 3, 3)(x, senryu.LSTMState(h, c))

    def convs(x, h):
        return (senryu.Conv1D(12, 3, name="input_to_hidden")(x)
                + senryu.Conv1D(12, 3, name="hidden_to_hidden")(h))

    f = senryu.transform(f)
    params = f.init(jax.random.PRNGKey(0), x, h0, c0)
    params = jax.tree_util.tree_map(lambda a: a + 0.1, plain(params))  # non-zero biases
    conv_params = {k.split("/", 1)[1]: v for k, v in params.items()}
    gates = senryu.transform(convs).apply(conv_params, None, x, h0)
    i, g, fg, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(fg + 1) * c0 + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    out, state = f.apply(params, None, x, h0, c0)
    assert_close((out, tuple(state)), (h, (h, c)))


def test_names_attributes_and_signatures():
    def build(lib):
        cores = [lib.Conv1DLSTM([3], 2, 1), lib.Conv2DLSTM([3, 3], 2, [1, 2]),
                 lib.Conv3DLSTM((1, 2, 3), 4, 3)]
        return [(c.module_name, c.num_spatial_dims, c.input_shape, c.output_channels,
                 c.kernel_shape) for c in cores]

    assert (senryu.transform(lambda: build(senryu)).apply({}, None)
            == haiku.transform(lambda: build(haiku)).apply({}, None))
    for name in CLASSES.values():
        assert issubclass(getattr(senryu, name), senryu.RNNCore)
        ours = inspect.signature(getattr(senryu, name).__init__)
        theirs = inspect.signature(getattr(haiku, name).__init__)
        assert [(p.name, p.default) for p in ours.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()]


def run(f, *args):
    t = senryu.transform(f)
    return t.apply(t.init(jax.random.PRNGKey(0), *args), None, *args)


def test_errors():
    core = lambda: senryu.Conv2DLSTM([4, 4], 2, 3)  # noqa: E731
    state = lambda b: core().initial_state(b)  # noqa: E731
    with pytest.raises(ValueError, match=r"Conv2DLSTM 'conv2_dlstm'.*inputs have shape "
                                         r"\(2, 4, 5, 1\), expected \[batch, \*\[4, 4\], channels\]"):
        run(lambda x: core()(x, state(2)), jnp.ones([2, 4, 5, 1]))
    with pytest.raises(ValueError, match=r"Conv2DLSTM 'conv2_dlstm'.*inputs have shape \(4, 4\)"):
        run(lambda x: core()(x, state(None)), jnp.ones([4, 4]))
    with pytest.raises(TypeError, match=r"Conv2DLSTM 'conv2_dlstm'.*prev_state must be an "
                                        r"LSTMState"):
        run(lambda x: core()(x, jnp.zeros([2, 4, 4, 2])), jnp.ones([2, 4, 4, 1]))
    with pytest.raises(ValueError, match=r"Conv2DLSTM 'conv2_dlstm'.*prev_state.hidden has shape "
                                         r"\(3, 4, 4, 2\).*\(2, 4, 4, 2\)"):
        run(lambda x: core()(x, state(3)), jnp.ones([2, 4, 4, 1]))
    with pytest.raises(ValueError, match=r"Conv2DLSTM 'conv2_dlstm'.*prev_state.hidden has shape "
                                         r"\(2, 4, 4, 3\)"):
        run(lambda x: core()(x, senryu.Conv2DLSTM([4, 4], 3, 3).initial_state(2)),
            jnp.ones([2, 4, 4, 1]))
    with pytest.raises(ValueError, match=r"Conv3DLSTM 'conv3_dlstm'.*input_shape \(4, 4\) must "
                                         r"have 3 entries"):
        run(lambda: senryu.Conv3DLSTM([4, 4], 2, 3))
