"""Random (often invalid) shapes, ranks and dtypes fed to a few modules.

Each call either returns a result or raises ValueError/TypeError whose message names the module,
and a failed transform leaves nothing behind: the next transform runs cleanly.
"""

import functools
import re

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk

KEY = jax.random.PRNGKey(0)
EXAMPLES = 40
TRIED = {"examples": 0, "raised": 0}

# name -> (build, call, names that may appear in the error message)
MODULES = {
    "Linear": (lambda: hk.Linear(3), lambda m, x: m(x), ("Linear", "linear")),
    "Conv2D": (lambda: hk.Conv2D(2, 3), lambda m, x: m(x), ("Conv2D", "conv2_d")),
    "LayerNorm": (lambda: hk.LayerNorm(-1, True, True), lambda m, x: m(x),
                  ("LayerNorm", "layer_norm")),
    "BatchNorm": (lambda: hk.BatchNorm(True, True, 0.9), lambda m, x: m(x, is_training=True),
                  ("BatchNorm", "batch_norm")),
    "LSTM": (lambda: hk.LSTM(4), lambda m, x: m(x, m.initial_state(x.shape[0] if x.ndim else 1)),
             ("LSTM", "lstm")),
}
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.bool_, jnp.complex64]


@functools.lru_cache(maxsize=None)
def _reference():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    x = jnp.ones((2, 3))
    params = f.init(KEY, x)
    return f, params, x, f.apply(params, None, x)


def _check_clean(reference):
    """A fresh transform after the failure: same names, same values, same outputs."""
    f, params, x, out = reference
    g = hk.transform(lambda x: hk.Linear(2)(x))
    new_params = g.init(KEY, x)
    assert list(new_params) == ["linear"], list(new_params)
    np.testing.assert_array_equal(new_params["linear"]["w"], params["linear"]["w"])
    np.testing.assert_array_equal(g.apply(new_params, None, x), out)


def _run(name, shape, dtype):
    build, call, _ = MODULES[name]
    f = hk.transform_with_state(lambda x: call(build(), x))
    x = jnp.zeros(shape, dtype) + (1 if dtype != jnp.bool_ else True)
    params, state = f.init(KEY, x)
    return f.apply(params, state, KEY, x)


@hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(name=st.sampled_from(sorted(MODULES)),
                  shape=st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple),
                  dtype=st.sampled_from(DTYPES))
def test_result_or_named_error(name, shape, dtype):
    TRIED["examples"] += 1
    reference = _reference()
    try:
        _run(name, shape, dtype)
    except (ValueError, TypeError) as e:
        TRIED["raised"] += 1
        names = MODULES[name][2]
        assert any(re.search(re.escape(n), str(e), re.IGNORECASE) for n in names), (
            f"{name}{shape} {jnp.dtype(dtype).name}: {type(e).__name__} does not name the "
            f"module: {e}")
    _check_clean(reference)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_scalar_input_error_names_module(name):
    with pytest.raises((ValueError, TypeError)) as info:
        _run(name, (), jnp.float32)
    assert any(n.lower() in str(info.value).lower() for n in MODULES[name][2]), str(info.value)
    _check_clean(_reference())


# ---------------------------------------------------------------- every registered module

from integration.registry import ENTRIES, REGISTRY  # noqa: E402

EVERY = [e for e in ENTRIES if not e.heavy]
EXAMPLES_PER_MODULE = 6
TRIED_EVERY = {"examples": 0, "raised": 0}


@functools.lru_cache(maxsize=None)
def _module_words(name):
    """Words an error may use to name the module: the class and module names of every module
    its valid example call runs (a Sequential may rightly name the Linear inside it)."""
    entry = REGISTRY[name]
    calls = hk.experimental.eval_summary(entry.function(hk))(*entry.inputs())
    words = set()
    for call in calls:
        module = call.module_details.module
        words |= {type(module).__name__.lower(), module.module_name.lower(),
                  module.module_name.rsplit("/", 1)[-1].lower()}
    return frozenset(words)


@pytest.mark.parametrize("entry", EVERY, ids=[e.name for e in EVERY])
@hypothesis.settings(max_examples=EXAMPLES_PER_MODULE, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple),
                  dtype=st.sampled_from(DTYPES))
def test_every_module_gives_a_result_or_a_named_error(entry, shape, dtype):
    """The first input of the module's example call gets a random shape and dtype (abstractly:
    shape and dtype errors are raised while tracing, so no compilation is needed)."""
    TRIED_EVERY["examples"] += 1
    inputs = list(entry.inputs())
    leaves, treedef = jax.tree.flatten(inputs)
    leaves[0] = np.zeros(shape, dtype)
    inputs = jax.tree.unflatten(treedef, leaves)
    specs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), inputs)
    f = hk.transform_with_state(entry.function(hk))
    try:
        params, state = jax.eval_shape(f.init, KEY, *specs)
        jax.eval_shape(f.apply, params, state, KEY, *specs)
    except (ValueError, TypeError) as e:
        TRIED_EVERY["raised"] += 1
        message = str(e).lower()
        assert any(word in message for word in _module_words(entry.name)), (
            f"{entry.name} with a first input of shape {shape} and dtype "
            f"{jnp.dtype(dtype).name}: {type(e).__name__} does not name the module: {e}")
    _check_clean(_reference())
