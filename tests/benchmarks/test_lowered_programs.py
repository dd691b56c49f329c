"""The library adds nothing once compiled: senryu's benchmark models lower to the same StableHLO
operations as the hand-written JAX baselines of ``benchmarks/models.py`` (same params, same
outputs). Counting operations, not timing them, keeps this a deterministic unit test."""

import collections
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import senryu as hk

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import models  # noqa: E402

_OP = re.compile(r"\b((?:stablehlo|chlo|mhlo)\.[a-z_]+)")


def _operations(fn, *args) -> collections.Counter:
    return collections.Counter(_OP.findall(jax.jit(fn).lower(*args).as_text()))


def _train_step(apply):
    opt = optax.adam(1e-3)

    def step(params, x):
        grads = jax.grad(lambda p: jnp.mean(apply(p, x) ** 2))(params)
        updates, _ = opt.update(grads, opt.init(params))
        return optax.apply_updates(params, updates)
    return step


CASES = {name: (models.MODELS[name], pure) for name, pure in models.PURE_APPLY.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_apply_and_train_step_lower_to_the_hand_written_operations(name):
    build, pure_apply = CASES[name]
    f, (x,) = build(hk)
    if name == "transformer":
        x = jax.random.randint(jax.random.PRNGKey(1), x.shape, 0, models.VOCAB)
    params = f.init(jax.random.PRNGKey(0), x)

    def ours(p, x):
        return f.apply(p, None, x)

    np.testing.assert_array_equal(jax.jit(ours)(params, x), jax.jit(pure_apply)(params, x))
    ours_ops, pure_ops = _operations(ours, params, x), _operations(pure_apply, params, x)
    assert sum(ours_ops.values()) > 20
    assert ours_ops == pure_ops
    assert (_operations(_train_step(ours), params, x)
            == _operations(_train_step(pure_apply), params, x))
