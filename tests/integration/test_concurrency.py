"""Transforms run from 4 threads at once give the same results as run one after the other."""

import concurrent.futures

import jax
import numpy as np

import senryu as hk
from integration.registry import REGISTRY

KEY = jax.random.PRNGKey(0)
NAMES = ["Linear", "Conv2D", "LayerNorm", "BatchNorm", "LSTM", "nets.MLP", "MultiHeadAttention",
         "Sequential"]


def _run(name, seed):
    entry = REGISTRY[name]
    f = hk.transform_with_state(entry.function(hk))
    inputs = jax.tree.map(lambda a: a + seed if a.dtype == np.float32 else a, entry.inputs())
    key = jax.random.PRNGKey(seed)
    params, state = f.init(key, *inputs)
    out, new_state = f.apply(params, state, key, *inputs)
    return jax.tree.map(np.asarray, (params, state, out, new_state))


def _same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_four_threads_match_serial():
    jobs = [(name, seed) for seed in range(2) for name in NAMES]
    serial = [_run(*job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda job: _run(*job), jobs))
    for job, a, b in zip(jobs, serial, threaded):
        _same(a, b)


def test_threads_do_not_share_name_scopes():
    # Each thread's transform numbers its modules from scratch (outer linear, inner linear_1), whatever the
    # other threads are doing.
    def f(x):
        return hk.Linear(2)(hk.Linear(3)(x))

    def names(_):
        return list(hk.transform(f).init(KEY, np.ones((1, 2), np.float32)))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(names, range(16)))
    assert all(r == ["linear_1", "linear"] for r in results), results  # haiku order
