"""Pipeline transforms, registered in mmft's TRANSFORMS under MMDetection 3.x's names."""
from .albu import Albu
from .augment import (AutoAugment, CutOut, FilterAnnotations, FixScaleResize,
                      RandomShift)
from .base import SKIP_REASON_KEY, BaseTransform, select_instances, skip_sample
from .center_crop_pad import RandomCenterCropPad
from .copy_paste import CopyPaste
from .formatting import PackDetInputs
from .geometric import Pad, RandomChoiceResize, RandomCrop, RandomFlip, RandomResize, Resize
from .hsv_aug import YOLOXHSVRandomAug
from .loading import LoadAnnotations, LoadImageFromFile
from .affine import RandomAffine
from .mix_img_transforms import CachedMixUp, CachedMosaic, MixUp, Mosaic
from .photometric import PhotoMetricDistortion
from .ssd_transforms import Expand, MinIoURandomCrop
from .wrappers import Compose, RandomApply, RandomChoice, TestTimeAug

__all__ = [
    'BaseTransform', 'SKIP_REASON_KEY', 'skip_sample', 'select_instances', 'LoadImageFromFile',
    'LoadAnnotations', 'Resize', 'RandomResize', 'RandomChoiceResize', 'RandomFlip', 'Pad',
    'RandomCrop', 'PhotoMetricDistortion', 'PackDetInputs', 'Expand', 'MinIoURandomCrop',
    'Compose', 'RandomChoice', 'RandomApply', 'TestTimeAug', 'FilterAnnotations',
    'FixScaleResize', 'RandomShift', 'CutOut', 'AutoAugment', 'Albu', 'CopyPaste',
    'RandomCenterCropPad',
    'CachedMosaic', 'CachedMixUp', 'YOLOXHSVRandomAug', 'Mosaic', 'MixUp', 'RandomAffine'
]
