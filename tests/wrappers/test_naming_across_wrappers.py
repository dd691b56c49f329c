"""Module names never depend on which wrapper ran.

Two calls of a wrapper that each build an ``hk.Linear`` get ``linear`` and ``linear_1``, exactly as
two plain calls of the wrapped function would, and a module built after them gets ``linear_2``;
the same inside a module, and for wrappers nested in each other. Each program is compared with the
same program without wrappers (parameter names, shapes and initial values).
"""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from senryu.wrappers import named_call

KEY = jax.random.PRNGKey(5)
X = jnp.arange(6, dtype=jnp.float32).reshape(2, 3) / 6.0


def plain(tree):
    return {k: dict(v) for k, v in tree.items()}


def shapes(tree):
    return jax.tree.map(jnp.shape, plain(tree))


def g(x):
    """Builds a module at every call."""
    return jnp.tanh(hk.Linear(3)(x))


def _identity(x):
    return x


# name -> how the wrapper calls ``fn`` on x (shape [2, 3]); ``fn`` maps [..., 3] to [..., 3].
WRAPPED_CALLS = {
    "jit": lambda fn, x: hk.jit(fn)(x),
    "vmap": lambda fn, x: hk.vmap(fn, split_rng=False)(x),
    "remat": lambda fn, x: hk.remat(fn)(x),
    "named_call": lambda fn, x: named_call(fn, name="named")(x),
    "grad": lambda fn, x: hk.grad(lambda x: fn(x).sum())(x),
    "value_and_grad": lambda fn, x: hk.value_and_grad(lambda x: fn(x).sum())(x)[1],
    "scan": lambda fn, x: hk.scan(lambda c, x: (c, fn(x)), 0.0, x)[1],
    "map": lambda fn, x: hk.map(fn, x),
    "fori_loop": lambda fn, x: hk.fori_loop(0, 2, lambda i, c: fn(c), x),
    "while_loop": lambda fn, x: hk.while_loop(lambda ic: ic[0] < 2,
                                              lambda ic: (ic[0] + 1, fn(ic[1])), (0, x))[1],
    "cond": lambda fn, x: hk.cond(x.sum() > 0, fn, _identity, x),
    "switch": lambda fn, x: hk.switch(1, [_identity, fn, _identity], x),
}


def program(call):
    """Two wrapped calls that each build a Linear, then a plain Linear; also inside a module."""
    class Block(hk.Module):
        def __call__(self, x):
            return call(g, call(g, x))

    def f(x):
        y = call(g, x)
        y = call(g, y)
        y = hk.Linear(3)(y)
        return Block()(y) + hk.Linear(3, name="last")(y)
    return hk.transform(f)


PLAIN_NAMES = ["block/linear", "block/linear_1", "last", "linear", "linear_1", "linear_2"]


@pytest.mark.parametrize("wrapper", sorted(WRAPPED_CALLS))
def test_names_are_those_of_the_program_without_wrappers(wrapper):
    call = WRAPPED_CALLS[wrapper]
    params = program(call).init(KEY, X)
    reference = program(lambda fn, x: fn(x)).init(KEY, X)
    assert sorted(params) == sorted(reference) == PLAIN_NAMES
    assert shapes(params) == shapes(reference)
    if wrapper not in ("cond", "switch"):
        # Same key sequence, same initial values (cond/switch also create the other branches);
        # under jit to within an ulp (XLA fuses the initializers' arithmetic).
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                     plain(params), plain(reference))
    # And apply works with them (every module finds its parameters).
    out = program(call).apply(params, None, X)
    assert out.shape == (2, 3)


def test_nested_wrappers_keep_plain_names():
    def nested(fn, x):
        def body(c, x):
            return c, hk.vmap(lambda x: hk.remat(fn)(x), split_rng=False)(x[None])[0]
        return hk.jit(lambda x: hk.scan(body, 0.0, x)[1])(x)

    params = program(nested).init(KEY, X)
    assert sorted(params) == PLAIN_NAMES


def test_module_built_outside_and_called_in_several_wrappers_is_one_module():
    def f(x):
        lin = hk.Linear(3)
        a = hk.vmap(lin, split_rng=False)(x)
        b = hk.jit(lin)(x)
        c = hk.scan(lambda c, x: (c, lin(x)), 0.0, x)[1]
        d = hk.cond(True, lin, _identity, x)
        return a + b + c + d + hk.Linear(3)(x)

    f = hk.transform(f)
    params = f.init(KEY, X)
    assert sorted(params) == ["linear", "linear_1"]
    lin = params["linear"]
    expected = 4 * (X @ lin["w"] + lin["b"]) + X @ params["linear_1"]["w"] + params["linear_1"]["b"]
    np.testing.assert_allclose(f.apply(params, None, X), expected, rtol=1e-5, atol=1e-6)


def test_cond_and_switch_branches_are_named_in_order():
    """Modules built in several branches are named as if the branches ran one after another."""
    def f(x):
        a = hk.cond(x.sum() > 0, g, g, x)
        b = hk.switch(0, [g, g, _identity], x)
        return a + b + hk.Linear(3)(x)

    params = hk.transform(f).init(KEY, X)
    assert sorted(params) == ["linear", "linear_1", "linear_2", "linear_3", "linear_4"]


def test_names_stable_when_apply_is_traced_by_jax_transforms():
    """JAX may trace a wrapped function more than once (jit, grad, remat): names stay the same."""
    f = program(WRAPPED_CALLS["remat"])
    params = f.init(KEY, X)
    loss = lambda p: f.apply(p, None, X).sum()  # noqa: E731
    grads = jax.jit(jax.grad(loss))(params)
    assert sorted(grads) == PLAIN_NAMES


def test_same_names_as_haiku_for_remat_and_modules_built_outside():  # and hk.map's outputs
    """Where dm-haiku 0.0.17 supports it, it gives the same names.

    dm-haiku differs for modules built *inside* some wrappers (two hk.vmap or hk.grad calls, or two
    branches of one hk.cond, share one ``linear``); senryu follows the rule above instead."""
    def build(lib):
        def g(x):
            return jnp.tanh(lib.Linear(3)(x))

        def f(x):
            y = lib.remat(g)(lib.remat(g)(x))
            lin = lib.Linear(3)
            y = (lib.vmap(lin, split_rng=False)(y) + lib.scan(lambda c, x: (c, lin(x)), 0.0, y)[1]
                 + lib.map(lin, y))
            return lib.Linear(3)(y)
        return lib.transform(f)

    ours, theirs = build(hk).init(KEY, X), build(haiku).init(KEY, X)
    assert shapes(ours) == shapes(theirs)
    assert sorted(ours) == ["linear", "linear_1", "linear_2", "linear_3"]
    jax.tree.map(np.testing.assert_allclose, plain(ours), plain(theirs))
    np.testing.assert_allclose(build(hk).apply(plain(theirs), None, X),
                               build(haiku).apply(theirs, None, X), rtol=1e-5, atol=1e-6)


def test_haiku_differences_for_modules_built_inside_wrappers():
    """Documents where senryu deliberately differs from dm-haiku 0.0.17 (see the module doc)."""
    def build(lib, wrapper):
        def g(x):
            return lib.Linear(3)(x)

        def f(x):
            if wrapper == "vmap":
                return lib.vmap(g, split_rng=False)(x) + lib.vmap(g, split_rng=False)(x)
            if wrapper == "grad":
                return lib.grad(lambda x: g(x).sum())(x) + lib.grad(lambda x: g(x).sum())(x)
            return lib.cond(x.sum() > 0, g, g, x)
        return lib.transform(f)

    for wrapper in ("vmap", "grad", "cond"):
        assert sorted(build(haiku, wrapper).init(KEY, X)) == ["linear"]
        assert sorted(build(hk, wrapper).init(KEY, X)) == ["linear", "linear_1"]
