"""DetLocalVisualizer: boxes, masks, class names and scores drawn onto an image.

Conventions: images are RGB uint8 ``(H, W, 3)`` (PNG files are written BGR by
OpenCV, so they look right in any viewer); boxes are xyxy pixels of that image;
labels index ``dataset_meta['classes']``; masks are ``(N, H, W)`` of the same
image size: bool tensors (predictions) or BitmapMasks / PolygonMasks (ground
truth), anything with ``to_ndarray()`` works.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import InstanceData
from mmengine.visualization import Visualizer

from mmft.registry import VISUALIZERS
from mmft.structures import DetDataSample
from .palette import Color, adaptive_scales, jitter_color, label_colors

ColorArg = Optional[Union[str, Color, Sequence[Color]]]

_TEXT_BACKGROUND = dict(facecolor='black', alpha=0.8, pad=0.7, edgecolor='none')


@VISUALIZERS.register_module()
class DetLocalVisualizer(Visualizer):
    """Draws a :class:`DetDataSample` and saves it to a file or the vis backends.

    Args:
        name: instance name (MMEngine keeps one visualizer per name).
        image: an RGB image to start drawing on.
        vis_backends: MMEngine vis backend configs (``LocalVisBackend`` ...).
        save_dir: folder for the vis backends.
        bbox_color: box colour for every class; None uses
            ``dataset_meta['palette']`` (random fixed colours without one).
            A colour name, an RGB tuple or a list of RGB tuples (one per class).
        text_color: colour of the class / score text, same forms.
        mask_color: mask colour, same forms as ``bbox_color``.
        line_width: box line width in pixels.
        alpha: opacity of boxes and masks.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 bbox_color: ColorArg = None,
                 text_color: ColorArg = (200, 200, 200),
                 mask_color: ColorArg = None,
                 line_width: Union[int, float] = 3,
                 alpha: float = 0.8) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends,
                         save_dir=save_dir)
        self.bbox_color = bbox_color
        self.text_color = text_color
        self.mask_color = mask_color
        self.line_width = line_width
        self.alpha = float(alpha)
        self.dataset_meta = {}

    def _draw_instances(self, image: np.ndarray, instances: InstanceData,
                        classes: Optional[Sequence[str]], palette: ColorArg) -> np.ndarray:
        """``image`` with ``instances`` drawn on it (RGB)."""
        self.set_image(image)
        labels = instances.labels.cpu().numpy().astype(int)
        if len(labels) == 0:
            return self.get_image()
        # masks first: blending them re-renders the canvas, boxes and text stay on top
        if 'masks' in instances:
            self._draw_masks(_masks_to_bool(instances.masks), labels, palette)
        if 'bboxes' in instances:
            bboxes = instances.bboxes.cpu().numpy()
            colors = label_colors(palette if self.bbox_color is None else self.bbox_color, labels)
            # x2 == width is a box on the right edge, yet MMEngine warns unless x2 < width
            inside = np.clip(bboxes, 0, [self.width - 1e-3, self.height - 1e-3] * 2)
            self.draw_bboxes(inside, edge_colors=colors, alpha=self.alpha,
                             line_widths=self.line_width)
            scores = instances.scores.cpu().numpy() if 'scores' in instances else None
            texts = [_label_text(label, classes, None if scores is None else scores[i])
                     for i, label in enumerate(labels)]
            areas = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
            self.draw_texts(texts, bboxes[:, :2] + self.line_width,
                            colors=label_colors(self.text_color, labels),
                            font_sizes=[int(13 * s) for s in adaptive_scales(areas)],
                            bboxes=[_TEXT_BACKGROUND] * len(texts))
        return self.get_image()

    def _draw_masks(self, masks: np.ndarray, labels: np.ndarray, palette: ColorArg) -> None:
        if masks.shape[1:] != (self.height, self.width):
            raise ValueError(f'masks are {masks.shape[1:]} (h, w) but the image is '
                             f'{(self.height, self.width)}; draw masks on the image they '
                             'belong to (predictions: ori_shape, ground truth: img_shape)')
        base = label_colors(palette if self.mask_color is None else self.mask_color, labels)
        colors = [jitter_color(c, seed=i) for i, c in enumerate(base)]
        outlines = []
        for mask in masks:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
            outlines += [c.reshape(-1, 2) for c in contours if len(c) > 2]
        self.draw_binary_masks(masks, colors=colors, alphas=self.alpha)
        if outlines:
            self.draw_polygons(outlines, edge_colors='w', alpha=self.alpha, line_widths=1)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0) -> None:
        """Draw ground truth and / or predictions; show, save or log the result.

        Ground truth (``gt_instances``) is drawn on the left, predictions
        (``pred_instances`` scoring above ``pred_score_thr``) on the right,
        when the sample has both and both are asked for. Instances without
        ``labels`` (an unannotated test image's empty ``gt_instances``) are
        not drawn and get no panel.

        Args:
            name: image identifier (window title, vis-backend key).
            image: the RGB image, at the size the sample's boxes refer to.
            data_sample: what to draw; None draws nothing.
            draw_gt: draw ``gt_instances``.
            draw_pred: draw ``pred_instances``.
            show: open a window with the result.
            wait_time: seconds the window stays (0: until a key is pressed).
            out_file: write the result here (PNG / JPG by extension) instead
                of to the vis backends.
            pred_score_thr: predictions scoring at most this are not drawn.
            step: global step for the vis backends.
        """
        image = np.clip(image, 0, 255).astype(np.uint8)
        meta = self.dataset_meta or {}
        classes, palette = meta.get('classes'), meta.get('palette')
        panels = []
        gt = _annotations(data_sample, 'gt_instances') if draw_gt else None
        if gt is not None:
            panels.append(self._draw_instances(image, gt, classes, palette))
        pred = _annotations(data_sample, 'pred_instances') if draw_pred else None
        if pred is not None:
            if 'scores' in pred:
                pred = pred[pred.scores > pred_score_thr]
            panels.append(self._draw_instances(image, pred, classes, palette))
        drawn = np.concatenate(panels, axis=1) if panels else image

        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
            if not cv2.imwrite(out_file, drawn[..., ::-1]):
                raise OSError(f'could not write {out_file!r}: use a .png or .jpg file name '
                              'in a writable folder')
        else:
            self.add_image(name, drawn, step)


def _annotations(data_sample: Optional[DetDataSample], field: str) -> Optional[InstanceData]:
    """``data_sample.<field>`` if it holds instances (a test pipeline without
    LoadAnnotations still packs an empty ``gt_instances``: no panel for it)."""
    instances = data_sample.get(field) if data_sample is not None else None
    if instances is None or 'labels' not in instances:
        return None
    return instances


def _masks_to_bool(masks) -> np.ndarray:
    """(N, H, W) bool array from a tensor, an array or Bitmap/PolygonMasks."""
    if hasattr(masks, 'to_ndarray'):
        masks = masks.to_ndarray()
    elif isinstance(masks, torch.Tensor):
        masks = masks.cpu().numpy()
    return np.asarray(masks).astype(bool)


def _label_text(label: int, classes: Optional[Sequence[str]],
                score: Optional[float]) -> str:
    name = classes[label] if classes is not None and label < len(classes) else f'class {label}'
    return name if score is None else f'{name}: {round(float(score) * 100, 1)}'
