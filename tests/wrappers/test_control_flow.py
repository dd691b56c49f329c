"""Tests of the state-carrying control flow: cond, switch, scan, fori_loop, while_loop, map.

Checked: outside a transform each is the ``jax.lax`` function (bit-identical); inside, with
parameters, a state counter and random keys, at ``init`` and ``apply``, each equals the same
program written with a Python loop / ``if`` (the semantics "as if applied in a Python loop"), the
same ``jax.lax`` function applied by hand to the pure ``apply`` of an inner transform, and
dm-haiku 0.0.17 (same parameter trees, same outputs with haiku's parameters); parameters and state
first used in a loop body (or condition) are created at init once and shared by every iteration;
misuse raises a clear ``ValueError``; the compiled program equals the hand-written one.
"""

import collections
import re

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(42)
RTOL = 1e-5
ATOL = 1e-6
N = 3  # iterations
C0 = jnp.linspace(-1.0, 1.0, 3)
XS = jnp.arange(N * 3, dtype=jnp.float32).reshape(N, 3) / 9.0


# ------------------------------------------------------------------------------------------------
# Helpers.
# ------------------------------------------------------------------------------------------------


def plain(tree):
    return {k: dict(v) for k, v in tree.items()}


def assert_same_tree(ours, theirs):
    ours, theirs = plain(ours), plain(theirs)
    assert sorted(ours) == sorted(theirs), (sorted(ours), sorted(theirs))
    for m in ours:
        assert sorted(ours[m]) == sorted(theirs[m]), m
    shapes = lambda t: jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), t)  # noqa: E731
    assert shapes(ours) == shapes(theirs)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    assert a_def == e_def, (a_def, e_def)
    for a, e in zip(a_leaves, e_leaves):
        assert jnp.shape(a) == jnp.shape(e), (jnp.shape(a), jnp.shape(e))
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def assert_equal(actual, expected):
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    assert a_def == e_def, (a_def, e_def)
    for a, e in zip(a_leaves, e_leaves):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def count_ops(text):
    return collections.Counter(re.findall(r"stablehlo\.[a-z_]+", text))


def step(lib, module, c, x, key):
    """One iteration: a parameter (``module``), a state counter ``~/n`` and (optionally) noise."""
    n = lib.get_state("n", [], jnp.int32, init=jnp.zeros)
    lib.set_state("n", n + 1)
    c = jnp.tanh(module(c) + x) + 0.01 * n
    if key is not None:
        c = c + 0.1 * jax.random.uniform(key, c.shape)
    return c


def maybe_key(lib, draws_keys):
    return lib.next_rng_key() if draws_keys else None


def record(lib, out):
    """Stores the outputs, and the next key of the sequence, as state (so init returns them)."""
    for i, leaf in enumerate(jax.tree.leaves(out)):
        lib.set_state(f"rec{i}", leaf)
    if lib.maybe_get_rng_sequence_state() is not None:
        lib.set_state("rec_key", lib.next_rng_key())
    return out


# Each program: (lib, mode, draws_keys) -> function of (xs,); mode "wrap" uses lib's wrapper, mode
# "python" the same computation with Python control flow.


def scan_program(lib, mode, draws_keys, reverse=False):
    def f(xs):
        module = lib.Linear(3)

        def body(c, x):
            c = step(lib, module, c, x, maybe_key(lib, draws_keys))
            return c, c.sum()

        if mode == "wrap":
            return record(lib, lib.scan(body, C0, xs, reverse=reverse))
        c, ys = C0, []
        for x in (xs[::-1] if reverse else xs):
            c, y = body(c, x)
            ys.append(y)
        ys = jnp.stack(ys)
        return record(lib, (c, ys[::-1] if reverse else ys))
    return f


def fori_program(lib, mode, draws_keys):
    def f(xs):
        module = lib.Linear(3)

        def body(i, c):
            return step(lib, module, c, xs[i], maybe_key(lib, draws_keys))

        if mode == "wrap":
            return record(lib, lib.fori_loop(0, xs.shape[0], body, C0))
        c = C0
        for i in range(xs.shape[0]):
            c = body(i, c)
        return record(lib, c)
    return f


def while_program(lib, mode, draws_keys):
    def f(xs):
        module = lib.Linear(3)

        def cond(carry):
            return carry[0] < xs.shape[0]

        def body(carry):
            i, c = carry
            return i + 1, step(lib, module, c, xs[i], maybe_key(lib, draws_keys))

        if mode == "wrap":
            if lib is haiku and lib.running_init():  # dm-haiku cannot initialise in a while_loop
                body((0, C0))
                return record(lib, (0, C0))
            return record(lib, lib.while_loop(cond, body, (0, C0)))
        carry = (0, C0)
        while cond(carry):
            carry = body(carry)
        return record(lib, carry)
    return f


def map_program(lib, mode, draws_keys):
    def f(xs):
        module = lib.Linear(3)

        def fn(x):
            return step(lib, module, x, x, maybe_key(lib, draws_keys))

        if mode == "wrap":
            return record(lib, lib.map(fn, xs))
        return record(lib, jnp.stack([fn(x) for x in xs]))
    return f


LOOPS = {"scan": scan_program, "fori_loop": fori_program, "while_loop": while_program,
         "map": map_program}


def init_and_apply(lib, program, *args, state_n=5, key=KEY):
    """(params, state at init, records at init, apply output, state after apply)."""
    f = lib.transform_with_state(program)
    params, state = f.init(key, *args)
    state = plain(state)
    records = state.pop("~")
    initial_n = records.pop("n")
    apply_state = {"~": {"n": jnp.array(state_n, jnp.int32), **records}}
    out, new_state = f.apply(params, apply_state, key, *args)
    new_n = new_state["~"]["n"]
    return plain(params), initial_n, records, out, new_n


# ------------------------------------------------------------------------------------------------
# Outside a transform each function is the jax.lax one.
# ------------------------------------------------------------------------------------------------


def _body(c, x):
    return jnp.sin(c) + x, c * x


OUTSIDE_CASES = {
    "cond": (lambda: hk.cond(True, jnp.sin, jnp.cos, C0),
             lambda: jax.lax.cond(True, jnp.sin, jnp.cos, C0)),
    "cond_traced_pred": (
        lambda: jax.jit(lambda p: hk.cond(p, jnp.sin, jnp.cos, C0))(False),
        lambda: jax.jit(lambda p: jax.lax.cond(p, jnp.sin, jnp.cos, C0))(False)),
    "cond_operands": (lambda: hk.cond(False, lambda a, b: a * b, lambda a, b: a - b, C0, 2.0),
                      lambda: jax.lax.cond(False, lambda a, b: a * b, lambda a, b: a - b, C0, 2.0)),
    "switch": (lambda: hk.switch(1, [jnp.sin, jnp.cos, jnp.tanh], C0),
               lambda: jax.lax.switch(1, [jnp.sin, jnp.cos, jnp.tanh], C0)),
    "switch_clamped": (lambda: hk.switch(7, [jnp.sin, jnp.cos, jnp.tanh], C0),
                       lambda: jax.lax.switch(7, [jnp.sin, jnp.cos, jnp.tanh], C0)),
    "scan": (lambda: hk.scan(_body, C0, XS), lambda: jax.lax.scan(_body, C0, XS)),
    "scan_reverse_unroll": (lambda: hk.scan(_body, C0, XS, reverse=True, unroll=2),
                            lambda: jax.lax.scan(_body, C0, XS, reverse=True, unroll=2)),
    "scan_length": (lambda: hk.scan(lambda c, _: (c * 2, c), C0, None, length=4),
                    lambda: jax.lax.scan(lambda c, _: (c * 2, c), C0, None, length=4)),
    "fori_loop": (lambda: hk.fori_loop(0, 4, lambda i, c: c * i + 1, C0),
                  lambda: jax.lax.fori_loop(0, 4, lambda i, c: c * i + 1, C0)),
    "while_loop": (lambda: hk.while_loop(lambda c: c.sum() < 10, lambda c: c + 1, C0),
                   lambda: jax.lax.while_loop(lambda c: c.sum() < 10, lambda c: c + 1, C0)),
    "map": (lambda: hk.map(jnp.sin, XS), lambda: jax.lax.map(jnp.sin, XS)),
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_CASES))
def test_outside_transform_is_the_lax_function(case):
    ours, theirs = OUTSIDE_CASES[case]
    assert_equal(ours(), theirs())


# ------------------------------------------------------------------------------------------------
# Loops inside a transform: as if applied in a Python loop.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_loop_equals_python_loop_with_params_and_state(loop):
    program = LOOPS[loop]
    params, n0, rec, out, n1 = init_and_apply(hk, program(hk, "wrap", False), XS)
    ref_params, ref_n0, ref_rec, ref_out, ref_n1 = init_and_apply(
        hk, program(hk, "python", False), XS)
    # Parameters first used in the body: created at init once, shared by all iterations.
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (3,), "w": (3, 3)}}
    assert_close(params, ref_params)
    assert int(n0) == int(ref_n0) == 0
    assert_close(rec, ref_rec)  # outputs at init (and the next key)
    assert_close(out, ref_out)  # outputs at apply
    assert int(n1) == int(ref_n1) == 5 + N


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_loop_with_keys_at_apply_equals_python_loop(loop):
    program = LOOPS[loop]
    f = hk.transform_with_state(program(hk, "wrap", True))
    ref = hk.transform_with_state(program(hk, "python", True))
    params, state = ref.init(KEY, XS)
    out, new_state = f.apply(params, state, KEY, XS)
    ref_out, ref_state = ref.apply(params, state, KEY, XS)
    assert_close((out, plain(new_state)), (ref_out, plain(ref_state)))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_loop_with_keys_at_init_equals_python_loop(loop):
    """A body that draws keys at init: the same keys as the Python loop, so the same init-time
    outputs and the same keys (hence initial values) for whatever comes after the loop."""
    program = LOOPS[loop]
    params, _, rec, _, _ = init_and_apply(hk, program(hk, "wrap", True), XS)
    ref_params, _, ref_rec, _, _ = init_and_apply(hk, program(hk, "python", True), XS)
    assert_close(params, ref_params)
    assert_close(rec, ref_rec)


def test_scan_reverse_equals_reversed_python_loop():
    ours = init_and_apply(hk, scan_program(hk, "wrap", True, reverse=True), XS)
    ref = init_and_apply(hk, scan_program(hk, "python", True, reverse=True), XS)
    assert_close(ours[0], ref[0])
    assert_close(ours[3], ref[3])


def test_scan_equals_lax_scan_over_pure_apply_by_hand():
    def body_k(c, x, key):
        c = step(hk, hk.Linear(3, name="cell"), c, x, key)
        return c, c.sum()

    f = hk.transform_with_state(
        lambda xs: hk.scan(lambda c, x: body_k(c, x, hk.next_rng_key()), C0, xs))
    params, state = f.init(KEY, XS)
    state = {"~": {"n": jnp.array(2, jnp.int32)}}
    (c, ys), new_state = f.apply(params, state, KEY, XS)

    inner = hk.transform_with_state(body_k)
    keys = hk.transform(lambda: jnp.stack([hk.next_rng_key() for _ in range(N)])).apply({}, KEY)

    def hand(params, state, xs, keys):
        def loop_body(carry, inputs):
            c, s = carry
            (c, y), s = inner.apply(params, s, None, c, *inputs)
            return (c, s), y
        (c, s), ys = jax.lax.scan(loop_body, (C0, state), (xs, keys))
        return (c, ys), s

    (rc, rys), rs = hand(params, state, XS, keys)
    assert_close((c, ys, plain(new_state)), (rc, rys, plain(rs)))
    (c, ys), new_state = jax.jit(f.apply)(params, state, KEY, XS)
    assert_close((c, ys, plain(new_state)), (rc, rys, plain(rs)))


def test_scan_compiles_to_the_hand_written_program():
    def body(c, x):
        w = hk.get_parameter("w", [3, 3], init=jnp.ones)
        n = hk.get_state("n", [], jnp.int32, init=jnp.zeros)
        hk.set_state("n", n + 1)
        c = jnp.tanh(c @ w + x)
        return c, c.sum()

    f = hk.transform_with_state(lambda xs: hk.scan(body, C0, xs))
    params, state = f.init(None, XS)

    def hand(params, state, xs):
        def loop_body(carry, x):
            c, n = carry
            c = jnp.tanh(c @ params["~"]["w"] + x)
            return (c, n + 1), c.sum()
        (c, n), ys = jax.lax.scan(loop_body, (C0, state["~"]["n"]), xs)
        return (c, ys), {"~": {"n": n}}

    ours = count_ops(jax.jit(f.apply).lower(params, state, None, XS).as_text())
    theirs = count_ops(jax.jit(hand).lower(params, state, XS).as_text())
    assert ours == theirs
    assert_close(f.apply(params, state, None, XS), hand(params, state, XS))


def test_fori_loop_and_while_loop_equal_lax_over_pure_apply_by_hand():
    def f():
        cell = hk.Linear(3, name="cell")
        body = lambda i, c: step(hk, cell, c, XS[i], None)  # noqa: E731
        return (hk.fori_loop(0, N, body, C0),
                hk.while_loop(lambda ic: ic[0] < N, lambda ic: (ic[0] + 1, body(*ic)), (0, C0)))

    f = hk.transform_with_state(f)
    module_body = lambda i, c: step(hk, hk.Linear(3, name="cell"), c, XS[i], None)  # noqa: E731
    params, state = f.init(KEY)
    assert sorted(params) == ["cell"]
    (a, (i, b)), new_state = f.apply(params, {"~": {"n": jnp.array(1, jnp.int32)}}, None)

    inner = hk.transform_with_state(module_body)

    def by_hand(carry):
        i, c, s = carry
        c, s = inner.apply(params, s, None, i, c)
        return i + 1, c, s

    s0 = {"~": {"n": jnp.array(1, jnp.int32)}}
    _, ra, rs = jax.lax.fori_loop(0, N, lambda i, ics: by_hand(ics), (0, C0, s0))
    _, rb, rs = jax.lax.while_loop(lambda ics: ics[0] < N, by_hand, (0, C0, rs))
    assert int(i) == N
    assert_close((a, b, plain(new_state)), (ra, rb, plain(rs)))
    assert int(new_state["~"]["n"]) == 1 + 2 * N


def test_while_loop_condition_reads_state_written_by_body():
    def f():
        def cond(_):
            return hk.get_state("i", [], jnp.int32, init=jnp.zeros) < 4

        def body(c):
            i = hk.get_state("i", [], jnp.int32, init=jnp.zeros)
            hk.set_state("i", i + 1)
            return c * 2

        return hk.while_loop(cond, body, jnp.ones([]))

    f = hk.transform_with_state(f)
    params, state = f.init(None)
    assert params == {} and int(state["~"]["i"]) == 0
    out, state = f.apply(params, state, None)
    assert (float(out), int(state["~"]["i"])) == (16.0, 4)


# ------------------------------------------------------------------------------------------------
# Creating parameters and state inside loops at init.
# ------------------------------------------------------------------------------------------------


def test_modules_constructed_inside_loop_bodies_are_created_once_and_shared():
    """A module *built* in the body at each iteration is one module, shared by all iterations:
    the same as a Python loop applying one module built before the loop."""
    def program(mode):
        def f(xs):
            def body(c, x):
                counter = hk.get_state("k", [], jnp.int32, init=jnp.zeros)
                hk.set_state("k", counter + 1)
                return jnp.tanh(hk.Linear(3)(c) + x), c

            def fbody(i, c):
                return jnp.tanh(hk.Linear(3)(c))

            def wbody(ic):
                return ic[0] + 1, hk.Bias()(ic[1])

            if mode == "python":
                # Built once, applied at every iteration.
                lin, lin_1, bias = hk.Linear(3), hk.Linear(3), hk.Bias()
                c = C0
                for x in xs:
                    counter = hk.get_state("k", [], jnp.int32, init=jnp.zeros)
                    hk.set_state("k", counter + 1)
                    c = jnp.tanh(lin(c) + x)
                d = C0
                for i in range(N):
                    d = jnp.tanh(lin_1(d))
                e = (0, C0)
                while e[0] < N:
                    e = e[0] + 1, bias(e[1])
                return c, d, e[1]
            return (hk.scan(body, C0, xs)[0], hk.fori_loop(0, N, fbody, C0),
                    hk.while_loop(lambda ic: ic[0] < N, wbody, (0, C0))[1])
        return hk.transform_with_state(f)

    ours, ref = program("wrap"), program("python")
    params, state = ours.init(KEY, XS)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (3,), "w": (3, 3)},
                                                "linear_1": {"b": (3,), "w": (3, 3)},
                                                "bias": {"b": (3,)}}
    assert state == {"~": {"k": 0}}
    ref_params, ref_state = ref.init(KEY, XS)
    assert_close(plain(params), plain(ref_params))
    out, s1 = ours.apply(params, state, None, XS)
    ref_out, s2 = ref.apply(params, state, None, XS)
    assert_close((out, plain(s1)), (ref_out, plain(s2)))
    assert int(s1["~"]["k"]) == N


def test_while_loop_creates_params_in_condition_and_body_at_init():
    def f(x):
        def cond(carry):
            i, _ = carry
            limit = hk.get_parameter("limit", [], jnp.int32,
                                     init=lambda s, d: jnp.full(s, N, d))
            return i < limit

        def body(carry):
            i, x = carry
            return i + 1, hk.Linear(3)(x)

        return hk.while_loop(cond, body, (0, x))

    f = hk.transform(f)
    params = f.init(KEY, C0)
    assert jax.tree.map(jnp.shape, params) == {"~": {"limit": ()},
                                                "linear": {"b": (3,), "w": (3, 3)}}
    assert int(params["~"]["limit"]) == N
    i, out = f.apply(params, None, C0)
    ref = C0
    for _ in range(N):
        ref = ref @ params["linear"]["w"] + params["linear"]["b"]
    assert int(i) == N
    assert_close(out, ref)


def test_loops_that_never_run_still_create_params_at_init():
    def f(xs):
        lin = hk.Linear(3)
        a, ys = hk.scan(lambda c, x: (lin(c) + x, c.sum()), C0, xs)
        b = hk.fori_loop(0, 0, lambda i, c: hk.Linear(3, name="never")(c), C0)
        return a, ys, b

    f = hk.transform(f)
    empty = jnp.zeros([0, 3])
    params = f.init(KEY, empty)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (3,), "w": (3, 3)},
                                                "never": {"b": (3,), "w": (3, 3)}}
    a, ys, b = f.apply(params, None, empty)
    assert ys.shape == (0,)
    assert_equal((a, b), (C0, C0))
    # With data for which the loops do run, the same parameters serve.
    assert f.apply(params, None, XS)[1].shape == (N,)


def test_while_loop_that_does_not_run_at_init_still_creates_body_params():
    """Like scan of length 0 and fori_loop(0, 0): a loop whose trip count depends on the data
    must find its parameters at apply for data where it runs."""
    def f(x, steps):
        return hk.while_loop(lambda ic: ic[0] < steps, lambda ic: (ic[0] + 1, hk.Bias()(ic[1])),
                             (0, x))[1]

    f = hk.transform(f)
    params = f.init(KEY, C0, 0)  # the loop does not run for this input
    assert jax.tree.map(jnp.shape, params) == {"bias": {"b": (3,)}}
    assert f.apply(params, None, C0, 2).shape == (3,)


def test_scan_of_length_zero_same_as_haiku():
    def program(lib):
        def f(xs):
            lin = lib.Linear(3)
            return lib.scan(lambda c, x: (lin(c) + x, c), C0, xs)
        return lib.transform(f)

    empty = jnp.zeros([0, 3])
    p_o = program(hk).init(KEY, empty)
    p_h = program(haiku).init(KEY, empty)
    assert_same_tree(p_o, p_h)
    assert_close(plain(p_o), plain(p_h))
    assert_equal(program(hk).apply(plain(p_h), None, empty),
                 program(haiku).apply(p_h, None, empty))


def test_scan_with_xs_none_and_length():
    def f():
        lin = hk.Linear(3)
        return hk.scan(lambda c, _: (jnp.tanh(lin(c)), c.sum()), C0, None, length=4)

    f = hk.transform(f)
    params = f.init(KEY)
    c, ys = f.apply(params, None)
    ref, ref_ys = C0, []
    for _ in range(4):
        ref_ys.append(ref.sum())
        ref = jnp.tanh(ref @ params["linear"]["w"] + params["linear"]["b"])
    assert_close((c, ys), (ref, jnp.stack(ref_ys)))


# ------------------------------------------------------------------------------------------------
# cond and switch.
# ------------------------------------------------------------------------------------------------


def branch_program(lib, mode, draws_keys):
    """``cond`` and ``switch`` over modules built outside, with state and (optional) keys."""
    def f(x, pred, index):
        mods = [lib.Linear(3, name=n) for n in ("a", "b", "c")]
        fns = [lambda x, m=m: step(lib, m, x, x, maybe_key(lib, draws_keys)) for m in mods]
        if mode == "wrap":
            return (lib.cond(pred, fns[0], fns[1], x),
                    lib.switch(index, fns, x))
        return (fns[0](x) if pred else fns[1](x)), fns[min(max(int(index), 0), 2)](x)
    return f


def _all_branch_params(draws_keys):
    init = hk.transform_with_state(branch_program(hk, "wrap", draws_keys)).init
    return init(KEY, C0, True, 0)


def test_cond_and_switch_create_every_branch_at_init():
    params, state = _all_branch_params(False)
    assert jax.tree.map(jnp.shape, params) == {m: {"b": (3,), "w": (3, 3)} for m in "abc"}
    assert state == {"~": {"n": 0}}
    # Whatever the predicate: the same parameters.
    params2, _ = hk.transform_with_state(branch_program(hk, "wrap", False)).init(
        KEY, C0, False, 2)
    assert_close(plain(params), plain(params2))


# (Without keys: test_cond_equals_lax_cond_over_pure_apply_by_hand.)
@pytest.mark.parametrize("pred,index,draws_keys", [(False, 2, True), (True, -3, True)])
def test_cond_and_switch_apply_equal_python_if(pred, index, draws_keys):
    params, _ = _all_branch_params(draws_keys)
    state = {"~": {"n": jnp.array(4, jnp.int32)}}
    ours = hk.transform_with_state(branch_program(hk, "wrap", draws_keys))
    ref = hk.transform_with_state(branch_program(hk, "python", draws_keys))
    out, s1 = ours.apply(params, state, KEY, C0, pred, index)
    ref_out, s2 = ref.apply(params, state, KEY, C0, pred, index)
    assert_close((out, plain(s1)), (ref_out, plain(s2)))
    assert int(s1["~"]["n"]) == 6
    if draws_keys and pred:
        # A traced predicate and index (compiled) give the same.
        out_jit, s3 = jax.jit(ours.apply)(params, state, KEY, C0, pred, index)
        assert_close((out_jit, plain(s3)), (ref_out, plain(s2)))


def test_cond_equals_lax_cond_over_pure_apply_by_hand():
    fns = [lambda x: step(hk, hk.Linear(3, name="a"), x, x, None),
           lambda x: step(hk, hk.Linear(3, name="b"), x, x, None)]
    f = hk.transform_with_state(lambda p, x: hk.cond(p, fns[0], fns[1], x))
    params, state = f.init(KEY, True, C0)
    assert sorted(params) == ["a", "b"]
    inner = [hk.transform_with_state(fn) for fn in fns]
    for pred in (True, False):
        out, new_state = jax.jit(f.apply)(params, state, None, pred, C0)
        ref = jax.lax.cond(pred, lambda s: inner[0].apply(params, s, None, C0),
                           lambda s: inner[1].apply(params, s, None, C0), state)
        assert_close((out, plain(new_state)), (ref[0], plain(ref[1])))


def test_cond_calling_conventions():
    def f(x):
        a = hk.cond(x.sum() < 1, lambda x: x + 1, lambda x: x - 1, operand=x)
        c = hk.cond(True, lambda x, y: x * y, lambda x, y: x - y, x, 3.0)
        return a, c

    a, c = hk.transform(f).apply({}, None, C0)
    assert_close((a, c), (C0 + 1, C0 * 3))
    with pytest.raises(TypeError, match="either `operand=` or positional operands"):
        hk.transform(lambda x: hk.cond(True, jnp.sin, jnp.cos, x, operand=x)).apply({}, None, C0)


def test_cond_old_calling_convention_inside_transform():
    def f(x):
        return hk.cond(x.sum() < 0, x, lambda x: x * 2, x * 10, lambda y: y + 3)

    def haiku_f(x):
        return haiku.cond(x.sum() < 0, x, lambda x: x * 2, x * 10, lambda y: y + 3)

    assert_close(haiku.transform(haiku_f).apply({}, None, C0), C0 * 10 + 3)
    assert_close(hk.transform(f).apply({}, None, C0), C0 * 10 + 3)


def test_switch_needs_a_branch():
    with pytest.raises(ValueError, match="at least one branch"):
        hk.transform(lambda x: hk.switch(0, [], x)).apply({}, None, C0)


# ------------------------------------------------------------------------------------------------
# Misuse.
# ------------------------------------------------------------------------------------------------


def _misuse_program(api):
    """Uses an extra module in the body only when ``extra`` is True (a static Python flag)."""
    def f(x, extra):
        def body_fn(x):
            y = hk.Linear(3, name="always")(x)
            return hk.Linear(3, name="late")(y) if extra else y

        if api == "scan":
            return hk.scan(lambda c, _: (body_fn(c), None), x, None, length=2)[0]
        if api == "fori_loop":
            return hk.fori_loop(0, 2, lambda i, c: body_fn(c), x)
        if api == "while_loop":
            return hk.while_loop(lambda ic: ic[0] < 2, lambda ic: (ic[0] + 1, body_fn(ic[1])),
                                 (0, x))[1]
        if api == "cond":
            return hk.cond(x.sum() > 0, body_fn, lambda x: x, x)
        if api == "switch":
            return hk.switch(0, [lambda x: x, body_fn], x)
        if api == "map":
            return hk.map(body_fn, x[None])[0]
        raise AssertionError(api)
    return hk.transform(f)


@pytest.mark.parametrize("api", ["scan", "fori_loop", "while_loop", "cond", "switch", "map"])
def test_creating_a_param_in_a_body_at_apply_raises_clear_value_error(api):
    f = _misuse_program(api)
    params = f.init(KEY, C0, False)
    assert sorted(params) == ["always"]
    with pytest.raises(ValueError, match=(
            r"Unable to retrieve parameter 'w' for module 'late'.*created as part of `init`")):
        f.apply(params, None, C0, True)


@pytest.mark.parametrize("api", ["scan", "fori_loop", "while_loop", "cond", "switch"])
def test_creating_state_in_a_body_at_apply_raises_clear_value_error(api):
    def f(x, extra):
        def body_fn(x):
            if extra:
                hk.set_state("extra", x.sum())
            return x

        if api == "scan":
            return hk.scan(lambda c, _: (body_fn(c), None), x, None, length=2)[0]
        if api == "fori_loop":
            return hk.fori_loop(0, 2, lambda i, c: body_fn(c), x)
        if api == "while_loop":
            return hk.while_loop(lambda c: c.sum() < 0, body_fn, x)
        if api == "cond":
            return hk.cond(x.sum() > 0, body_fn, lambda x: x, x)
        return hk.switch(0, [lambda x: x, body_fn], x)

    f = hk.transform_with_state(f)
    params, state = f.init(None, C0, False)
    assert state == {}
    with pytest.raises(ValueError, match=(
            rf"Cannot create state '~/extra' here: it is first used inside the body of "
            rf"`hk\.{api}` during `apply`.*\(run `init` on the same function\)")):
        f.apply(params, state, None, C0, True)


def test_missing_params_in_a_loop_at_apply_raise_clear_value_error():
    f = hk.transform(lambda xs: hk.scan(lambda c, x: (hk.Linear(3)(c), x), C0, xs)[0])
    with pytest.raises(ValueError, match=r"linear"):
        f.apply({}, None, XS)


# ------------------------------------------------------------------------------------------------
# dm-haiku 0.0.17 as the oracle (modules built outside the bodies, as dm-haiku requires).
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["scan", "fori_loop", "while_loop", "branches"])
def test_same_as_haiku(program):
    # hk.map (a scan) is compared with dm-haiku in test_naming_across_wrappers.py.
    if program == "branches":
        args = (C0, True, 1)
        # dm-haiku cannot create different modules in two branches: the branches share one.
        build = _shared_branches
    else:
        args = (XS,)
        build = lambda lib: LOOPS[program](lib, "wrap", True)  # noqa: E731
    ours = hk.transform_with_state(build(hk))
    theirs = haiku.transform_with_state(build(haiku))
    p_h, s_h = theirs.init(KEY, *args)
    p_o, s_o = ours.init(KEY, *args)
    assert_same_tree(p_o, p_h)
    assert_close(plain(p_o), plain(p_h))
    s_h = plain(s_h)
    s_h["~"]["n"] = jnp.array(4, jnp.int32)
    out_o, s2_o = ours.apply(plain(p_h), s_h, KEY, *args)
    out_h, s2_h = theirs.apply(p_h, s_h, KEY, *args)
    assert_close((out_o, plain(s2_o)), (out_h, plain(s2_h)))


def _shared_branches(lib):
    def f(x, pred, index):
        m = lib.Linear(3)
        fns = [lambda x, k=k: step(lib, m, x * k, x, lib.next_rng_key()) for k in (1.0, 2.0, 3.0)]
        return lib.cond(pred, fns[0], fns[1], x), lib.switch(index, fns, x)
    return f
