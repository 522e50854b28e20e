"""Photometric transforms: pixel values change, geometry and annotations do not."""
from typing import Tuple

import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from .base import BaseTransform


@TRANSFORMS.register_module()
class PhotoMetricDistortion(BaseTransform):
    """MMDetection's photometric distortion of a BGR image; each step happens with
    probability 0.5, in this order:

    brightness, contrast (first or last, at random), saturation, hue, channel swap.

    The image becomes float32 and is not clipped (as in MMDetection); hue is in degrees.

    Args:
        brightness_delta: Add a value drawn from ``[-delta, delta]``.
        contrast_range: Multiply by a factor drawn from this range.
        saturation_range: Multiply the HSV saturation by a factor drawn from this range.
        hue_delta: Shift the hue by up to this many degrees.
    """

    def __init__(self,
                 brightness_delta: int = 32,
                 contrast_range: Tuple[float, float] = (0.5, 1.5),
                 saturation_range: Tuple[float, float] = (0.5, 1.5),
                 hue_delta: int = 18) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    def transform(self, results: dict) -> dict:
        img = results['img'].astype(np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'PhotoMetricDistortion needs a (H, W, 3) BGR image, got shape '
                             f'{img.shape}; load it with color_type="color"')
        rand = np.random
        contrast_last = rand.randint(2) == 1
        if rand.randint(2):
            img += rand.uniform(-self.brightness_delta, self.brightness_delta)
        contrast = rand.uniform(*self.contrast_range) if rand.randint(2) else None
        if contrast is not None and not contrast_last:
            img *= contrast
        saturation = rand.uniform(*self.saturation_range) if rand.randint(2) else None
        hue = rand.uniform(-self.hue_delta, self.hue_delta) if rand.randint(2) else None
        if saturation is not None or hue is not None:
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)  # float: H in [0, 360)
            if saturation is not None:
                hsv[..., 1] *= saturation
            if hue is not None:
                hsv[..., 0] = (hsv[..., 0] + hue) % 360
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if contrast is not None and contrast_last:
            img *= contrast
        if rand.randint(2):
            img = np.ascontiguousarray(img[..., rand.permutation(3)])
        results['img'] = img
        return results
