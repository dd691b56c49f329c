"""Vector quantisation layers of VQ-VAE ("Neural Discrete Representation Learning",
van den Oord et al., https://arxiv.org/abs/1711.00937)."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import jax
import jax.numpy as jnp

from senryu import core
from senryu import initializers
from senryu.layers.moving_averages import ExponentialMovingAverage

__all__ = ["VectorQuantizer", "VectorQuantizerEMA"]


def _make_properties(cls: type, *names: str) -> None:
    # The getters are written as public methods so that ``core.Module`` runs them in the
    # module's name scope wherever they are read from; they become properties afterwards.
    for name in names:
        method = cls.__dict__[name]
        setattr(cls, name, property(method, doc=method.__doc__))


def _flatten_inputs(module: core.Module, inputs: jax.Array, embedding_dim: int) -> jax.Array:
    inputs = jnp.asarray(inputs)
    if inputs.ndim == 0 or inputs.shape[-1] != embedding_dim:
        raise ValueError(
            f"{module.module_name}: the last dimension of the inputs must equal embedding_dim="
            f"{embedding_dim}, got inputs of shape {tuple(inputs.shape)}; project the inputs to "
            f"{embedding_dim} features first.")
    return jnp.reshape(inputs, [-1, embedding_dim])


def _squared_distances(flat_inputs: jax.Array, embeddings: jax.Array,
                       embeddings_again: Optional[jax.Array] = None) -> jax.Array:
    """``[N, K]`` squared Euclidean distances between inputs ``[N, D]`` and codes ``[D, K]``."""
    if embeddings_again is None:
        embeddings_again = embeddings
    return (jnp.sum(jnp.square(flat_inputs), 1, keepdims=True)
            - 2 * jnp.matmul(flat_inputs, embeddings)
            + jnp.sum(jnp.square(embeddings_again), 0, keepdims=True))


def _perplexity(encodings: jax.Array, cross_replica_axis: Optional[str] = None) -> jax.Array:
    avg_probs = jnp.mean(encodings, 0)
    if cross_replica_axis is not None:
        avg_probs = jax.lax.pmean(avg_probs, axis_name=cross_replica_axis)
    return jnp.exp(-jnp.sum(avg_probs * jnp.log(avg_probs + 1e-10)))


class VectorQuantizer(core.Module):
    """Maps each input vector to its nearest embedding (code) in a learned codebook.

    The last axis of the inputs is the embedding space; all other axes are flattened and each
    vector is quantised independently. ``__call__`` returns a dictionary with ``quantize`` (the
    inputs replaced by their nearest codes, with a straight-through gradient), ``loss`` (the
    codebook loss plus ``commitment_cost`` times the commitment loss), ``perplexity``,
    ``encodings`` (one-hot ``[N, num_embeddings]``), ``encoding_indices`` (the code index of
    each input vector, shaped like the inputs without their last axis) and ``distances``
    (``[N, num_embeddings]`` squared distances). The codebook is the parameter ``embeddings``
    of shape ``[embedding_dim, num_embeddings]``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x):
    ...     return hk.nets.VectorQuantizer(embedding_dim=2, num_embeddings=3,
    ...                                    commitment_cost=0.25)(x, is_training=True)
    >>> f = hk.transform(f)
    >>> x = jnp.array([[0.9, 0.1], [0.0, -1.1]])
    >>> params = {"vector_quantizer": {"embeddings": jnp.array([[1., 0., 0.], [0., 1., -1.]])}}
    >>> out = f.apply(params, None, x)
    >>> out["encoding_indices"]
    Array([0, 2], dtype=int32)
    >>> out["quantize"]
    Array([[ 1.,  0.],
           [ 0., -1.]], dtype=float32)
    >>> print(round(float(out["loss"]), 4))  # 1.25 * mean squared error
    0.0094

    Args:
      embedding_dim: size of each code vector; the last axis of the inputs must have this size.
      num_embeddings: number of codes.
      commitment_cost: weight of the commitment loss (beta in equation 4 of the paper).
      dtype: dtype of the codebook.
      name: module name.
      cross_replica_axis: name of a ``jax.pmap`` axis; if given, the perplexity is computed
        over all replicas on that axis.
    """

    def __init__(self, embedding_dim: int, num_embeddings: int, commitment_cost: float,
                 dtype: Any = jnp.float32, name: Optional[str] = None,
                 cross_replica_axis: Optional[str] = None):
        super().__init__(name=name)
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commitment_cost = commitment_cost
        self.cross_replica_axis = cross_replica_axis
        self._embedding_shape = [embedding_dim, num_embeddings]
        self._embedding_dtype = dtype

    def embeddings(self) -> jax.Array:
        """The codebook, ``[embedding_dim, num_embeddings]`` (a parameter)."""
        return core.get_parameter(
            "embeddings", self._embedding_shape, self._embedding_dtype,
            init=initializers.VarianceScaling(distribution="uniform"))

    def __call__(self, inputs: jax.Array, is_training: bool) -> dict[str, jax.Array]:
        """Quantises ``inputs`` (``[..., embedding_dim]``); returns the dictionary above.

        ``is_training`` is accepted for symmetry with :class:`VectorQuantizerEMA`; it changes
        nothing here.
        """
        del is_training
        flat_inputs = _flatten_inputs(self, inputs, self.embedding_dim)
        # The codebook property is read once per use (as dm-haiku does), so that eval_summary
        # and tabulate list the same method invocations.
        distances = _squared_distances(flat_inputs, self.embeddings, self.embeddings)

        encoding_indices = jnp.argmax(-distances, 1)
        encodings = jax.nn.one_hot(encoding_indices, self.num_embeddings, dtype=distances.dtype)
        encoding_indices = jnp.reshape(encoding_indices, inputs.shape[:-1])
        quantized = self.quantize(encoding_indices)

        # The commitment loss moves the encoder outputs towards their codes; the codebook loss
        # moves the codes towards the encoder outputs.
        e_latent_loss = jnp.mean(jnp.square(jax.lax.stop_gradient(quantized) - inputs))
        q_latent_loss = jnp.mean(jnp.square(quantized - jax.lax.stop_gradient(inputs)))
        loss = q_latent_loss + self.commitment_cost * e_latent_loss

        # Straight-through estimator: the forward value is the code, the gradient the identity.
        quantized = inputs + jax.lax.stop_gradient(quantized - inputs)
        return {
            "quantize": quantized,
            "loss": loss,
            "perplexity": _perplexity(encodings, self.cross_replica_axis),
            "encodings": encodings,
            "encoding_indices": encoding_indices,
            "distances": distances,
        }

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """Returns the codes of ``encoding_indices``: shape ``indices.shape + [embedding_dim]``.

        >>> import jax, jax.numpy as jnp, senryu as hk
        >>> f = hk.transform(lambda i: hk.nets.VectorQuantizer(2, 3, 0.25).quantize(i))
        >>> params = {"vector_quantizer": {"embeddings": jnp.array([[1., 2., 3.],
        ...                                                         [4., 5., 6.]])}}
        >>> f.apply(params, None, jnp.array([2, 0]))
        Array([[3., 6.],
               [1., 4.]], dtype=float32)
        """
        w = jnp.swapaxes(self.embeddings, 1, 0)
        return w[(encoding_indices,)]


class VectorQuantizerEMA(core.Module):
    """A :class:`VectorQuantizer` whose codebook is learned by exponential moving averages.

    The codebook ``embeddings`` is state, not a parameter: in training each code is set to the
    (Laplace-smoothed) moving average of the inputs assigned to it, through two
    ``ExponentialMovingAverage`` submodules ``ema_cluster_size`` (how many inputs chose each
    code) and ``ema_dw`` (the sum of those inputs). The ``loss`` is only the commitment loss,
    ``commitment_cost`` times the mean squared distance of the inputs to their codes. The
    output dictionary has the keys of :class:`VectorQuantizer`.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> def f(x, is_training):
    ...     vq = hk.nets.VectorQuantizerEMA(embedding_dim=2, num_embeddings=3,
    ...                                     commitment_cost=0.25, decay=0.5)
    ...     return vq(x, is_training)
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.array([[0.5, 0.25], [0.0, -1.5]])
    >>> params, state = f.init(jax.random.PRNGKey(0), x, is_training=True)
    >>> list(state)
    ['vector_quantizer_ema', 'vector_quantizer_ema/~/ema_cluster_size', \
'vector_quantizer_ema/~/ema_dw']
    >>> state["vector_quantizer_ema"]["embeddings"] = jnp.array([[1., 0., 0.], [0., 1., -1.]])
    >>> out, state = f.apply(params, state, None, x, is_training=True)
    >>> out["encoding_indices"]
    Array([0, 2], dtype=int32)
    >>> codes = state["vector_quantizer_ema"]["embeddings"]  # used codes move to the inputs
    >>> bool(jnp.allclose(codes, jnp.array([[0.5, 0., 0.], [0.25, 0., -1.5]]), atol=1e-4))
    True

    Args:
      embedding_dim: size of each code vector; the last axis of the inputs must have this size.
      num_embeddings: number of codes.
      commitment_cost: weight of the commitment loss.
      decay: decay of the moving averages, in ``[0, 1]``.
      epsilon: Laplace smoothing of the cluster sizes (keeps unused codes finite).
      dtype: dtype of the codebook and moving averages.
      cross_replica_axis: name of a ``jax.pmap`` axis; if given, the cluster statistics and the
        perplexity are summed/averaged over all replicas on that axis.
      name: module name.
    """

    def __init__(self, embedding_dim: int, num_embeddings: int, commitment_cost: float,
                 decay: float, epsilon: float = 1e-5, dtype: Any = jnp.float32,
                 cross_replica_axis: Optional[str] = None, name: Optional[str] = None):
        super().__init__(name=name)
        if isinstance(decay, numbers.Real) and not 0 <= decay <= 1:
            raise ValueError(
                f"{type(self).__name__} {self.module_name!r}: `decay` must be in the range "
                f"[0, 1], got {decay}.")
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        self.cross_replica_axis = cross_replica_axis
        self._embedding_shape = [embedding_dim, num_embeddings]
        self._embedding_dtype = dtype
        self._ema_cluster_size = ExponentialMovingAverage(decay=decay, name="ema_cluster_size")
        self._ema_dw = ExponentialMovingAverage(decay=decay, name="ema_dw")

    def embeddings(self) -> jax.Array:
        """The codebook, ``[embedding_dim, num_embeddings]`` (state)."""
        return core.get_state(
            "embeddings", self._embedding_shape, self._embedding_dtype,
            init=initializers.VarianceScaling(distribution="uniform"))

    def ema_cluster_size(self) -> ExponentialMovingAverage:
        """The moving average of how many inputs were assigned to each code."""
        self._ema_cluster_size.initialize([self.num_embeddings], self._embedding_dtype)
        return self._ema_cluster_size

    def ema_dw(self) -> ExponentialMovingAverage:
        """The moving average of the sum of the inputs assigned to each code."""
        self._ema_dw.initialize(self._embedding_shape, self._embedding_dtype)
        return self._ema_dw

    def __call__(self, inputs: jax.Array, is_training: bool) -> dict[str, jax.Array]:
        """Quantises ``inputs`` (``[..., embedding_dim]``); in training, updates the codebook.

        With ``is_training=False`` the moving averages and the codebook are left unchanged.
        """
        flat_inputs = _flatten_inputs(self, inputs, self.embedding_dim)
        embeddings = self.embeddings
        distances = _squared_distances(flat_inputs, embeddings)

        encoding_indices = jnp.argmax(-distances, 1)
        encodings = jax.nn.one_hot(encoding_indices, self.num_embeddings, dtype=distances.dtype)
        encoding_indices = jnp.reshape(encoding_indices, inputs.shape[:-1])
        quantized = self.quantize(encoding_indices)
        e_latent_loss = jnp.mean(jnp.square(jax.lax.stop_gradient(quantized) - inputs))

        if is_training:
            cluster_size = jnp.sum(encodings, axis=0)
            if self.cross_replica_axis is not None:
                cluster_size = jax.lax.psum(cluster_size, axis_name=self.cross_replica_axis)
            updated_ema_cluster_size = self.ema_cluster_size(cluster_size)

            dw = jnp.matmul(flat_inputs.T, encodings)
            if self.cross_replica_axis is not None:
                dw = jax.lax.psum(dw, axis_name=self.cross_replica_axis)
            updated_ema_dw = self.ema_dw(dw)

            # Laplace smoothing, so that codes no input chose do not divide by zero.
            n = jnp.sum(updated_ema_cluster_size)
            updated_ema_cluster_size = ((updated_ema_cluster_size + self.epsilon)
                                        / (n + self.num_embeddings * self.epsilon) * n)
            normalised_updated_ema_w = (
                updated_ema_dw / jnp.reshape(updated_ema_cluster_size, [1, -1]))
            core.set_state("embeddings", normalised_updated_ema_w)

        loss = self.commitment_cost * e_latent_loss
        quantized = inputs + jax.lax.stop_gradient(quantized - inputs)
        return {
            "quantize": quantized,
            "loss": loss,
            "perplexity": _perplexity(encodings, self.cross_replica_axis),
            "encodings": encodings,
            "encoding_indices": encoding_indices,
            "distances": distances,
        }

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """Returns the codes of ``encoding_indices``: shape ``indices.shape + [embedding_dim]``."""
        w = jnp.swapaxes(self.embeddings, 1, 0)
        return w[(encoding_indices,)]


_make_properties(VectorQuantizer, "embeddings")
_make_properties(VectorQuantizerEMA, "embeddings", "ema_cluster_size", "ema_dw")
