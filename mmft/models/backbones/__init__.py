"""Backbones (registered in MODELS)."""
from .darknet import Darknet
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet
from .vgg import SSDVGG

__all__ = ['ResNet', 'SSDVGG', 'MobileNetV2', 'Darknet']
