"""``hk.testing``: helpers for unit-testing code that uses modules."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar

import jax

from senryu import core

__all__ = ["transform_and_run"]

T = TypeVar("T")
Fn = Callable[..., T]


def transform_and_run(
        f: Optional[Fn] = None,
        seed: Optional[int] = 42,
        run_apply: bool = True,
        jax_transform: Optional[Callable[[Fn], Fn]] = None,
        *,
        map_rng: Optional[Callable[[Any], Any]] = None,
) -> Any:
    """Transforms ``f`` with ``transform_with_state`` and runs ``init``, then ``apply``.

    Calling the result with some arguments does the same as::

        f = hk.transform_with_state(f)
        params, state = f.init(jax.random.PRNGKey(seed), *args, **kwargs)
        out, state = f.apply(params, state, jax.random.PRNGKey(seed + 1), *args, **kwargs)
        return out

    (with ``seed=None`` both keys are ``None``, so ``f`` may not ask for random keys). It returns
    the output of ``apply``, or ``None`` when ``run_apply=False`` (only ``init`` runs). It can be
    used as a plain decorator, as a decorator with arguments, or called directly:

    >>> import unittest
    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> class LinearTest(unittest.TestCase):
    ...     @hk.testing.transform_and_run
    ...     def test_output_rank(self):
    ...         out = hk.Linear(3)(jnp.ones([2, 4]))
    ...         self.assertEqual(out.shape, (2, 3))
    >>> LinearTest("test_output_rank").test_output_rank()
    >>> hk.testing.transform_and_run(lambda x: hk.Bias()(x))(jnp.ones([1, 2]))
    Array([[1., 1.]], dtype=float32)
    >>> @hk.testing.transform_and_run(seed=0, jax_transform=jax.jit)
    ... def random_key():
    ...     return hk.next_rng_key()
    >>> random_key().shape
    (2,)

    Args:
      f: the function to transform (omit it to get a decorator).
      seed: seed of the ``init`` key; ``apply`` uses ``seed + 1``. ``None`` passes no keys.
      run_apply: whether to run ``apply`` after ``init``.
      jax_transform: applied to the ``init`` and ``apply`` functions before they run (e.g.
        ``jax.jit``, or a ``chex`` variant).
      map_rng: applied to each key before it is passed (e.g. to give ``jax.pmap`` one key per
        device). Not called when ``seed`` is ``None``.

    Returns:
      A function taking ``f``'s arguments and returning ``apply``'s output (or ``None``).
    """
    if f is None:
        return functools.partial(transform_and_run, seed=seed, run_apply=run_apply,
                                 jax_transform=jax_transform, map_rng=map_rng)
    if not callable(f):
        raise TypeError(
            f"`hk.testing.transform_and_run` expects a function (or no positional argument, to "
            f"be used as `@hk.testing.transform_and_run(seed=...)`), got {type(f).__name__}: "
            f"{f!r:.80}.")
    if seed is not None and not hasattr(seed, "__index__"):
        raise TypeError(
            f"`hk.testing.transform_and_run` expects an integer `seed` (or None for no random "
            f"keys), got {type(seed).__name__}: {seed!r:.80}.")

    @functools.wraps(f)
    def run(*args, **kwargs):
        transformed = core.transform_with_state(f)
        init_fn, apply_fn = transformed.init, transformed.apply
        if jax_transform is not None:
            init_fn, apply_fn = jax_transform(init_fn), jax_transform(apply_fn)
        if seed is None:
            init_rng = apply_rng = None
        else:
            init_rng, apply_rng = jax.random.PRNGKey(seed), jax.random.PRNGKey(seed + 1)
            if map_rng is not None:
                init_rng, apply_rng = map_rng(init_rng), map_rng(apply_rng)
        params, state = init_fn(init_rng, *args, **kwargs)
        if not run_apply:
            return None
        out, _ = apply_fn(params, state, apply_rng, *args, **kwargs)
        return out

    return run
