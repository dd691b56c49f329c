"""``layer_stack``: apply one layer function N times with stacked parameters, via ``scan``."""

from __future__ import annotations

import abc
import functools
from typing import Callable, Optional

import jax

from senryu import core
from senryu.wrappers import originals as jx

_BLOCKED = ("it is first used inside a `hk.layer_stack` layer during the scan; layer stacks "
            "create their parameters during `init` only, and do not support state.")


class LayerStackTransparencyMapping(abc.ABC):
    """Maps between the names of stacked parameters and those of an unrolled loop of layers."""

    @abc.abstractmethod
    def stacked_to_flat(self, stacked_module_name: str, scan_idx: int) -> str:
        """The name the ``scan_idx``-th layer's module would have without stacking."""

    @abc.abstractmethod
    def flat_to_stacked(self, unstacked_module_name: str) -> Optional[tuple[str, int]]:
        """The stacked name and layer index of an unstacked module name (None if not stacked)."""


def layer_stack(num_layers: int, with_per_layer_inputs: bool = False, unroll: int = 1,
                pass_reverse_to_layer_fn: bool = False, transparent: bool = False,
                transparency_map: Optional[LayerStackTransparencyMapping] = None,
                name: Optional[str] = None) -> Callable[[Callable], Callable]:
    """Makes ``f`` apply ``num_layers`` times, with parameters stacked along a leading axis.

    The layers run in a ``jax.lax.scan``, so compile time does not grow with ``num_layers``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     layer = lambda x: jax.nn.relu(hk.Linear(4)(x))
    ...     return hk.layer_stack(3, name="stack")(layer)(x)
    >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([2, 4]))
    >>> jax.tree.map(jnp.shape, params)
    {'stack/linear': {'b': (3, 4), 'w': (3, 4, 4)}}

    Args:
      num_layers: how many times to apply the layer (>= 1).
      with_per_layer_inputs: ``f(x, *ys) -> (x, out)``; the call takes ``(x, *ys)`` whose leaves
        have a leading ``num_layers`` axis and returns ``(x, outs)``.
      unroll: passed to ``scan``.
      pass_reverse_to_layer_fn: call ``f(..., reverse=...)``.
      transparent, transparency_map: not supported yet (raise ``NotImplementedError``).
      name: the scope of the stacked parameters.
    """
    if num_layers < 1:
        raise ValueError(f"hk.layer_stack needs num_layers >= 1, got {num_layers}.")
    if transparent or transparency_map is not None:
        raise NotImplementedError(
            "hk.layer_stack(transparent=True / transparency_map=...) is not supported by senryu "
            "yet; use the default (stacked) naming.")
    scope = name or ("__layer_stack_with_per_layer" if with_per_layer_inputs
                     else "__layer_stack_no_per_layer")

    def decorator(f: Callable) -> Callable:
        def one_layer(x, *layer_args, reverse=False):
            kwargs = {"reverse": reverse} if pass_reverse_to_layer_fn else {}
            out = f(x, *layer_args, **kwargs)
            if with_per_layer_inputs:
                return out
            return out, None

        @functools.wraps(f)
        def stacked(x, *args, reverse: bool = False):
            if not core.inside_transform():
                raise ValueError("hk.layer_stack must be used inside hk.transform.")
            if args and not with_per_layer_inputs:
                raise ValueError("This layer stack takes one input; pass "
                                 "`with_per_layer_inputs=True` to give per-layer inputs.")
            with core.name_scope(scope):
                prefix = core.current_name()
                if core.running_init():
                    _create_stacked(one_layer, x, args, reverse)
                out, ys = _scan_layers(one_layer, prefix, x, args, reverse)
            return (out, ys) if with_per_layer_inputs else out

        return stacked

    def _create_stacked(one_layer, x, args, reverse):
        before = core.capture()
        pure = core.PureFunction(one_layer)
        first_args = jax.tree.map(lambda a: a[0], args)
        keys = (jax.random.split(core.next_rng_key(), num_layers)
                if before.rng is not None else None)

        def init_one(key):
            boundary = before._replace(rng=None if key is None else (key, ()))
            _, boundary = pure(boundary, x, *first_args, reverse=reverse)
            new_state = {m: v for m, v in boundary.state.items()
                         if set(v) - set(before.state.get(m, {}))}
            if new_state:
                raise ValueError(f"hk.layer_stack: the layers create state ({sorted(new_state)}); "
                                 "layer stacks support parameters only.")
            return {m: {k: v for k, v in values.items() if k not in before.params.get(m, {})}
                    for m, values in boundary.params.items()}

        created = jx.vmap(init_one)(keys) if keys is not None else jx.vmap(
            lambda _: init_one(None))(jax.numpy.zeros([num_layers]))
        params = {m: dict(v) for m, v in before.params.items()}
        for module, values in created.items():
            if values:
                params.setdefault(module, {}).update(values)
        after = core.capture()
        core.commit(after._replace(params=params))

    def _scan_layers(one_layer, prefix, x, args, reverse):
        boundary = core.capture()
        start = prefix + "/"
        stacked = {m: v for m, v in boundary.params.items() if m == prefix or m.startswith(start)}
        shared = {m: v for m, v in boundary.params.items() if m not in stacked}
        pure = core.PureFunction(one_layer, creation_blocked=_BLOCKED)
        keys = (jax.random.split(core.next_rng_key(), num_layers)
                if boundary.rng is not None else None)

        def body(carry, per_layer):
            layer_params, layer_args, key = per_layer
            inner = boundary._replace(params={**shared, **layer_params},
                                      rng=None if key is None else (key, ()))
            (carry, y), _ = pure(inner, carry, *layer_args, reverse=reverse)
            return carry, y

        out, ys = jx.scan(body, x, (stacked, args, keys), length=num_layers,
                               reverse=reverse, unroll=unroll)
        core.commit(core.capture(), pure)
        return out, ys

    return decorator
