"""Necks (registered in MODELS)."""
from .fpn import FPN
from .cspnext_pafpn import CSPNeXtPAFPN
from .hrfpn import HRFPN
from .ssd_neck import SSDNeck
from .yolov3_neck import YOLOV3Neck
from .yolox_pafpn import YOLOXPAFPN

__all__ = ['FPN', 'HRFPN', 'SSDNeck', 'YOLOV3Neck', 'CSPNeXtPAFPN', 'YOLOXPAFPN']
