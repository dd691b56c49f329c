"""Full networks (``hk.nets``)."""

from senryu.nets.mlp import MLP
