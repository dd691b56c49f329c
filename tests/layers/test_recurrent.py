"""Tests of the recurrent cores and unrolls, with dm-haiku 0.0.17 as the oracle."""

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


# ------------------------------------------------------------------------------------------------
# Helpers.
# ------------------------------------------------------------------------------------------------


def plain(tree):
    """Nested plain dicts of a params/state mapping (so both libraries' containers compare)."""
    return {k: dict(v) for k, v in tree.items()}


def spec(params):
    return jax.tree_util.tree_map(lambda a: (tuple(a.shape), jnp.dtype(a.dtype)), plain(params))


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, (a_def, e_def)
    for a, e in zip(a_leaves, e_leaves):
        assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(e, np.float32),
                                   rtol=rtol, atol=atol)


def same_structure(ours, theirs):
    """Tree structures equal, up to the LSTMState class (each library has its own)."""
    return (jax.tree_util.tree_structure(to_plain_tuples(ours, senryu))
            == jax.tree_util.tree_structure(to_plain_tuples(theirs, haiku)))


def to_plain_tuples(tree, lib):
    return jax.tree_util.tree_map(lambda x: tuple(x) if isinstance(x, lib.LSTMState) else x, tree,
                                  is_leaf=lambda x: isinstance(x, lib.LSTMState))


def compare(build, *args, seed=0, return_params=False):
    """Runs ``build(lib, *args)`` transformed with haiku and with senryu; checks they agree.

    Checks: same parameter tree (names, shapes, dtypes); same initial parameter values for the same
    key; same outputs with haiku's parameters copied into senryu.
    Returns senryu's outputs (LSTMStates as plain tuples), and the parameters used if
    ``return_params``.
    """
    h = haiku.transform(lambda *a: build(haiku, *a))
    s = senryu.transform(lambda *a: build(senryu, *a))
    key = jax.random.PRNGKey(seed)
    h_params = h.init(key, *args)
    s_params = s.init(key, *args)
    assert spec(s_params) == spec(h_params)
    assert_close(plain(s_params), plain(h_params), rtol=0, atol=0)
    # Random parameters (not the initial ones, so that zero biases do not hide mistakes).
    rng = np.random.RandomState(seed)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(-1, 1, a.shape), a.dtype), plain(h_params))
    h_out = h.apply(params, None, *args)
    s_out = s.apply(params, None, *args)
    assert same_structure(s_out, h_out), (s_out, h_out)
    s_out = to_plain_tuples(s_out, senryu)
    assert_close(s_out, to_plain_tuples(h_out, haiku))
    return (s_out, params) if return_params else s_out


def perturb(lib, state):
    """Deterministic non-zero version of a state, built from its shape."""
    del lib
    return jax.tree_util.tree_map(
        lambda a: a + 0.5 * jnp.sin(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape) + 1.0), state)


def inputs(shape, seed=1, dtype=np.float32):
    return jnp.asarray(np.random.RandomState(seed).normal(size=shape).astype(dtype))


# Each builder makes a core with the given library.
CORES = {
    "vanilla": lambda lib: lib.VanillaRNN(3),
    "vanilla_single_bias": lambda lib: lib.VanillaRNN(3, double_bias=False),
    "lstm": lambda lib: lib.LSTM(3),
    "gru": lambda lib: lib.GRU(3),
    "gru_inits": lambda lib: lib.GRU(
        3, w_i_init=lib.initializers.RandomNormal(0.3), w_h_init=lib.initializers.Orthogonal(),
        b_init=lib.initializers.Constant(0.2)),
    "identity": lambda lib: lib.IdentityCore(),
    "deep": lambda lib: lib.DeepRNN([lib.LSTM(4), jax.nn.relu, lib.GRU(2), lib.VanillaRNN(3)]),
    "deep_skip": lambda lib: lib.deep_rnn_with_skip_connections(
        [lib.LSTM(4), lib.GRU(2), lib.VanillaRNN(3, name="last")]),
    "deep_no_cores": lambda lib: lib.DeepRNN([jnp.tanh, lib.Linear(2)]),
    "reset_lstm": lambda lib: lib.ResetCore(lib.LSTM(3)),
    "reset_deep": lambda lib: lib.ResetCore(lib.DeepRNN([lib.GRU(2), lib.LSTM(3)])),
}


def step_inputs(name, x, batch_size):
    """The per-step inputs of core ``name``: ResetCores take ``(x, should_reset)``."""
    if name.startswith("reset"):
        reset = jnp.array(True) if batch_size is None else jnp.arange(batch_size) % 2 == 0
        return (x, reset)
    return x


# ------------------------------------------------------------------------------------------------
# One step of each core against haiku.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,batch_size,input_size",
    [(name,) + sizes for name, sizes in itertools.product(
        ["vanilla", "lstm", "gru", "deep", "deep_skip", "reset_lstm"], [(None, 1), (3, 4)])]
    # Variants checked once each, to stay lean.
    + [("vanilla_single_bias", 3, 4), ("gru_inits", 3, 4), ("identity", None, 1),
       ("deep_no_cores", 3, 4), ("reset_deep", None, 1)])
def test_step_matches_haiku(name, batch_size, input_size):
    shape = (input_size,) if batch_size is None else (batch_size, input_size)
    x = inputs(shape)

    def build(lib, x):
        core = CORES[name](lib)
        state = perturb(lib, core.initial_state(batch_size))
        out1, state1 = core(step_inputs(name, x, batch_size), state)
        out2, state2 = core(step_inputs(name, 2 * x, batch_size), state1)
        return core.initial_state(batch_size), out1, state1, out2, state2

    # Orthogonal and RandomNormal draw keys like any initializer: values are compared too.
    compare(build, x)


def test_initial_state_shapes_and_types():
    def build(lib):
        cores = [CORES[n](lib) for n in ("vanilla", "lstm", "gru", "identity", "deep", "deep_skip")]
        return [(c.initial_state(None), c.initial_state(2)) for c in cores]

    out = senryu.transform(lambda: build(senryu)).apply({}, None)
    expected = haiku.transform(lambda: build(haiku)).apply({}, None)
    assert same_structure(out, expected)
    assert_close(to_plain_tuples(out, senryu), to_plain_tuples(expected, haiku))
    lstm_unbatched, lstm_batched = out[1]
    assert isinstance(lstm_batched, senryu.LSTMState)
    assert lstm_batched.hidden.shape == (2, 3) and lstm_unbatched.cell.shape == (3,)
    assert out[3] == ((), ())


def test_low_precision_inputs_dtypes_match_haiku():
    x = inputs((3, 4)).astype(jnp.bfloat16)

    def build(lib, x):
        return [c(x, c.initial_state(3)) for c in (lib.VanillaRNN(3), lib.LSTM(3), lib.GRU(3))]

    h = haiku.transform(lambda x: build(haiku, x))
    s = senryu.transform(lambda x: build(senryu, x))
    h_params = h.init(jax.random.PRNGKey(0), x)
    assert spec(s.init(jax.random.PRNGKey(0), x)) == spec(h_params)
    s_out = to_plain_tuples(s.apply(h_params, None, x), senryu)
    h_out = to_plain_tuples(h.apply(h_params, None, x), haiku)
    assert_close(s_out, h_out, rtol=1e-2, atol=1e-2)


def test_lstm_equations():
    """LSTM gates are [i, g, f, o] with +1 on the forget gate, checked by hand in numpy."""
    rng = np.random.RandomState(0)
    batch, features, hidden = 2, 3, 4
    w = rng.normal(size=(features + hidden, 4 * hidden)).astype(np.float32)
    b = rng.normal(size=(4 * hidden,)).astype(np.float32)
    x, h0, c0 = (rng.normal(size=s).astype(np.float32)
                 for s in [(batch, features), (batch, hidden), (batch, hidden)])
    f = senryu.transform(lambda x, h, c: senryu.LSTM(hidden)(x, senryu.LSTMState(h, c)))
    out, state = f.apply({"lstm/linear": {"w": w, "b": b}}, None, x, h0, c0)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, g, fg, o = np.split(np.concatenate([x, h0], -1) @ w + b, 4, axis=-1)
    c = sig(fg + 1) * c0 + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    np.testing.assert_allclose(state.cell, c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state.hidden, out)


def test_gru_equations():
    rng = np.random.RandomState(0)
    batch, features, hidden = 2, 3, 4
    params = {"gru": {"w_i": rng.normal(size=(features, 3 * hidden)).astype(np.float32),
                      "w_h": rng.normal(size=(hidden, 3 * hidden)).astype(np.float32),
                      "b": rng.normal(size=(3 * hidden,)).astype(np.float32)}}
    x = rng.normal(size=(batch, features)).astype(np.float32)
    h0 = rng.normal(size=(batch, hidden)).astype(np.float32)
    out, state = senryu.transform(lambda x, h: senryu.GRU(hidden)(x, h)).apply(params, None, x, h0)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    wi, wh, b = (np.split(params["gru"][k], 3, axis=-1) for k in ("w_i", "w_h", "b"))
    z = sig(x @ wi[0] + h0 @ wh[0] + b[0])
    r = sig(x @ wi[1] + h0 @ wh[1] + b[1])
    a = np.tanh(x @ wi[2] + (r * h0) @ wh[2] + b[2])
    np.testing.assert_allclose(out, (1 - z) * h0 + z * a, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state, out)


def test_gru_default_initializers():
    def attrs(lib):
        core = lib.GRU(3)
        return (type(core.w_i_init).__name__, type(core.w_h_init).__name__, core.b_init)

    s = senryu.transform(lambda: attrs(senryu)).apply({}, None)
    assert s[0] == "VarianceScaling" and s[1] == "VarianceScaling" and s[2] is jnp.zeros


def test_module_names_and_attributes():
    def build(lib):
        mods = [lib.VanillaRNN(3), lib.LSTM(3), lib.GRU(3), lib.IdentityCore(),
                lib.ResetCore(lib.IdentityCore()), lib.DeepRNN([]),
                lib.deep_rnn_with_skip_connections([lib.IdentityCore()])]
        return [m.module_name for m in mods], type(mods[-1]).__name__, mods[-1].skip_connections

    assert (senryu.transform(lambda: build(senryu)).apply({}, None)
            == haiku.transform(lambda: build(haiku)).apply({}, None))

    def attrs(lib):
        v, l, r = lib.VanillaRNN(5, double_bias=False), lib.LSTM(6), lib.ResetCore(lib.LSTM(2))
        d = lib.DeepRNN([jnp.tanh])
        return (v.hidden_size, v.double_bias, l.hidden_size, r.core.hidden_size, d.layers,
                d.skip_connections)

    ours = senryu.transform(lambda: attrs(senryu)).apply({}, None)
    theirs = haiku.transform(lambda: attrs(haiku)).apply({}, None)
    assert ours == theirs


def test_class_hierarchy_and_signatures():
    for name in ["VanillaRNN", "LSTM", "GRU", "IdentityCore", "ResetCore", "DeepRNN"]:
        assert issubclass(getattr(senryu, name), senryu.RNNCore)
        assert issubclass(getattr(senryu, name), senryu.Module)
        # Signatures of __init__: the class signature depends on the core's metaclass.
        ours = inspect.signature(getattr(senryu, name).__init__)
        theirs = inspect.signature(getattr(haiku, name).__init__)
        assert list(ours.parameters) == list(theirs.parameters), name
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()], name
    for name in ["static_unroll", "dynamic_unroll", "deep_rnn_with_skip_connections"]:
        ours = inspect.signature(getattr(senryu, name))
        theirs = inspect.signature(getattr(haiku, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()], name
    assert senryu.LSTMState._fields == ("hidden", "cell")
    assert issubclass(senryu.LSTMState, tuple)


def test_rnn_core_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        senryu.transform(lambda: senryu.RNNCore()).init(None)

    class OnlyCall(senryu.RNNCore):
        def __call__(self, inputs, prev_state):
            return inputs, prev_state

    with pytest.raises(TypeError, match="initial_state"):
        senryu.transform(lambda: OnlyCall()).init(None)
    assert senryu.RNNCore.__abstractmethods__ == frozenset({"__call__", "initial_state"})


def test_documented_deep_rnn_example():
    def f(x):
        deep_rnn = senryu.DeepRNN([
            senryu.LSTM(hidden_size=4),
            jax.nn.relu,
            senryu.LSTM(hidden_size=2),
        ])
        return deep_rnn(x, deep_rnn.initial_state(batch_size=3))

    f = senryu.transform(f)
    params = f.init(jax.random.PRNGKey(0), jnp.ones([3, 4]))
    assert spec(params) == {"lstm/linear": {"w": ((8, 16), jnp.float32), "b": ((16,), jnp.float32)},
                            "lstm_1/linear": {"w": ((6, 8), jnp.float32),
                                              "b": ((8,), jnp.float32)}}
    out, (s1, s2) = f.apply(params, None, jnp.ones([3, 4]))
    assert out.shape == (3, 2) and s1.hidden.shape == (3, 4) and s2.cell.shape == (3, 2)
    np.testing.assert_array_equal(out, s2.hidden)


def test_deep_rnn_skip_connection_inputs():
    """Layer i > 0 sees concat(inputs, output_{i-1}); the output concatenates every output."""
    def f(x):
        core = senryu.deep_rnn_with_skip_connections(
            [senryu.IdentityCore(), senryu.IdentityCore(), senryu.IdentityCore()])
        return core(x, core.initial_state(2))

    x = inputs((2, 3))
    out, state = senryu.transform(f).apply({}, None, x)
    x1 = jnp.concatenate([x, x], -1)
    x2 = jnp.concatenate([x, x1], -1)
    np.testing.assert_array_equal(out, jnp.concatenate([x, x1, x2], -1))
    assert state == ((), (), ())


def test_nested_inputs_deep_rnn_skip_matches_haiku():
    x = {"a": inputs((2, 3)), "b": inputs((2, 1), seed=2)}

    def build(lib, x):
        core = lib.deep_rnn_with_skip_connections([lib.IdentityCore(), lib.IdentityCore()])
        return core(x, core.initial_state(2))

    compare(build, x)


# ------------------------------------------------------------------------------------------------
# Unrolls.
# ------------------------------------------------------------------------------------------------

def sequence(name, time_steps, batch_size, features, time_major):
    x = inputs((time_steps,) + (() if batch_size is None else (batch_size,)) + (features,))
    if name.startswith("reset"):
        resets = (np.random.RandomState(3).uniform(size=x.shape[:-1]) < 0.4)
        x = (x, jnp.asarray(resets))
    if not time_major:
        x = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), x)
    return x


BATCH_LAYOUTS = [(None, True), (2, True), (2, False)]  # batch-major needs a batch axis


@pytest.mark.parametrize(
    "name,batch_size,time_major,reverse",
    [(n,) + layout + (r,) for n, layout, r in itertools.product(
        ["lstm"], BATCH_LAYOUTS, [False, True])])
def test_dynamic_unroll_matches_haiku(name, batch_size, time_major, reverse):
    xs = sequence(name, 3, batch_size, 2, time_major)

    def build(lib, xs):
        core = CORES[name](lib)
        state = perturb(lib, core.initial_state(batch_size))
        return lib.dynamic_unroll(core, xs, state, time_major=time_major, reverse=reverse)

    compare(build, xs)


@pytest.mark.parametrize("time_major,reverse", list(itertools.product([True, False],
                                                                     [False, True])))
def test_dynamic_unroll_return_all_states_matches_haiku(time_major, reverse):
    xs = sequence("lstm", 3, 2, 2, time_major)

    def build(lib, xs):
        core = lib.LSTM(3)
        state = perturb(lib, core.initial_state(2))
        return lib.dynamic_unroll(core, xs, state, time_major=time_major, reverse=reverse,
                                  return_all_states=True)

    compare(build, xs)


@pytest.mark.parametrize("name,batch_size,time_major",
                         [(n,) + layout for n, layout in itertools.product(
                             ["lstm", "identity", "reset_lstm"], BATCH_LAYOUTS)])
def test_static_unroll_matches_haiku_and_dynamic(name, batch_size, time_major):
    xs = sequence(name, 3, batch_size, 2, time_major)

    def build(lib, xs, unroll_fn="static_unroll"):
        core = CORES[name](lib)
        state = perturb(lib, core.initial_state(batch_size))
        return getattr(lib, unroll_fn)(core, xs, state, time_major=time_major)

    static, params = compare(build, xs, return_params=True)
    dynamic = senryu.transform(lambda xs: build(senryu, xs, "dynamic_unroll")).apply(
        params, None, xs)
    assert_close(to_plain_tuples(dynamic, senryu), static)


def test_dynamic_unroll_reverse_is_reversed_static_unroll():
    xs = inputs((5, 2, 3))

    def f(xs, reverse):
        core = senryu.LSTM(4)
        if reverse:
            return senryu.dynamic_unroll(core, xs, core.initial_state(2), reverse=True)
        out, state = senryu.static_unroll(core, xs[::-1], core.initial_state(2))
        return out[::-1], state

    f = senryu.transform(f)
    params = f.init(jax.random.PRNGKey(0), xs, True)
    assert_close(f.apply(params, None, xs, True), f.apply(params, None, xs, False))


def test_return_all_states_last_is_final_state():
    xs = inputs((3, 2, 2))

    def f(xs):
        core = senryu.LSTM(3)
        out_all, states = senryu.dynamic_unroll(core, xs, core.initial_state(2),
                                                return_all_states=True)
        out, final = senryu.dynamic_unroll(core, xs, core.initial_state(2))
        return out_all, states, out, final

    f = senryu.transform(f)
    out_all, states, out, final = f.apply(f.init(jax.random.PRNGKey(0), xs), None, xs)
    assert states.hidden.shape == (3, 2, 3)
    np.testing.assert_array_equal(out_all, out)
    np.testing.assert_array_equal(states.hidden, out)
    assert_close(jax.tree_util.tree_map(lambda s: s[-1], states), final)


def test_dynamic_unroll_unroll_argument():
    xs = inputs((3, 2, 2))

    def f(xs, unroll):
        core = senryu.GRU(3)
        return senryu.dynamic_unroll(core, xs, core.initial_state(2), unroll=unroll)

    f = senryu.transform(f)
    params = f.init(jax.random.PRNGKey(0), xs, 1)
    # 2 steps per iteration over 3 steps: one full iteration and a remainder.
    assert_close(f.apply(params, None, xs, 2), f.apply(params, None, xs, 1))


@pytest.mark.parametrize("unroll_fn", ["static_unroll", "dynamic_unroll"])
def test_unroll_inside_jit(unroll_fn):
    xs = inputs((3, 2, 2))

    def f(xs):
        core = senryu.LSTM(3)
        return getattr(senryu, unroll_fn)(core, xs, core.initial_state(2))

    f = senryu.transform(f)
    params = f.init(jax.random.PRNGKey(0), xs)
    eager = f.apply(params, None, xs)
    jitted = jax.jit(f.apply)(params, None, xs)
    assert_close(jitted, eager)
    # Initialising under jit gives the same parameters as eagerly (to the last bit or so: XLA may
    # fuse the initializers' arithmetic differently from op-by-op execution).
    assert_close(plain(jax.jit(f.init)(jax.random.PRNGKey(0), xs)), plain(params), rtol=1e-6,
                 atol=1e-7)


def test_dynamic_unroll_keeps_a_loop_under_jit():
    xs = inputs((20, 2, 3))

    def f(xs, unroll_fn):
        core = senryu.LSTM(3)
        return unroll_fn(core, xs, core.initial_state(2))

    dyn = senryu.transform(lambda xs: f(xs, senryu.dynamic_unroll))
    static = senryu.transform(lambda xs: f(xs, senryu.static_unroll))
    params = dyn.init(jax.random.PRNGKey(0), xs)
    dyn_jaxpr = str(jax.make_jaxpr(dyn.apply)(params, None, xs))
    static_jaxpr = str(jax.make_jaxpr(static.apply)(params, None, xs))
    assert "scan" in dyn_jaxpr
    assert "scan" not in static_jaxpr
    assert static_jaxpr.count("tanh") >= 20 * 2


def test_unroll_nested_sequence():
    xs = {"a": inputs((3, 2, 2)), "b": inputs((3, 2, 1), seed=4)}

    def build(lib, xs):
        core = lib.DeepRNN([lambda d: jnp.concatenate([d["a"], d["b"]], -1), lib.LSTM(3)])
        return (lib.dynamic_unroll(core, xs, core.initial_state(2)),
                lib.static_unroll(core, xs, core.initial_state(2)))

    compare(build, xs)


# ------------------------------------------------------------------------------------------------
# ResetCore against a hand-written loop.
# ------------------------------------------------------------------------------------------------


def hand_loop_with_resets(params, xs, resets, initial, batch_size):
    """Runs an LSTM step by step, resetting by hand where ``resets`` is true."""
    step = senryu.transform(lambda x, s: senryu.LSTM(3)(x, s))
    zero = senryu.LSTMState(*(jnp.zeros(s.shape) for s in initial))
    state, outs = initial, []
    for t in range(xs.shape[0]):
        r = resets[t]
        if batch_size is not None:
            r = r[:, None]
        state = senryu.LSTMState(*(jnp.where(r, z, s) for z, s in zip(zero, state)))
        out, state = step.apply(params, None, xs[t], state)
        outs.append(out)
    return jnp.stack(outs), state


@pytest.mark.parametrize("batch_size,unroll_fn", list(itertools.product(
    [None, 3], ["static_unroll", "dynamic_unroll"])))
def test_reset_core_resets_exactly_where_requested(batch_size, unroll_fn):
    batch = () if batch_size is None else (batch_size,)
    xs = inputs((6,) + batch + (2,))
    resets = jnp.asarray(np.random.RandomState(5).uniform(size=(6,) + batch) < 0.4)
    # Make sure both cases occur.
    resets = resets.at[0].set(False).at[3].set(True)

    def f(xs, resets, initial):
        core = senryu.ResetCore(senryu.LSTM(3))
        return getattr(senryu, unroll_fn)(core, (xs, resets), initial)

    f = senryu.transform(f)
    initial = perturb(senryu, senryu.LSTMState(jnp.zeros(batch + (3,)), jnp.zeros(batch + (3,))))
    params = f.init(jax.random.PRNGKey(0), xs, resets, initial)
    out, final = f.apply(params, None, xs, resets, initial)
    expected_out, expected_final = hand_loop_with_resets(
        {"lstm/linear": params["lstm/linear"]}, xs, resets, initial, batch_size)
    assert_close((out, tuple(final)), (expected_out, tuple(expected_final)))
    # Without any reset, the outputs are those of the plain LSTM.
    no_reset_out, _ = f.apply(params, None, xs, jnp.zeros_like(resets), initial)
    plain_out, _ = hand_loop_with_resets(params, xs, jnp.zeros_like(resets), initial, batch_size)
    assert_close(no_reset_out, plain_out)
    assert not np.allclose(out, no_reset_out)


def test_reset_core_nested_should_reset():
    """A nest of signals resets each state entry separately (here: only the cell)."""
    x = inputs((2, 2))
    initial = perturb(senryu, senryu.LSTMState(jnp.zeros((2, 3)), jnp.zeros((2, 3))))
    should_reset = senryu.LSTMState(hidden=jnp.array([False, False]), cell=jnp.array([True, False]))

    def build(lib, x, initial, should_reset):
        core = lib.ResetCore(lib.LSTM(3))
        return core((x, lib.LSTMState(*should_reset)), lib.LSTMState(*initial))

    compare(build, x, tuple(initial), tuple(should_reset))

    f = senryu.transform(lambda x, s, r: senryu.ResetCore(senryu.LSTM(3))((x, r), s))
    params = f.init(jax.random.PRNGKey(0), x, initial, should_reset)
    step = senryu.transform(lambda x, s: senryu.LSTM(3)(x, s))
    expected_state = senryu.LSTMState(initial.hidden, initial.cell.at[0].set(0.0))
    assert_close(f.apply(params, None, x, initial, should_reset),
                 step.apply(params, None, x, expected_state))


@pytest.mark.parametrize("reset", [jnp.array(True), jnp.array([1, 0, 1])])
def test_reset_core_scalar_and_int_signals_match_haiku(reset):
    x = inputs((3, 2))

    def build(lib, x, reset):
        core = lib.ResetCore(lib.GRU(2))
        return core((x, reset), perturb(lib, core.initial_state(3)))

    compare(build, x, reset)


# ------------------------------------------------------------------------------------------------
# Misuse.
# ------------------------------------------------------------------------------------------------


def run(f, *args):
    """init + apply of ``f`` under senryu.transform (errors surface from either)."""
    t = senryu.transform(f)
    params = t.init(jax.random.PRNGKey(0), *args)
    return t.apply(params, None, *args)


def test_lstm_plain_array_state_is_a_type_error():
    with pytest.raises(TypeError, match=r"LSTM 'lstm'.*prev_state must be an LSTMState"):
        run(lambda x: senryu.LSTM(3)(x, jnp.zeros([2, 3])), jnp.ones([2, 2]))
    with pytest.raises(TypeError, match=r"LSTM 'lstm'.*prev_state must be an LSTMState"):
        run(lambda x: senryu.LSTM(3)(x, (jnp.zeros([2, 3]), jnp.zeros([2, 3]))), jnp.ones([2, 2]))


def test_lstm_wrong_hidden_size_or_batch_is_a_value_error():
    with pytest.raises(ValueError, match=r"LSTM 'lstm'.*prev_state.hidden has shape \(2, 4\).*"
                                         r"\(2, 3\)"):
        run(lambda x: senryu.LSTM(3)(x, senryu.LSTM(4).initial_state(2)), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"LSTM 'my_lstm'.*prev_state.hidden has shape \(5, 3\)"):
        run(lambda x: senryu.LSTM(3, name="my_lstm")(x, senryu.LSTM(3).initial_state(5)),
            jnp.ones([2, 2]))
    bad_cell = senryu.LSTMState(jnp.zeros([2, 3]), jnp.zeros([2, 2]))
    with pytest.raises(ValueError, match=r"LSTM 'lstm'.*prev_state.cell has shape \(2, 2\)"):
        run(lambda x: senryu.LSTM(3)(x, bad_cell), jnp.ones([2, 2]))


def test_vanilla_and_gru_state_errors():
    with pytest.raises(TypeError, match=r"VanillaRNN 'vanilla_rnn'.*prev_state must be an array, "
                                        r"got a LSTMState"):
        run(lambda x: senryu.VanillaRNN(3)(x, senryu.LSTM(3).initial_state(2)), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"VanillaRNN 'vanilla_rnn'.*shape \(2, 4\).*hidden_size=3"):
        run(lambda x: senryu.VanillaRNN(3)(x, jnp.zeros([2, 4])), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"GRU 'gru'.*state has shape \(2, 5\).*hidden_size=3"):
        run(lambda x: senryu.GRU(3)(x, jnp.zeros([2, 5])), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"GRU 'gru'.*batch axes of inputs \(2, 2\) and of "
                                         r"prev_state \(4, 3\)"):
        run(lambda x: senryu.GRU(3)(x, jnp.zeros([4, 3])), jnp.ones([2, 2]))
    with pytest.raises(TypeError, match=r"GRU 'gru'.*inputs must be an array, got a dict"):
        run(lambda x: senryu.GRU(3)({"x": x}, jnp.zeros([2, 3])), jnp.ones([2, 2]))


def test_input_feature_size_change_between_init_and_apply():
    f = senryu.transform(lambda x: senryu.GRU(3)(x, jnp.zeros([2, 3])))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"gru.*w_i"):
        f.apply(params, None, jnp.ones([2, 5]))


def test_deep_rnn_errors():
    with pytest.raises(ValueError, match=r"skip_connections requires for all layers to be "
                                         r"`hk.RNNCore`s"):
        run(lambda: senryu.deep_rnn_with_skip_connections([senryu.LSTM(2), jax.nn.relu]))
    make = lambda: senryu.DeepRNN([senryu.LSTM(2), jax.nn.relu, senryu.GRU(2)])  # noqa: E731
    with pytest.raises(ValueError, match=r"DeepRNN 'deep_rnn'.*state has 1 entries.*2 RNNCores"):
        run(lambda x: make()(x, (senryu.LSTM(2).initial_state(2),)), jnp.ones([2, 2]))
    with pytest.raises(TypeError, match=r"DeepRNN 'deep_rnn'.*state must be a tuple"):
        run(lambda x: make()(x, jnp.zeros([2, 2])), jnp.ones([2, 2]))
    with pytest.raises(ValueError, match=r"_DeepRNN '_+deep_rnn'.*needs at least one layer"):
        run(lambda x: senryu.deep_rnn_with_skip_connections([])(x, ()), jnp.ones([2, 2]))


def test_reset_core_errors():
    core = lambda: senryu.ResetCore(senryu.LSTM(3))  # noqa: E731
    state = senryu.LSTMState(jnp.zeros([3, 3]), jnp.zeros([3, 3]))
    with pytest.raises(ValueError, match=r"ResetCore 'reset_core'.*should_reset signal shape "
                                         r"\(3, 2\) is not a prefix of the state entry shape \(3, 3\)"):
        run(lambda x: core()((x, jnp.ones([3, 2], bool)), state), jnp.ones([3, 2]))
    with pytest.raises(ValueError, match=r"ResetCore 'reset_core'.*should_reset must be one array "
                                         r"or a nest with the structure of the state"):
        run(lambda x: core()((x, (jnp.ones([3], bool),)), state), jnp.ones([3, 2]))
    with pytest.raises(TypeError, match=r"ResetCore 'reset_core'.*inputs must be a pair"):
        run(lambda x: core()(x, state), jnp.ones([3, 2]))


def test_unroll_errors():
    core = lambda: senryu.LSTM(2)  # noqa: E731
    bad = {"a": jnp.ones([3, 2, 1]), "b": jnp.ones([4, 2, 1])}
    for fn in ("static_unroll", "dynamic_unroll"):
        with pytest.raises(ValueError, match=fn + r": all inputs must have the same number of time "
                                                  r"steps along axis 0.*\(3, 2, 1\), \(4, 2, 1\)"):
            run(lambda: getattr(senryu, fn)(
                lambda x, s: (x, s), bad, ()))
        with pytest.raises(ValueError, match=fn + r": every input must have shape \[B, T, \.\.\.\] "
                                                  r"\(time_major=False\)"):
            run(lambda: getattr(senryu, fn)(core(), jnp.ones([3]), core().initial_state(None),
                                            time_major=False))
        with pytest.raises(ValueError, match=fn + r": input_sequence has no arrays"):
            run(lambda: getattr(senryu, fn)(core(), (), core().initial_state(None)))
    with pytest.raises(ValueError, match=r"static_unroll: input_sequence has zero time steps"):
        run(lambda: senryu.static_unroll(core(), jnp.ones([0, 2]), core().initial_state(None)))
    # A state of the wrong structure is reported by the core, also inside dynamic_unroll.
    with pytest.raises(TypeError, match=r"LSTM 'lstm'.*prev_state must be an LSTMState"):
        run(lambda: senryu.dynamic_unroll(core(), jnp.ones([3, 2, 1]), jnp.zeros([2, 2])))


# ------------------------------------------------------------------------------------------------
# Cores that use module state and random keys inside the unrolls.
# ------------------------------------------------------------------------------------------------


def counting_core(lib):
    class CountingCore(lib.RNNCore):
        """Scales its input by a step counter kept in module state, plus random noise."""

        def __call__(self, inputs, prev_state):
            count = lib.get_state("count", [], jnp.float32, init=jnp.zeros)
            lib.set_state("count", count + 1)
            noise = jax.random.uniform(lib.next_rng_key(), inputs.shape)
            out = inputs * count + prev_state + noise
            return out, out

        def initial_state(self, batch_size):
            return jnp.zeros([batch_size, 2])

    return CountingCore()


@pytest.mark.parametrize("unroll_fn", ["static_unroll", "dynamic_unroll"])
def test_unroll_threads_module_state_and_rng_like_haiku(unroll_fn):
    xs = inputs((3, 2, 2))

    def build(lib, xs):
        core = counting_core(lib)
        return getattr(lib, unroll_fn)(core, xs, core.initial_state(2))

    h = haiku.transform_with_state(lambda xs: build(haiku, xs))
    s = senryu.transform_with_state(lambda xs: build(senryu, xs))
    key = jax.random.PRNGKey(0)
    h_params, h_state = h.init(key, xs)
    s_params, s_state = s.init(key, xs)
    assert plain(s_state) == plain(h_state) == {"counting_core": {"count": 0.0}}
    (s_out, s_final), s_new_state = s.apply(s_params, s_state, key, xs)
    (h_out, h_final), h_new_state = h.apply(h_params, h_state, key, xs)
    assert float(s_new_state["counting_core"]["count"]) == 3.0
    # Same counter values (0, 1, 2) and, for the same key, the same random noise at every step.
    assert_close((s_out, s_final), (h_out, h_final))
    # Counter now 3, 4, 5: each output grows by 3 * (sum of the inputs so far).
    (again, _), _ = s.apply(s_params, s_new_state, key, xs)
    np.testing.assert_allclose(again - s_out, 3 * jnp.cumsum(xs, axis=0), rtol=1e-5, atol=1e-5)
