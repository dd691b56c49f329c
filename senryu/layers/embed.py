"""Token embeddings: ``Embed`` and ``EmbedLookupStyle``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from senryu import core
from senryu import initializers

__all__ = ["Embed", "EmbedLookupStyle"]


class EmbedLookupStyle(enum.Enum):
    """How :class:`Embed` maps ids to embeddings (same result, different speed/memory).

    ``ARRAY_INDEX`` gathers rows (``embeddings[ids]``); ``ONE_HOT`` multiplies one-hot vectors by
    the embedding matrix (ids outside ``[0, vocab_size)`` then give zeros).

    >>> import senryu as hk
    >>> hk.EmbedLookupStyle.ONE_HOT.value
    2
    """

    ARRAY_INDEX = 1
    ONE_HOT = 2


def _lookup_style(style: Union[str, EmbedLookupStyle]) -> EmbedLookupStyle:
    if isinstance(style, EmbedLookupStyle):
        return style
    if isinstance(style, str) and style.upper() in EmbedLookupStyle.__members__:
        return EmbedLookupStyle[style.upper()]
    raise AttributeError(
        f"Unknown embedding lookup_style {style!r}: use 'ARRAY_INDEX' or 'ONE_HOT' (or "
        "hk.EmbedLookupStyle.ARRAY_INDEX / hk.EmbedLookupStyle.ONE_HOT).")


class Embed(core.Module):
    """Maps integer ids to learned vectors: a ``[vocab_size, embed_dim]`` matrix ``embeddings``.

    >>> import jax, jax.numpy as jnp, senryu as hk
    >>> f = hk.transform(lambda ids: hk.Embed(vocab_size=10, embed_dim=4)(ids))
    >>> ids = jnp.array([[1, 2, 3]])
    >>> params = f.init(jax.random.PRNGKey(0), ids)
    >>> jax.tree.map(jnp.shape, params)
    {'embed': {'embeddings': (10, 4)}}
    >>> f.apply(params, None, ids).shape
    (1, 3, 4)

    From an existing matrix:

    >>> f = hk.transform(lambda ids: hk.Embed(embedding_matrix=jnp.eye(3))(ids))
    >>> f.apply(f.init(None, ids), None, jnp.array([2]))
    Array([[0., 0., 1.]], dtype=float32)

    Args:
      vocab_size: number of distinct ids; inferred from ``embedding_matrix`` if given.
      embed_dim: size of each embedding; inferred from ``embedding_matrix`` if given.
      embedding_matrix: initial value of the embeddings, of shape ``[vocab_size, embed_dim]``.
      w_init: initializer of the embeddings when no matrix is given; default
        ``TruncatedNormal(stddev=1)``.
      lookup_style: default :class:`EmbedLookupStyle` (or its name), overridable per call.
      name: module name.
      precision: matmul precision of the ``ONE_HOT`` lookup (default highest).

    Raises:
      ValueError: if neither a matrix nor both sizes are given, or they disagree.
    """

    def __init__(self, vocab_size: Optional[int] = None, embed_dim: Optional[int] = None,
                 embedding_matrix: Optional[Union[np.ndarray, jax.Array]] = None,
                 w_init: Optional[initializers.Initializer] = None,
                 lookup_style: Union[str, EmbedLookupStyle] = "ARRAY_INDEX",
                 name: Optional[str] = None,
                 precision: jax.lax.Precision = jax.lax.Precision.HIGHEST):
        super().__init__(name=name)
        if embedding_matrix is None and not (vocab_size and embed_dim):
            raise ValueError(
                f"{self.module_name}: Embed needs either an initial `embedding_matrix` or both "
                f"`vocab_size` and `embed_dim` (got vocab_size={vocab_size!r}, "
                f"embed_dim={embed_dim!r}).")
        if embedding_matrix is not None:
            embedding_matrix = jnp.asarray(embedding_matrix)
            if embedding_matrix.ndim != 2:
                raise ValueError(f"{self.module_name}: embedding_matrix must be 2D [vocab_size, "
                                 f"embed_dim], got shape {embedding_matrix.shape}.")
            for what, given, actual in (("vocab_size", vocab_size, embedding_matrix.shape[0]),
                                        ("embed_dim", embed_dim, embedding_matrix.shape[1])):
                if given and given != actual:
                    raise ValueError(
                        f"{self.module_name}: an `embedding_matrix` of shape "
                        f"{embedding_matrix.shape} was given, which is inconsistent with "
                        f"{what}={given}.")
            vocab_size, embed_dim = embedding_matrix.shape
            w_init = initializers.Constant(embedding_matrix)
        self._embedding_matrix = embedding_matrix
        self.vocab_size = int(vocab_size)
        self.embed_dim = int(embed_dim)
        self.lookup_style = lookup_style
        self.precision = precision
        self.w_init = w_init or initializers.TruncatedNormal()

    @property
    def embeddings(self) -> jax.Array:
        """The embedding matrix parameter (created on first use)."""
        dtype = (jnp.float32 if self._embedding_matrix is None
                 else self._embedding_matrix.dtype)
        return core.get_parameter("embeddings", [self.vocab_size, self.embed_dim], dtype,
                                  init=self.w_init)

    def __call__(self, ids: Union[jax.Array, Sequence[int]],
                 lookup_style: Optional[Union[str, EmbedLookupStyle]] = None,
                 precision: Optional[jax.lax.Precision] = None) -> jax.Array:
        """Returns the embeddings of ``ids``: an array of shape ``ids.shape + (embed_dim,)``.

        Args:
          ids: integer ids in ``[0, vocab_size)``.
          lookup_style: overrides the module's lookup style for this call.
          precision: overrides the module's ``ONE_HOT`` matmul precision for this call.

        Raises:
          AttributeError: if the lookup style is unknown.
          ValueError: if ``ids`` is not of an integer dtype.
        """
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(
                f"{self.module_name}: Embed must be called with an array of integer ids, but got "
                f"dtype {ids.dtype} (shape {ids.shape}); cast with ids.astype(jnp.int32).")
        try:
            style = _lookup_style(lookup_style if lookup_style is not None else self.lookup_style)
        except AttributeError as e:
            raise AttributeError(f"{self.module_name}: {e}") from None
        embeddings = self.embeddings
        if style is EmbedLookupStyle.ARRAY_INDEX:
            return embeddings[ids]
        one_hot = jax.nn.one_hot(ids, self.vocab_size, dtype=embeddings.dtype)
        return jnp.dot(one_hot, embeddings,
                       precision=self.precision if precision is None else precision)
