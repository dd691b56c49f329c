"""Layers: the modules users build networks from.

Each file defines ``__all__``; this package re-exports them, and ``senryu`` re-exports this package.
"""

# --- basic: Linear, Bias, Sequential ---
from senryu.layers.basic import *  # noqa: F401,F403

# --- layers I: convolutions, pooling, reshaping, embeddings, random ops ---
from senryu.layers.conv import *  # noqa: F401,F403
from senryu.layers.depthwise_conv import *  # noqa: F401,F403
from senryu.layers.pool import *  # noqa: F401,F403
from senryu.layers.reshape import *  # noqa: F401,F403
from senryu.layers.batch_apply import *  # noqa: F401,F403
from senryu.layers.embed import *  # noqa: F401,F403
from senryu.layers.random_ops import *  # noqa: F401,F403

# --- layers II: normalisation, moving averages, attention ---
from senryu.layers.moving_averages import *  # noqa: F401,F403
from senryu.layers.layer_norm import *  # noqa: F401,F403
from senryu.layers.batch_norm import *  # noqa: F401,F403
from senryu.layers.group_norm import *  # noqa: F401,F403
from senryu.layers.rms_norm import *  # noqa: F401,F403
from senryu.layers.spectral_norm import *  # noqa: F401,F403
from senryu.layers.attention import *  # noqa: F401,F403

# --- recurrent cores ---
from senryu.layers.recurrent import *  # noqa: F401,F403
from senryu.layers.conv_lstm import *  # noqa: F401,F403
