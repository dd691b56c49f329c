"""Tests of ``hk.mixed_precision``, with dm-haiku 0.0.17 as the oracle."""

import threading

import haiku
import jax
import jax.numpy as jnp
import jmp
import numpy as np
import pytest

import senryu as hk
from senryu import mixed_precision

POLICIES = [
    "params=float32,compute=bfloat16,output=float32",
    "params=float32,compute=float16,output=bfloat16",
    "params=bfloat16,compute=float32,output=float16",
    "params=float16,compute=float16,output=float16",
]


@pytest.fixture(autouse=True)
def no_policies():
    """Every test starts and ends with no policy set, in both libraries."""
    mixed_precision._state.policies.clear()
    yield
    mixed_precision._state.policies.clear()
    for cls in (haiku.Linear, haiku.nets.MLP, haiku.BatchNorm, haiku.Sequential):
        haiku.mixed_precision.clear_policy(cls)


def dtypes(tree):
    return jax.tree.map(lambda a: jnp.dtype(a.dtype).name, tree)


def dot_operand_dtypes(fn, *args):
    """The operand dtypes of every dot_general ``fn`` runs, in order."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [tuple(jnp.dtype(v.aval.dtype).name for v in eqn.invars)
            for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "dot_general"]


def assert_close(ours, theirs, dtype):
    rtol = 1e-5 if jnp.dtype(dtype) == jnp.float32 else 2e-2
    np.testing.assert_allclose(np.asarray(ours, np.float32), np.asarray(theirs, np.float32),
                               rtol=rtol, atol=rtol)


def run_both(make, policy_cls, policy, x):
    """Builds the same network with both libraries under the same policy; returns both results."""
    results = []
    for lib in (hk, haiku):
        lib.mixed_precision.set_policy(policy_cls(lib), policy)
        f = lib.transform_with_state(make(lib))
        params, state = f.init(jax.random.PRNGKey(0), x)
        results.append((lib, f, params, state))
    (_, ours, our_params, our_state), (_, theirs, params, state) = results
    assert dtypes(our_params) == dtypes(params)
    assert dtypes(our_state) == dtypes(state)
    jax.tree.map(lambda a, b: assert_close(a, b, a.dtype), our_params, params)
    out, new_state = ours.apply(params, state, None, x)  # haiku's parameters, our net
    expected, expected_state = theirs.apply(params, state, None, x)
    assert out.dtype == expected.dtype
    assert dtypes(new_state) == dtypes(expected_state)
    assert_close(out, expected, policy.compute_dtype)
    assert (dot_operand_dtypes(lambda p, s, x: ours.apply(p, s, None, x), params, state, x)
            == dot_operand_dtypes(lambda p, s, x: theirs.apply(p, s, None, x), params, state, x))
    return out, our_params


@pytest.mark.parametrize("policy_str,with_bias",
                         [(p, True) for p in POLICIES] + [(POLICIES[1], False)])
def test_linear_matches_haiku(policy_str, with_bias):
    policy = jmp.get_policy(policy_str)
    x = jnp.linspace(-1, 1, 6, dtype=jnp.float32).reshape(2, 3)
    out, params = run_both(lambda lib: (lambda x: lib.Linear(4, with_bias=with_bias)(x)),
                           lambda lib: lib.Linear, policy, x)
    assert out.dtype == policy.output_dtype
    assert all(a.dtype == policy.param_dtype for a in jax.tree.leaves(params))


@pytest.mark.parametrize("policy_str", POLICIES[1:3])
def test_mlp_policy_is_inherited_by_its_linears(policy_str):
    policy = jmp.get_policy(policy_str)
    x = jnp.linspace(-1, 1, 6, dtype=jnp.float32).reshape(2, 3)
    out, params = run_both(lambda lib: (lambda x: lib.nets.MLP([4, 3, 2])(x)),
                           lambda lib: lib.nets.MLP, policy, x)
    assert out.dtype == policy.output_dtype
    # The Linear children have no policy of their own but create and read parameters like MLP.
    assert set(dtypes(params)["mlp/~/linear_1"].values()) == {jnp.dtype(policy.param_dtype).name}
    f = hk.transform(lambda x: hk.nets.MLP([4, 3, 2])(x))
    compute = jnp.dtype(policy.compute_dtype).name
    assert dot_operand_dtypes(lambda p, x: f.apply(p, None, x), params, x) == [(compute,) * 2] * 3


def test_child_policy_overrides_parent_policy():
    parent = jmp.get_policy("params=float32,compute=float16,output=float32")
    child = jmp.get_policy("params=bfloat16,compute=bfloat16,output=float16")
    x = jnp.ones([2, 3])
    results = []
    for lib in (hk, haiku):
        lib.mixed_precision.set_policy(lib.nets.MLP, parent)
        lib.mixed_precision.set_policy(lib.Linear, child)
        f = lib.transform(lambda x, lib=lib: lib.nets.MLP([4, 2])(x))
        params = f.init(jax.random.PRNGKey(1), x)
        results.append((f, params))
    (ours, our_params), (theirs, params) = results
    assert dtypes(our_params) == dtypes(params) == {
        "mlp/~/linear_0": {"b": "bfloat16", "w": "bfloat16"},
        "mlp/~/linear_1": {"b": "bfloat16", "w": "bfloat16"}}
    out = ours.apply(params, None, x)
    assert out.dtype == jnp.float32
    assert_close(out, theirs.apply(params, None, x), jnp.float16)
    assert dot_operand_dtypes(lambda p: ours.apply(p, None, x), params) == [("bfloat16",) * 2] * 2


class Seen:
    """A plain object (not a pytree, so policies do not copy it) that modules write into."""

    def __init__(self):
        self.values = {}

    def __setitem__(self, key, value):
        self.values[key] = value

    def __getitem__(self, key):
        return self.values[key]


class Recorder(hk.Module):
    """Records what dtypes its method sees; creates a float32 parameter and a bfloat16 state."""

    def __call__(self, x, seen):
        seen["input"] = x.dtype
        seen["policy"] = hk.mixed_precision.current_policy()
        w = hk.get_parameter("w", [2], jnp.float32, jnp.ones)
        i = hk.get_parameter("i", [2], jnp.int32, jnp.ones)
        s = hk.get_state("s", [2], jnp.bfloat16, jnp.ones)
        seen["w"], seen["i"], seen["s"] = w.dtype, i.dtype, s.dtype
        return x * w, jnp.ones([1], jnp.int32), "text"

    def other(self, x, seen):
        seen["other"] = x.dtype
        return x


class Caller(hk.Module):
    def __call__(self, x, seen):
        seen["caller_policy"] = hk.mixed_precision.current_policy()
        return Recorder()(jnp.ones([2], jnp.float32), seen)


def test_policy_casts_inputs_params_state_and_outputs():
    policy = jmp.get_policy("params=float32,compute=float16,output=bfloat16")
    hk.mixed_precision.set_policy(Recorder, policy)
    seen = Seen()

    def f(x):
        out = Recorder()(x, seen)
        seen["outside"] = hk.mixed_precision.current_policy()
        return out

    f = hk.transform_with_state(f)
    params, state = f.init(None, jnp.ones([2]))
    # Parameters are created in the param dtype (even when asked for int32); state keeps its dtype.
    assert dtypes(params) == {"recorder": {"i": "float32", "w": "float32"}}
    assert dtypes(state) == {"recorder": {"s": "bfloat16"}}
    (y, ints, text), _ = f.apply(params, state, None, jnp.ones([2]))
    assert seen["input"] == seen["w"] == seen["i"] == seen["s"] == jnp.float16
    assert seen["policy"] is policy and seen["outside"] is None
    assert y.dtype == jnp.bfloat16 and ints.dtype == jnp.int32 and text == "text"


def test_policy_applies_to_other_public_methods():
    hk.mixed_precision.set_policy(Recorder, jmp.get_policy("p=f32,c=bf16,o=f32"))
    seen = Seen()
    out = hk.transform(lambda x: Recorder().other(x, seen)).apply({}, None, jnp.ones([2]))
    assert seen["other"] == jnp.bfloat16 and out.dtype == jnp.float32


def test_inherited_policy_does_not_cast_child_inputs_or_outputs():
    policy = jmp.get_policy("params=float32,compute=float16,output=bfloat16")
    hk.mixed_precision.set_policy(Caller, policy)
    seen = Seen()
    f = hk.transform_with_state(lambda x: Caller()(x, seen))
    params, state = f.init(None, jnp.ones([2]))
    (y, _, _), _ = f.apply(params, state, None, jnp.ones([2]))
    assert seen["caller_policy"] is policy and seen["policy"] is policy
    assert seen["input"] == jnp.float32  # Recorder has no policy: its input is not cast
    assert seen["w"] == seen["s"] == jnp.float16  # but reads are cast to the compute dtype
    assert y.dtype == jnp.bfloat16  # cast by Caller's output, not by Recorder


def test_policy_is_not_inherited_by_subclasses():
    class MyLinear(hk.Linear):
        pass

    hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=bf16,c=bf16,o=bf16"))
    assert hk.mixed_precision.get_policy(MyLinear) is None
    f = hk.transform(lambda x: MyLinear(2)(x))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    assert dtypes(params) == {"my_linear": {"b": "float32", "w": "float32"}}
    assert f.apply(params, None, jnp.ones([1, 2])).dtype == jnp.float32


def test_policy_set_after_transform_and_after_module_creation_applies():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=f32,c=f16,o=f16"))
    assert f.apply(params, None, jnp.ones([1, 2])).dtype == jnp.float16

    def g(x):
        module = hk.Linear(2)
        hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=f32,c=bf16,o=bf16"))
        return module(x)

    assert hk.transform(g).apply(params, None, jnp.ones([1, 2])).dtype == jnp.bfloat16
    hk.mixed_precision.clear_policy(hk.Linear)
    assert f.apply(params, None, jnp.ones([1, 2])).dtype == jnp.float32


def test_policy_applies_under_jit():
    hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=bf16,c=f16,o=f32"))
    f = hk.transform(lambda x: hk.Linear(2)(x))
    params = jax.jit(f.init)(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    assert dtypes(params) == {"linear": {"b": "bfloat16", "w": "bfloat16"}}
    assert jax.jit(f.apply)(params, None, jnp.ones([1, 2])).dtype == jnp.float32


def test_get_set_clear_and_current_policy():
    a, b = jmp.get_policy("p=f32,c=bf16,o=f32"), jmp.get_policy("p=f16,c=f16,o=f16")
    assert hk.mixed_precision.get_policy(hk.Linear) is None
    assert hk.mixed_precision.current_policy() is None
    hk.mixed_precision.set_policy(hk.Linear, a)
    assert hk.mixed_precision.get_policy(hk.Linear) is a
    assert hk.mixed_precision.get_policy(hk.nets.MLP) is None  # explicit policies only
    hk.mixed_precision.set_policy(hk.Linear, b)
    assert hk.mixed_precision.get_policy(hk.Linear) is b
    assert hk.mixed_precision.current_policy() is None  # no module running
    hk.mixed_precision.clear_policy(hk.Linear)
    hk.mixed_precision.clear_policy(hk.Linear)  # clearing twice is fine
    assert hk.mixed_precision.get_policy(hk.Linear) is None


def test_push_policy_restores_previous_policy():
    a, b = jmp.get_policy("p=f32,c=bf16,o=f32"), jmp.get_policy("p=f16,c=f16,o=f16")
    with hk.mixed_precision.push_policy(hk.Linear, a):
        assert hk.mixed_precision.get_policy(hk.Linear) is a
        with hk.mixed_precision.push_policy(hk.Linear, b):
            assert hk.mixed_precision.get_policy(hk.Linear) is b
        assert hk.mixed_precision.get_policy(hk.Linear) is a
    assert hk.mixed_precision.get_policy(hk.Linear) is None
    with pytest.raises(RuntimeError, match="boom"):
        with hk.mixed_precision.push_policy(hk.Linear, a):
            raise RuntimeError("boom")
    assert hk.mixed_precision.get_policy(hk.Linear) is None


def test_policies_are_per_thread():
    hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=bf16,c=bf16,o=bf16"))
    seen = Seen()

    def other_thread():
        seen["policy"] = hk.mixed_precision.get_policy(hk.Linear)
        f = hk.transform(lambda x: hk.Linear(2)(x))
        params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
        seen["dtypes"] = dtypes(params)
        hk.mixed_precision.set_policy(hk.Linear, jmp.get_policy("p=f16,c=f16,o=f16"))
        seen["out"] = f.apply(params, None, jnp.ones([1, 2])).dtype

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen.values == {"policy": None, "dtypes": {"linear": {"b": "float32", "w": "float32"}},
                    "out": jnp.float16}
    assert str(hk.mixed_precision.get_policy(hk.Linear)) == "p=bf16,c=bf16,o=bf16"


def test_batch_norm_kept_in_full_precision_inside_half_precision_network():
    """The documented recipe: a half precision network whose BatchNorm computes in float32."""
    half = jmp.get_policy("params=float32,compute=float16,output=float32")
    full = jmp.get_policy("params=float32,compute=float32,output=float16")
    x = jnp.linspace(-2, 2, 12, dtype=jnp.float32).reshape(4, 3)
    seen = []

    def record(next_f, args, kwargs, context):
        if type(context.module).__name__ == "BatchNorm" and context.method_name == "__call__":
            seen.append(args[0].dtype)
        return next_f(*args, **kwargs)

    def make(lib):
        def f(x):
            with lib.intercept_methods(record):
                net = lib.Sequential([
                    lib.Linear(4), lambda h: lib.BatchNorm(True, True, 0.9)(h, is_training=True),
                    jax.nn.relu, lib.Linear(2)])
                return net(x)
        return f

    results = []
    for lib in (hk, haiku):
        lib.mixed_precision.set_policy(lib.Sequential, half)
        lib.mixed_precision.set_policy(lib.BatchNorm, full)
        f = lib.transform_with_state(make(lib))
        params, state = f.init(jax.random.PRNGKey(0), x)
        results.append((f, params, state))
    (ours, our_params, our_state), (theirs, params, state) = results
    assert dtypes(our_params) == dtypes(params)
    assert dtypes(our_state) == dtypes(state)
    seen.clear()
    out, new_state = ours.apply(params, state, None, x)
    assert seen == [jnp.float32]  # BatchNorm's input was cast back up to float32
    expected, expected_state = theirs.apply(params, state, None, x)
    assert out.dtype == expected.dtype == jnp.float32
    assert_close(out, expected, jnp.float16)
    assert dtypes(new_state) == dtypes(expected_state)


@pytest.mark.parametrize("api", ["set_policy", "get_policy", "clear_policy", "push_policy"])
def test_misuse_class(api):
    policy = jmp.get_policy("float32")
    args = {"get_policy": (), "clear_policy": ()}.get(api, (policy,))
    with pytest.raises(TypeError, match=rf"`hk.mixed_precision.{api}` expects a module class"):
        fn = getattr(hk.mixed_precision, api)
        result = fn(int, *args)
        if api == "push_policy":
            result.__enter__()


def test_misuse_policy():
    with pytest.raises(TypeError, match=r"expects a `jmp.Policy`.*got str"):
        hk.mixed_precision.set_policy(hk.Linear, "params=float32")
    with pytest.raises(ValueError, match=r"policy=None.*clear_policy"):
        hk.mixed_precision.set_policy(hk.Linear, None)
    with pytest.raises(ValueError, match=r"policy=None.*clear_policy"):
        with hk.mixed_precision.push_policy(hk.Linear, None):
            pass
    assert hk.mixed_precision.get_policy(hk.Linear) is None
