"""One entry for every public module class of senryu (``hk.X`` and ``hk.nets.X``).

Each entry says how to build the module with a library ``lib`` (``senryu`` or dm-haiku, so the same
entry also builds the oracle), a tiny example input, call keyword arguments, and whether the module
keeps state or draws random keys. ``test_registry.py`` fails when a public module class has no entry
here, so a new module must be registered (and then gets every check of ``test_every_module.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import numpy as np


def _default_call(module, *inputs, **kwargs):
    return module(*inputs, **kwargs)


def _batch_size(x):
    return x.shape[0] if x.ndim else None  # a scalar (bad) input: let the module complain


def _with_initial_state(module, x, **kwargs):
    """Recurrent cores: one step from the initial state."""
    return module(x, module.initial_state(_batch_size(x)), **kwargs)


def _reset_core_call(module, x, should_reset):
    return module((x, should_reset), module.initial_state(_batch_size(x)))


@dataclasses.dataclass(frozen=True)
class Entry:
    """How to build, feed and call one public module class.

    Attributes:
      name: the public name, ``"Linear"`` for ``hk.Linear``, ``"nets.MLP"`` for ``hk.nets.MLP``.
      build: ``build(lib)`` returns the module (``lib`` is ``senryu`` or ``haiku``).
      inputs: ``inputs()`` returns a tuple of NumPy pytrees, the positional arguments.
      kwargs: extra call keyword arguments (``is_training=True``...).
      call: ``call(module, *inputs, **kwargs)``; default ``module(*inputs, **kwargs)``.
      state: the module keeps state (``hk.get_state``).
      rng: the module draws random keys.
      float_layer: outputs are floating and should keep a bfloat16 input's dtype.
      heavy: big network: only its trees are checked (with ``jax.eval_shape``).
      eager_leak_check: run the un-jitted init/apply under ``jax.checking_leaks`` too. Off for
        networks that only compose registered layers and use no JAX transform inside: under
        ``checking_leaks`` JAX compiles every eager operation afresh (no caches), which costs
        tens of seconds for a whole network and checks nothing their layers' entries do not.
    """

    name: str
    build: Callable[[Any], Any]
    inputs: Callable[[], tuple]
    kwargs: dict = dataclasses.field(default_factory=dict)
    call: Callable[..., Any] = _default_call
    state: bool = False
    rng: bool = False
    float_layer: bool = True
    heavy: bool = False
    eager_leak_check: bool = True

    def resolve(self, lib):
        """The class this entry names in ``lib``, or None when ``lib`` lacks it."""
        obj = lib
        for part in self.name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj

    def function(self, lib):
        """The un-transformed function ``f(*inputs)`` building and calling the module."""
        def f(*inputs):
            return self.call(self.build(lib), *inputs, **self.kwargs)
        return f


def _f(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _vs(lib):
    return lib.initializers.VarianceScaling(1.0)


ENTRIES: list[Entry] = [
    # Basic.
    Entry("Linear", lambda lib: lib.Linear(3), lambda: (_f(2, 4),)),
    Entry("Bias", lambda lib: lib.Bias(), lambda: (_f(2, 4),)),
    Entry("Sequential",
          lambda lib: lib.Sequential([lib.Linear(4), jax.nn.relu, lib.Linear(2)]),
          lambda: (_f(2, 3),)),
    Entry("nets.MLP", lambda lib: lib.nets.MLP([4, 2]), lambda: (_f(2, 3),)),
    Entry("Embed", lambda lib: lib.Embed(vocab_size=7, embed_dim=3),
          lambda: (np.array([[0, 3, 6], [1, 2, 5]], np.int32),), float_layer=False),
    # Shapes.
    Entry("Flatten", lambda lib: lib.Flatten(), lambda: (_f(2, 3, 2),)),
    Entry("Reshape", lambda lib: lib.Reshape(output_shape=(-1, 2)), lambda: (_f(2, 3, 2),)),
    # Convolutions.
    Entry("Conv1D", lambda lib: lib.Conv1D(2, 3), lambda: (_f(2, 5, 3),)),
    Entry("Conv2D", lambda lib: lib.Conv2D(2, 3), lambda: (_f(2, 4, 4, 3),)),
    Entry("Conv3D", lambda lib: lib.Conv3D(2, 2), lambda: (_f(1, 3, 3, 3, 2),)),
    Entry("ConvND", lambda lib: lib.ConvND(2, 2, 3), lambda: (_f(2, 4, 4, 3),)),
    Entry("Conv1DTranspose", lambda lib: lib.Conv1DTranspose(2, 3, stride=2),
          lambda: (_f(2, 5, 3),)),
    Entry("Conv2DTranspose", lambda lib: lib.Conv2DTranspose(2, 3, stride=2),
          lambda: (_f(2, 3, 3, 3),)),
    Entry("Conv3DTranspose", lambda lib: lib.Conv3DTranspose(2, 2),
          lambda: (_f(1, 3, 3, 3, 2),)),
    Entry("ConvNDTranspose", lambda lib: lib.ConvNDTranspose(2, 2, 3),
          lambda: (_f(2, 3, 3, 3),)),
    Entry("DepthwiseConv1D", lambda lib: lib.DepthwiseConv1D(2, 3), lambda: (_f(2, 5, 3),)),
    Entry("DepthwiseConv2D", lambda lib: lib.DepthwiseConv2D(2, 3), lambda: (_f(2, 4, 4, 3),)),
    Entry("DepthwiseConv3D", lambda lib: lib.DepthwiseConv3D(2, 2),
          lambda: (_f(1, 3, 3, 3, 2),)),
    Entry("SeparableDepthwiseConv2D", lambda lib: lib.SeparableDepthwiseConv2D(2, 3),
          lambda: (_f(2, 4, 4, 3),)),
    # Pooling.
    Entry("MaxPool", lambda lib: lib.MaxPool(window_shape=2, strides=2, padding="VALID"),
          lambda: (_f(2, 4, 4, 3),)),
    Entry("AvgPool", lambda lib: lib.AvgPool(window_shape=2, strides=2, padding="SAME"),
          lambda: (_f(2, 5, 5, 3),)),
    # Normalisation.
    Entry("LayerNorm", lambda lib: lib.LayerNorm(-1, create_scale=True, create_offset=True),
          lambda: (_f(2, 4),)),
    Entry("RMSNorm", lambda lib: lib.RMSNorm(-1), lambda: (_f(2, 4),)),
    Entry("GroupNorm", lambda lib: lib.GroupNorm(groups=2), lambda: (_f(2, 3, 3, 4),)),
    Entry("InstanceNorm", lambda lib: lib.InstanceNorm(create_scale=True, create_offset=True),
          lambda: (_f(2, 3, 3, 4),)),
    Entry("BatchNorm",
          lambda lib: lib.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9),
          lambda: (_f(3, 4),), kwargs={"is_training": True}, state=True),
    Entry("SpectralNorm", lambda lib: lib.SpectralNorm(), lambda: (_f(3, 4),), state=True),
    Entry("SNParamsTree", lambda lib: lib.SNParamsTree(),
          lambda: ({"lin": {"w": _f(3, 4)}},), state=True),
    # Moving averages.
    Entry("ExponentialMovingAverage", lambda lib: lib.ExponentialMovingAverage(0.9),
          lambda: (_f(3),), state=True),
    Entry("EMAParamsTree", lambda lib: lib.EMAParamsTree(0.9),
          lambda: ({"lin": {"b": _f(3), "w": _f(2, 3)}},), state=True),
    # Attention.
    Entry("MultiHeadAttention",
          lambda lib: lib.MultiHeadAttention(num_heads=2, key_size=3, w_init=_vs(lib)),
          lambda: (_f(2, 4, 5, seed=0), _f(2, 3, 5, seed=1), _f(2, 3, 5, seed=2))),
    # Recurrent cores.
    Entry("VanillaRNN", lambda lib: lib.VanillaRNN(4), lambda: (_f(2, 3),),
          call=_with_initial_state),
    Entry("LSTM", lambda lib: lib.LSTM(4), lambda: (_f(2, 3),), call=_with_initial_state),
    Entry("GRU", lambda lib: lib.GRU(4), lambda: (_f(2, 3),), call=_with_initial_state),
    Entry("IdentityCore", lambda lib: lib.IdentityCore(), lambda: (_f(2, 3),),
          call=_with_initial_state),
    Entry("DeepRNN", lambda lib: lib.DeepRNN([lib.LSTM(4), jax.nn.relu, lib.GRU(3)]),
          lambda: (_f(2, 3),), call=_with_initial_state),
    Entry("ResetCore", lambda lib: lib.ResetCore(lib.LSTM(4)),
          lambda: (_f(2, 3), np.array([True, False])), call=_reset_core_call),
    Entry("Conv1DLSTM",
          lambda lib: lib.Conv1DLSTM(input_shape=(5,), output_channels=2, kernel_shape=3),
          lambda: (_f(2, 5, 3),), call=_with_initial_state),
    Entry("Conv2DLSTM",
          lambda lib: lib.Conv2DLSTM(input_shape=(3, 3), output_channels=2, kernel_shape=3),
          lambda: (_f(2, 3, 3, 2),), call=_with_initial_state),
    Entry("Conv3DLSTM",
          lambda lib: lib.Conv3DLSTM(input_shape=(2, 2, 2), output_channels=2, kernel_shape=2),
          lambda: (_f(1, 2, 2, 2, 2),), call=_with_initial_state),
    # Networks (hk.nets). Entries for networks senryu does not have yet are skipped until they
    # land (test_registry checks that each such name exists in dm-haiku).
    Entry("nets.MobileNetV1",
          lambda lib: lib.nets.MobileNetV1(strides=(1, 2), channels=(4, 8), num_classes=3),
          lambda: (_f(2, 8, 8, 3),), kwargs={"is_training": True}, state=True,
          eager_leak_check=False),
    Entry("nets.ResNet",
          lambda lib: lib.nets.ResNet(
              blocks_per_group=(1, 1, 1, 1), num_classes=3, bottleneck=False,
              channels_per_group=(4, 4, 4, 4), use_projection=(True, True, True, True),
              initial_conv_config={"output_channels": 4, "kernel_shape": 3, "stride": 1}),
          lambda: (_f(2, 8, 8, 3),), kwargs={"is_training": True}, state=True,
          eager_leak_check=False),
    Entry("nets.VectorQuantizer",
          lambda lib: lib.nets.VectorQuantizer(
              embedding_dim=3, num_embeddings=5, commitment_cost=0.25),
          lambda: (_f(2, 4, 3),), kwargs={"is_training": True}),
    Entry("nets.VectorQuantizerEMA",
          lambda lib: lib.nets.VectorQuantizerEMA(
              embedding_dim=3, num_embeddings=5, commitment_cost=0.25, decay=0.9),
          lambda: (_f(2, 4, 3),), kwargs={"is_training": True}, state=True),
] + [
    Entry(f"nets.ResNet{depth}",
          lambda lib, depth=depth: getattr(lib.nets, f"ResNet{depth}")(num_classes=3),
          lambda: (_f(1, 32, 32, 3),), kwargs={"is_training": True}, state=True, heavy=True,
          )
    for depth in (18, 34, 50, 101, 152, 200)
]

REGISTRY: dict[str, Entry] = {e.name: e for e in ENTRIES}
assert len(REGISTRY) == len(ENTRIES), "duplicate registry names"

# Public Module subclasses that cannot be built on their own (abstract base classes).
ABSTRACT = {"Module", "RNNCore"}


def public_module_classes(lib) -> dict[str, type]:
    """Every ``lib.Module`` subclass reachable as ``lib.X`` or ``lib.nets.X``, by public name."""
    found = {}
    for prefix, namespace in (("", lib), ("nets.", lib.nets)):
        for attr in dir(namespace):
            if attr.startswith("_"):
                continue
            obj = getattr(namespace, attr)
            if inspect.isclass(obj) and issubclass(obj, lib.Module):
                found[prefix + attr] = obj
    return found


def available(lib) -> list[Entry]:
    """The entries whose class exists in ``lib``."""
    return [e for e in ENTRIES if e.resolve(lib) is not None]
