"""Full networks (``hk.nets``)."""

from senryu.nets.mlp import MLP
from senryu.nets.mobilenet import MobileNetV1
from senryu.nets.resnet import (
    ResNet,
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    ResNet200,
)
from senryu.nets.vqvae import VectorQuantizer, VectorQuantizerEMA
