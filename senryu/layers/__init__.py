"""Layers: the modules users build networks from.

Each file defines ``__all__``; this package re-exports them, and ``senryu`` re-exports this package.
"""

# --- basic: Linear, Bias, Sequential ---
from senryu.layers.basic import *  # noqa: F401,F403

# --- layers I: convolutions, pooling, reshaping, embeddings, random ops ---

# --- layers II: normalisation, moving averages, attention ---
from senryu.layers.moving_averages import *  # noqa: F401,F403
from senryu.layers.layer_norm import *  # noqa: F401,F403
from senryu.layers.batch_norm import *  # noqa: F401,F403
from senryu.layers.group_norm import *  # noqa: F401,F403
from senryu.layers.rms_norm import *  # noqa: F401,F403
from senryu.layers.spectral_norm import *  # noqa: F401,F403
from senryu.layers.attention import *  # noqa: F401,F403

# --- recurrent cores ---
