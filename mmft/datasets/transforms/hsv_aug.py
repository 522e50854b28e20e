"""``YOLOXHSVRandomAug`` (MMDetection 3.x name and arguments): random shifts of hue,
saturation and value, each applied with probability 0.5, in OpenCV's 8-bit HSV
(hue in [0, 180) wraps around; saturation and value clip to [0, 255]).
Boxes and masks do not change."""
import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from .base import BaseTransform


@TRANSFORMS.register_module()
class YOLOXHSVRandomAug(BaseTransform):
    """HSV jitter of a BGR uint8 image.

    Args:
        hue_delta, saturation_delta, value_delta: largest shift of each channel.
    """

    def __init__(self, hue_delta: int = 5, saturation_delta: int = 30,
                 value_delta: int = 30) -> None:
        self.hue_delta = hue_delta
        self.saturation_delta = saturation_delta
        self.value_delta = value_delta

    def transform(self, results: dict) -> dict:
        img = results['img']
        gains = np.random.uniform(-1, 1, 3) * \
            [self.hue_delta, self.saturation_delta, self.value_delta]
        gains = (gains * np.random.randint(0, 2, 3)).astype(np.int16)
        hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
        results['img'] = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
        return results
