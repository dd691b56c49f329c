"""Tests of ``hk.testing.transform_and_run``, with dm-haiku 0.0.17 as the oracle."""

import unittest

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from senryu.testing import transform_and_run


def make_probe(lib, log):
    """A function using params, state and keys, logging what each phase saw."""
    def f(x, scale=1.0):
        key = lib.maybe_next_rng_key()
        log.append((lib.running_init(), None if key is None else np.asarray(key)))
        counter = lib.get_state("counter", [], jnp.int32, jnp.zeros)
        lib.set_state("counter", counter + 1)
        return lib.Linear(2)(x) * scale, counter, key
    return f


@pytest.mark.parametrize("seed", [42, 0, 7])
def test_matches_haiku(seed):
    x = jnp.linspace(-1, 1, 6).reshape(2, 3)
    ours_log, theirs_log = [], []
    out, counter, key = transform_and_run(make_probe(hk, ours_log), seed=seed)(x, scale=2.0)
    expected, expected_counter, expected_key = haiku.testing.transform_and_run(
        make_probe(haiku, theirs_log), seed=seed)(x, scale=2.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert counter == expected_counter == 0  # apply sees the state made by init
    np.testing.assert_array_equal(key, expected_key)
    assert [phase for phase, _ in ours_log] == [True, False]
    for (_, ours), (_, theirs) in zip(ours_log, theirs_log):
        np.testing.assert_array_equal(ours, theirs)


def test_is_init_then_apply_with_seed_and_seed_plus_one():
    log = []
    f = make_probe(hk, log)
    x = jnp.ones([1, 3])
    out = transform_and_run(f)(x)
    transformed = hk.transform_with_state(f)
    params, state = transformed.init(jax.random.PRNGKey(42), x)
    expected, _ = transformed.apply(params, state, jax.random.PRNGKey(43), x)
    jax.tree.map(np.testing.assert_array_equal, out, expected)


def test_seed_none_passes_no_keys():
    keys = []

    def f(x):
        keys.append(hk.maybe_next_rng_key())
        return hk.Bias()(x)  # zeros init: needs no key

    np.testing.assert_array_equal(transform_and_run(f, seed=None)(jnp.ones([1, 3])),
                                  jnp.ones([1, 3]))
    assert keys == [None, None]
    with pytest.raises(ValueError, match="needs a random key"):
        transform_and_run(lambda: hk.next_rng_key(), seed=None)()


def test_run_apply_false_runs_only_init():
    log = []
    assert transform_and_run(make_probe(hk, log), run_apply=False)(jnp.ones([1, 3])) is None
    assert [phase for phase, _ in log] == [True]


def test_decorator_forms():
    @transform_and_run
    def plain():
        return hk.get_parameter("w", [], init=jnp.ones)

    @transform_and_run(seed=3)
    def with_args():
        return hk.next_rng_key()

    assert plain() == 1.0 and plain.__name__ == "plain"
    np.testing.assert_array_equal(
        with_args(), haiku.testing.transform_and_run(seed=3)(lambda: haiku.next_rng_key())())


def test_jax_transform_wraps_init_and_apply():
    wrapped = []

    def jit_and_log(fn):
        wrapped.append(fn.__name__)
        return jax.jit(fn)

    traced = []

    def f(x):
        traced.append(isinstance(x, jax.core.Tracer))
        return hk.Linear(1)(x)

    out = transform_and_run(f, jax_transform=jit_and_log)(jnp.ones([1, 2]))
    assert out.shape == (1, 1)
    assert wrapped == ["init_fn", "apply_fn"] and traced == [True, True]


def test_map_rng_maps_both_keys():
    seen = []

    def map_rng(key):
        seen.append(np.asarray(key))
        return jax.random.fold_in(key, 1)

    key = transform_and_run(lambda: hk.next_rng_key(), seed=5, map_rng=map_rng)()
    np.testing.assert_array_equal(seen[0], jax.random.PRNGKey(5))
    np.testing.assert_array_equal(seen[1], jax.random.PRNGKey(6))
    expected = haiku.testing.transform_and_run(
        lambda: haiku.next_rng_key(), seed=5, map_rng=lambda k: jax.random.fold_in(k, 1))()
    np.testing.assert_array_equal(key, expected)


def test_map_rng_with_pmap():
    def same_key_on_all_devices(key):
        return jnp.broadcast_to(key, (jax.local_device_count(), *key.shape))

    @transform_and_run(jax_transform=jax.pmap, map_rng=same_key_on_all_devices)
    def f(x):
        return hk.Linear(2)(x)

    out = f(jnp.ones([jax.local_device_count(), 1, 3]))
    assert out.shape == (jax.local_device_count(), 1, 2)


class LinearTest(unittest.TestCase):
    """The documented use: decorating test methods of a ``unittest.TestCase``."""

    @transform_and_run
    def test_linear_output(self):
        out = hk.Linear(1)(jnp.ones([1, 1]))
        self.assertEqual(out.ndim, 2)
        self.assertTrue(hk.running_init() in (True, False))


def test_unittest_method():
    result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(LinearTest))
    assert result.wasSuccessful() and result.testsRun == 1


def test_documented_interactive_example():
    out = transform_and_run(lambda x: hk.Bias()(x))(jnp.ones([1, 1]))
    np.testing.assert_array_equal(out, jnp.ones([1, 1]))
    assert out.dtype == jnp.float32


def test_misuse():
    with pytest.raises(TypeError, match=r"expects a function.*got int"):
        transform_and_run(3)
    with pytest.raises(TypeError, match=r"expects an integer `seed`.*got str"):
        transform_and_run(lambda: None, seed="42")
