"""Helpers for comparing senryu with dm-haiku (the test oracle; never imported by senryu)."""

from __future__ import annotations

import haiku
import jax
import numpy as np

import senryu


def tree_shapes(tree):
    return jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), tree)


def assert_same_tree(ours, theirs):
    """Same keys (in the same order), shapes and dtypes."""
    assert list(ours) == list(theirs), (list(ours), list(theirs))
    for module in ours:
        assert list(ours[module]) == list(theirs[module]), module
    assert tree_shapes(ours) == tree_shapes(theirs)


def assert_close(ours, theirs, rtol=1e-6, atol=1e-6):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol,
                                                         atol=atol), ours, theirs)


def both(program):
    """Runs ``program(hk)`` builder with senryu and haiku; returns (ours, theirs)."""
    return program(senryu), program(haiku)
