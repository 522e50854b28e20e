"""RandomCenterCropPad: CornerNet / CenterNet's crop-and-pad around a centre
(MMDetection 3.x's name and arguments).

Training: a window of ``crop_size * ratio`` (ratio drawn from ``ratios``) is centred on a
random point at least a border away from the image edges; what of the image falls in it is
copied into a canvas of the window's size filled with the mean colour, the two centres
aligned. Boxes and masks move the same way; instances whose box centre is outside the
window are dropped (a window with no box centre is redrawn). Testing: the whole image is
centred in a canvas padded up to ``test_pad_mode``'s size and ``results['border']`` records
``[top, bottom, left, right]`` of the image inside it (annotations are loaded after this
step in MMDetection's test pipelines, so they stay in original pixels).

The image must be float32 (``LoadImageFromFile(to_float32=True)``), as in MMDetection.
"""
from typing import Optional, Sequence, Tuple

import numpy as np

from mmft.registry import TRANSFORMS
from .base import BaseTransform, select_instances

_ROUNDS = 50  # centres tried per ratio before another ratio is drawn


@TRANSFORMS.register_module()
class RandomCenterCropPad(BaseTransform):
    """Crop around a random centre and pad to the window (training), or pad around the
    image centre (test mode).

    Args:
        crop_size: ``(w, h)`` of the window before ``ratios`` (training; None in test mode).
        ratios: Window scales to draw from (training; None in test mode).
        border: Largest distance of the centre range from the image edges (training).
        mean, std, to_rgb: As the model's normaliser; the canvas is filled with ``mean``
            (in BGR order when ``to_rgb``). Required, as MMDetection requires them.
        test_mode: Pad only, deterministically.
        test_pad_mode: ``('logical_or', v)``: size ``s | v``; ``('size_divisor', d)``: size
            up to a multiple of ``d`` (test mode; None in training).
        test_pad_add_pix: Extra pixels added to the padded size (test mode, CenterNet).
        bbox_clip_border: Clip boxes to the window.
    """

    def __init__(self,
                 crop_size: Optional[Tuple[int, int]] = None,
                 ratios: Optional[Sequence[float]] = (0.9, 1.0, 1.1),
                 border: Optional[int] = 128,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: Optional[bool] = None,
                 test_mode: bool = False,
                 test_pad_mode: Optional[Tuple[str, int]] = ('logical_or', 127),
                 test_pad_add_pix: int = 0,
                 bbox_clip_border: bool = True) -> None:
        if mean is None or std is None or to_rgb is None:
            raise ValueError('RandomCenterCropPad needs mean, std and to_rgb (the same as the '
                             "model's data_preprocessor): the canvas is filled with the mean")
        if test_mode:
            if crop_size is not None or ratios is not None or border is not None:
                raise ValueError('RandomCenterCropPad(test_mode=True) takes crop_size=None, '
                                 f'ratios=None, border=None; got {crop_size}, {ratios}, {border}')
            if not isinstance(test_pad_mode, (list, tuple)) or \
                    test_pad_mode[0] not in ('logical_or', 'size_divisor'):
                raise ValueError(f'RandomCenterCropPad test_pad_mode={test_pad_mode!r}: use '
                                 "('logical_or', 127) or ('size_divisor', 32)")
        else:
            if not isinstance(crop_size, (list, tuple)) or len(crop_size) != 2 or \
                    min(crop_size) <= 0:
                raise ValueError(f'RandomCenterCropPad crop_size={crop_size!r} must be a '
                                 'positive (w, h) in training')
            if not ratios or border is None:
                raise ValueError('RandomCenterCropPad needs ratios and border in training')
            if test_pad_mode is not None:
                raise ValueError('RandomCenterCropPad test_pad_mode must be None in training '
                                 '(set test_mode=True to pad test images)')
        self.crop_size = crop_size
        self.ratios = ratios
        self.border = border
        self.input_mean, self.input_std, self.to_rgb = mean, std, to_rgb
        self.mean = list(mean)[::-1] if to_rgb else list(mean)
        self.std = list(std)[::-1] if to_rgb else list(std)
        self.test_mode = test_mode
        self.test_pad_mode = test_pad_mode
        self.test_pad_add_pix = test_pad_add_pix
        self.bbox_clip_border = bbox_clip_border

    @staticmethod
    def _get_border(border: int, size: int) -> int:
        """``border`` halved until the centre range ``[b, size - b)`` is not empty."""
        k = 2 * border / size
        i = pow(2, np.ceil(np.log2(np.ceil(k))) + (k == int(k)))
        return int(border // i)

    def _paste(self, img: np.ndarray, center: Tuple[int, int],
               size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
        """The window ``size`` ``(h, w)`` around ``center`` ``(y, x)`` on a mean canvas.

        Returns the canvas, the image's patch ``[x0, y0, x1, y1]`` and the ``(dx, dy)``
        that moves image pixels into the canvas.
        """
        cy, cx = center
        th, tw = size
        h, w = img.shape[:2]
        x0, x1 = max(0, cx - tw // 2), min(cx + tw // 2, w)
        y0, y1 = max(0, cy - th // 2), min(cy + th // 2, h)
        dx, dy = tw // 2 - cx, th // 2 - cy
        canvas = np.empty((th, tw, img.shape[2]), dtype=img.dtype)
        canvas[...] = np.asarray(self.mean, dtype=img.dtype)
        canvas[y0 + dy:y1 + dy, x0 + dx:x1 + dx] = img[y0:y1, x0:x1]
        return canvas, np.array([x0, y0, x1, y1]), (dx, dy)

    def _check_image(self, img: np.ndarray) -> None:
        if img.dtype != np.float32:
            raise TypeError(f'RandomCenterCropPad needs a float32 image, got {img.dtype}; set '
                            'to_float32=True in LoadImageFromFile')
        if img.ndim != 3 or img.shape[2] != len(self.mean):
            raise ValueError(f'RandomCenterCropPad: image of shape {img.shape} but '
                             f'{len(self.mean)} mean values')

    def transform(self, results: dict) -> Optional[dict]:
        img = results['img']
        self._check_image(img)
        return self._test(results) if self.test_mode else self._train(results)

    def _test(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        mode, value = self.test_pad_mode
        if mode == 'logical_or':
            th, tw = (h | value) + self.test_pad_add_pix, (w | value) + self.test_pad_add_pix
        else:
            th, tw = int(np.ceil(h / value)) * value, int(np.ceil(w / value)) * value
        canvas, _, (dx, dy) = self._paste(img, (h // 2, w // 2), (th, tw))
        results['img'] = canvas
        results['img_shape'] = (th, tw)
        results['border'] = np.array([dy, dy + h, dx, dx + w], dtype=np.float32)
        return results

    def _train(self, results: dict) -> Optional[dict]:
        img = results['img']
        h, w = img.shape[:2]
        boxes = results.get('gt_bboxes')
        hb, wb = self._get_border(self.border, h), self._get_border(self.border, w)
        for _ in range(10 * len(self.ratios)):
            ratio = self.ratios[np.random.randint(len(self.ratios))]
            th, tw = int(self.crop_size[1] * ratio), int(self.crop_size[0] * ratio)
            for _ in range(_ROUNDS):
                cx = int(np.random.randint(wb, w - wb))
                cy = int(np.random.randint(hb, h - hb))
                canvas, patch, (dx, dy) = self._paste(img, (cy, cx), (th, tw))
                if boxes is None or len(boxes) == 0:
                    return self._commit(results, canvas, patch, (dx, dy), None)
                centers = (boxes[:, :2] + boxes[:, 2:]) / 2
                inside = (centers[:, 0] > patch[0]) & (centers[:, 1] > patch[1]) & \
                    (centers[:, 0] < patch[2]) & (centers[:, 1] < patch[3])
                if inside.any():
                    return self._commit(results, canvas, patch, (dx, dy), inside)
        return None  # no window holds a box centre: an augmentation retry, not bad data

    def _commit(self, results: dict, canvas: np.ndarray, patch: np.ndarray,
                shift: Tuple[int, int], inside: Optional[np.ndarray]) -> dict:
        th, tw = canvas.shape[:2]
        dx, dy = shift
        results['img'] = canvas
        results['img_shape'] = (th, tw)
        masks = results.get('gt_masks')
        if masks is not None:  # crop to the patch, then place it where the image went
            results['gt_masks'] = masks.crop(patch).expand(th, tw, int(patch[1] + dy),
                                                           int(patch[0] + dx))
        if inside is None:
            return results
        select_instances(results, inside)
        boxes = results['gt_bboxes'] + np.array([dx, dy, dx, dy], np.float32)
        if self.bbox_clip_border:
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, tw)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, th)
        results['gt_bboxes'] = boxes
        keep = (boxes[:, 0] < tw) & (boxes[:, 1] < th) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        select_instances(results, keep)
        return results
