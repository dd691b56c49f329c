"""``layer_stack``: apply one layer function N times with stacked parameters, via ``scan``."""

from __future__ import annotations

import abc
import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from senryu import core
from senryu.wrappers import originals as jx



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

    The layers run in a ``jax.lax.scan``, so compile time does not grow with ``num_layers``. The
    layer function runs as its own transform lifted under the stack's name, so its parameters
    are named ``<name>/<module>`` (``<name>/~`` for parameters created outside any module).

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     layer = lambda x: jax.nn.relu(hk.Linear(4)(x))
    ...     return hk.layer_stack(3, name="stack")(layer)(x)
    >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([2, 4]))
    >>> jax.tree.map(jnp.shape, params)
    {'stack/linear': {'b': (3, 4), 'w': (3, 4, 4)}}

    Args:
      num_layers: how many times to apply the layer (0 returns the input unchanged).
      with_per_layer_inputs: ``f(x, *ys) -> (x, out)``; the call takes ``(x, *ys)`` whose leaves
        have a leading ``num_layers`` axis and returns ``(x, outs)``.
      unroll: passed to ``scan``.
      pass_reverse_to_layer_fn: call ``f(..., reverse=...)``.
      transparent, transparency_map: not supported yet (raise ``NotImplementedError``).
      name: the scope of the stacked parameters.
    """
    if num_layers < 0:
        raise ValueError(f"hk.layer_stack needs num_layers >= 0, got {num_layers}.")
    if transparent or transparency_map is not None:
        raise NotImplementedError(
            "hk.layer_stack(transparent=True / transparency_map=...) is not supported by senryu "
            "yet; use the default (stacked) naming.")
    scope = name or ("__layer_stack_with_per_layer" if with_per_layer_inputs
                     else "__layer_stack_no_per_layer")

    def decorator(f: Callable) -> Callable:
        @functools.wraps(f)
        def stacked(x, *args, reverse: bool = False):
            if not core.inside_transform():
                raise ValueError("hk.layer_stack must be used inside hk.transform.")
            if args and not with_per_layer_inputs:
                raise ValueError("This layer stack takes one input; pass "
                                 "`with_per_layer_inputs=True` to give per-layer inputs.")

            def one_layer(x, *layer_args):
                kwargs = {"reverse": reverse} if pass_reverse_to_layer_fn else {}
                out = f(x, *layer_args, **kwargs)
                return out if with_per_layer_inputs else (out, None)

            inner = core.transform_with_state(one_layer)
            params = core.lift(functools.partial(_init_stacked, inner, num_layers), name=scope)(
                core.maybe_next_rng_key() if core.running_init() else None, x, args)
            keys = core.maybe_next_rng_key()
            keys = None if keys is None else jax.random.split(keys, num_layers)

            def body(carry, per_layer):
                layer_params, layer_args, key = per_layer
                (carry, y), _ = inner.apply(layer_params, {}, key, carry, *layer_args)
                return carry, y

            out, ys = jx.scan(body, x, (params, args, keys), length=num_layers, reverse=reverse,
                              unroll=unroll)
            return (out, ys) if with_per_layer_inputs else out

        return stacked

    return decorator


def _init_stacked(inner, num_layers: int, key, x, args):
    """Parameters of ``num_layers`` layers, each initialised with its own key, stacked."""
    first_args = jax.tree.map(lambda a: a[0], args)

    def init_one(layer_key):
        params, state = inner.init(layer_key, x, *first_args)
        if state:
            raise ValueError(f"hk.layer_stack: the layers create state ({sorted(state)}); layer "
                             "stacks support parameters only.")
        return params

    if num_layers == 0:
        shapes = jax.eval_shape(init_one, key)
        return jax.tree.map(lambda s: jnp.zeros((0,) + s.shape, s.dtype), shapes)
    if key is None:
        return jx.vmap(lambda _: init_one(None))(jnp.zeros([num_layers]))
    return jx.vmap(init_one)(jax.random.split(key, num_layers))
