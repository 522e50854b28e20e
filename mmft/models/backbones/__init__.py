"""Backbones (registered in MODELS)."""
from .resnet import ResNet

__all__ = ['ResNet']
