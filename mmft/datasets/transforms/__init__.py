"""Pipeline transforms, registered in mmft's TRANSFORMS under MMDetection 3.x's names."""
from .base import SKIP_REASON_KEY, BaseTransform, select_instances, skip_sample
from .formatting import PackDetInputs
from .geometric import Pad, RandomChoiceResize, RandomCrop, RandomFlip, RandomResize, Resize
from .hsv_aug import YOLOXHSVRandomAug
from .loading import LoadAnnotations, LoadImageFromFile
from .mix_img_transforms import CachedMixUp, CachedMosaic
from .photometric import PhotoMetricDistortion
from .ssd_transforms import Expand, MinIoURandomCrop

__all__ = [
    'BaseTransform', 'SKIP_REASON_KEY', 'skip_sample', 'select_instances', 'LoadImageFromFile',
    'LoadAnnotations', 'Resize', 'RandomResize', 'RandomChoiceResize', 'RandomFlip', 'Pad',
    'RandomCrop', 'PhotoMetricDistortion', 'PackDetInputs', 'Expand', 'MinIoURandomCrop',
    'CachedMosaic', 'CachedMixUp', 'YOLOXHSVRandomAug'
]
