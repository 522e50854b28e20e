"""Detectors (registered in MODELS)."""
from .atss import ATSS
from .base import BaseDetector
from .cascade_rcnn import CascadeRCNN
from .fcos import FCOS
from .retinanet import RetinaNet
from .rpn import RPN
from .rtmdet import RTMDet
from .single_stage import SingleStageDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector
from .yolov3 import YOLOV3
from .yolox import YOLOX

__all__ = ['BaseDetector', 'SingleStageDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN',
           'CascadeRCNN', 'RPN', 'RetinaNet', 'FCOS', 'ATSS', 'YOLOV3', 'RTMDet', 'YOLOX']
