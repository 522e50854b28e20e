"""Necks (registered in MODELS)."""
from .fpn import FPN
from .ssd_neck import SSDNeck
from .yolov3_neck import YOLOV3Neck

__all__ = ['FPN', 'SSDNeck', 'YOLOV3Neck']
