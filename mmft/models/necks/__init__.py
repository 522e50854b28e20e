"""Necks (registered in MODELS)."""
from .fpn import FPN

__all__ = ['FPN']
