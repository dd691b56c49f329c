"""Random numbers: ``PRNGSequence`` and the functions that draw from the transform's sequence."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import config as config_lib
from senryu.core import frame as frame_lib
from senryu.core import jax_usage

PRNGKey = jax.Array
RNGState = tuple  # (key, tuple_of_reserved_subkeys)



class MissingRNGError(ValueError):
    """Raised when a random key is needed but the transform was given ``rng=None``."""


def _is_key(value: Any) -> bool:
    if isinstance(value, (jax.Array, np.ndarray)) or hasattr(value, "aval"):
        dtype = getattr(value, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return True
        shape = getattr(value, "shape", None)
        return shape == (2,) and dtype == jnp.uint32
    return False


def _validate_key(key: Any) -> PRNGKey:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    if not _is_key(key):
        shape = getattr(key, "shape", None)
        dtype = getattr(key, "dtype", None)
        raise ValueError(
            "PRNGSequence expects an int seed or a JAX random key (e.g. `jax.random.PRNGKey(0)`, a "
            f"uint32 array of shape (2,), or a typed `jax.random.key(0)`); got {type(key).__name__}"
            + (f" with shape {shape} and dtype {dtype}" if shape is not None else "") + ".")
    return key


class PRNGSequence(Iterator[PRNGKey]):
    """An iterator of JAX random keys, split from one key or seed.

    >>> import jax
    >>> import senryu as hk
    >>> seq = hk.PRNGSequence(42)
    >>> k1, k2 = next(seq), next(seq)
    >>> bool((k1 != k2).any())
    True
    >>> seq.reserve(4)
    >>> keys = seq.take(4)
    >>> len(keys)
    4
    """

    __slots__ = ("_key", "_subkeys", "_trace", "draws")

    def __init__(self, key_or_seed: Union[PRNGKey, int, RNGState]):
        if isinstance(key_or_seed, tuple) and len(key_or_seed) == 2:
            key, subkeys = key_or_seed
            self._key = _validate_key(key)
            self._subkeys = list(subkeys)
        else:
            self._key = _validate_key(key_or_seed)
            self._subkeys: list = []
        self._trace = jax_usage.trace_state()
        self.draws = 0  # keys handed out so far (hk.experimental.optimize_rng_use counts them)

    def reserve(self, num: int) -> None:
        """Splits ``num`` more keys now, so later ``next`` calls need no split."""
        if num > 0:
            keys = jax.random.split(self._key, num + 1)
            self._key = keys[0]
            # Index one by one: slicing `keys[1:]` first would add an operation to every trace.
            self._subkeys.extend(keys[i] for i in range(1, num + 1))

    def reserve_up_to_full(self, num: int) -> None:
        """Reserves keys so that at least ``num`` are available."""
        self.reserve(num - len(self._subkeys))

    def __next__(self) -> PRNGKey:
        if not self._subkeys:
            self.reserve(config_lib.get_config().rng_reserve_size)
        self.draws += 1
        return self._subkeys.pop(0)

    next = __next__

    def __iter__(self) -> "PRNGSequence":
        return self

    def take(self, num: int) -> tuple[PRNGKey, ...]:
        """Returns a tuple of ``num`` keys, splitting all missing ones at once."""
        self.reserve_up_to_full(num)
        return tuple(next(self) for _ in range(num))

    @property
    def internal_state(self) -> RNGState:
        return (self._key, tuple(self._subkeys))

    def replace_internal_state(self, state: RNGState) -> None:
        key, subkeys = state
        self._key = key
        self._subkeys = list(subkeys)


def _sequence(api_name: str) -> PRNGSequence:
    rng = frame_lib.current_frame(api_name).rng_stack[-1]
    if rng is None:
        raise MissingRNGError(
            f"`hk.{api_name}` needs a random key, but this transform was called with rng=None. "
            "Pass a key, e.g. `f.init(jax.random.PRNGKey(0), ...)` or "
            "`f.apply(params, jax.random.PRNGKey(1), ...)`; use `hk.maybe_next_rng_key()` in code "
            "that can run without randomness.")
    jax_usage.check(rng._trace, lambda: _draw_description(api_name))
    return rng


def _draw_description(api_name: str) -> str:
    frame = frame_lib.current_frame(api_name)
    stack = frame.module_stack
    where = stack[-1].module.module_name if stack else "~"
    return f"Drawing a random key with `hk.{api_name}` in module '{where}'"


def next_rng_key() -> PRNGKey:
    """Returns a new random key, split from the key given to ``init``/``apply``.

    >>> import jax, senryu as hk
    >>> f = hk.transform(lambda: jax.random.uniform(hk.next_rng_key(), ()))
    >>> a = f.apply({}, jax.random.PRNGKey(0))
    >>> bool(a == f.apply({}, jax.random.PRNGKey(0)))
    True
    """
    return next(_sequence("next_rng_key"))


def next_rng_keys(num: int) -> jax.Array:
    """Returns ``num`` new random keys stacked into one array of shape ``[num, ...]``.

    >>> import jax, senryu as hk
    >>> f = hk.transform(lambda: hk.next_rng_keys(3))
    >>> f.apply({}, jax.random.PRNGKey(0)).shape
    (3, 2)
    """
    return jnp.stack(_sequence("next_rng_keys").take(num))


def maybe_next_rng_key() -> Optional[PRNGKey]:
    """``next_rng_key()`` if the transform was given a key, else ``None``.

    >>> import jax, senryu as hk
    >>> hk.transform(lambda: hk.maybe_next_rng_key()).apply({}, None) is None
    True
    """
    rng = frame_lib.current_frame("maybe_next_rng_key").rng_stack[-1]
    return None if rng is None else next(_sequence("maybe_next_rng_key"))


def reserve_rng_keys(num: int) -> None:
    """Splits ``num`` keys at once, so the next ``num`` calls of ``next_rng_key`` need no split.

    >>> import jax, senryu as hk
    >>> def f():
    ...     hk.reserve_rng_keys(2)
    ...     return hk.next_rng_key(), hk.next_rng_key()
    >>> k1, k2 = hk.transform(f).apply({}, jax.random.PRNGKey(0))
    >>> bool((k1 != k2).any())
    True
    """
    _sequence("reserve_rng_keys").reserve(num)


@contextlib.contextmanager
def with_rng(key: PRNGKey):
    """Within the block, ``next_rng_key`` draws from a new sequence seeded by ``key``.

    >>> import jax, senryu as hk
    >>> def f():
    ...     with hk.with_rng(jax.random.PRNGKey(428)):
    ...         return jax.random.uniform(hk.next_rng_key(), ())
    >>> 0. <= float(hk.transform(f).apply({}, None)) < 1.
    True
    """
    frame = frame_lib.current_frame("with_rng")
    frame.rng_stack.append(None if key is None else PRNGSequence(key))
    try:
        yield
    finally:
        frame.rng_stack.pop()


def maybe_get_rng_sequence_state() -> Optional[RNGState]:
    """The internal state ``(key, reserved_keys)`` of the active key sequence, or ``None``.

    >>> import jax, senryu as hk
    >>> f = hk.transform(lambda: hk.maybe_get_rng_sequence_state())
    >>> f.apply({}, None) is None
    True
    """
    rng = frame_lib.current_frame("maybe_get_rng_sequence_state").rng_stack[-1]
    return None if rng is None else rng.internal_state


def replace_rng_sequence_state(state: RNGState) -> None:
    """Replaces the internal state of the active key sequence (see ``maybe_get_rng_sequence_state``).

    >>> import jax, senryu as hk
    >>> def f():
    ...     saved = hk.maybe_get_rng_sequence_state()
    ...     a = hk.next_rng_key()
    ...     hk.replace_rng_sequence_state(saved)
    ...     return bool((a == hk.next_rng_key()).all())
    >>> hk.transform(f).apply({}, jax.random.PRNGKey(0))
    True
    """
    _sequence("replace_rng_sequence_state").replace_internal_state(state)


def to_sequence(rng: Any, where: str) -> Optional[PRNGSequence]:
    """Turns the ``rng`` argument of ``init``/``apply`` into a sequence (``None`` stays ``None``)."""
    if rng is None:
        return None
    if isinstance(rng, PRNGSequence):
        return rng
    if not _is_key(rng) and not (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        raise ValueError(
            f"`{where}` expects `rng` to be a JAX random key (e.g. `jax.random.PRNGKey(0)`) or None, "
            f"got {type(rng).__name__}"
            + (f" with shape {rng.shape}" if hasattr(rng, "shape") else "") + ". "
            f"The signature is {where}(rng, *args) for init and apply(params, rng, *args) for "
            "apply; did you pass the arguments in the wrong order?")
    return PRNGSequence(rng)
