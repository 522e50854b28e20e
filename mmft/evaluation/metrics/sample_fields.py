"""Reading classes, predictions and ground truth out of what metrics receive.

MMEngine's Evaluator hands a metric ``data_sample.to_dict()``: metainfo keys (``img_id``,
``ori_shape`` ...) at the top level and ``gt_instances`` / ``ignored_instances`` /
``pred_instances`` as plain dicts of tensors. Predictions are in original-image pixels.
Ground truth is read as it is: like MMDetection's test pipelines, load annotations after
``Resize`` so that the gt boxes stay in original-image pixels too.
"""
from typing import Any, Dict, List, Mapping

import numpy as np
import torch


def dataset_classes(metric: Any) -> List[str]:
    """``metric.dataset_meta['classes']``, or an error saying how to set it."""
    meta = metric.dataset_meta or {}
    if 'classes' not in meta:
        raise ValueError(f"{type(metric).__name__} needs dataset_meta['classes']; the Evaluator "
                         'sets it from the dataset, or set metric.dataset_meta = '
                         'dict(classes=[...]) when calling the metric by hand')
    return list(meta['classes'])


def to_numpy(value: Any) -> np.ndarray:
    """A tensor (any device, any float dtype) or array-like as a numpy array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.is_floating_point() else value).numpy()
    return np.asarray(value)


def pred_boxes(pred: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """``bboxes`` (N, 4) float32, ``scores`` (N,) float32 and ``labels`` (N,) int64."""
    return dict(bboxes=to_numpy(pred['bboxes']).astype(np.float32).reshape(-1, 4),
                scores=to_numpy(pred['scores']).astype(np.float32).reshape(-1),
                labels=to_numpy(pred['labels']).astype(np.int64).reshape(-1))


def gt_boxes(data_sample: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """``bboxes``/``labels`` of ``gt_instances`` and ``bboxes_ignore``/``labels_ignore`` of
    ``ignored_instances`` (empty when the sample has none), as numpy arrays."""
    if 'gt_instances' not in data_sample:
        raise KeyError('the data sample has no gt_instances; keep the annotations in the val/test '
                       "pipeline (LoadAnnotations after Resize, then PackDetInputs)")
    if data_sample.get('gt_rescaled'):
        raise ValueError(
            f"the gt boxes of {data_sample.get('img_path', 'an image')} were resized by the "
            'pipeline: the metric compares predictions in original-image pixels. Put '
            'LoadAnnotations after Resize in the val/test pipeline, as MMDetection does')
    gt = data_sample['gt_instances']
    ignored = data_sample.get('ignored_instances') or {}
    out = dict(bboxes=to_numpy(gt['bboxes']).astype(np.float32).reshape(-1, 4),
               labels=to_numpy(gt['labels']).astype(np.int64).reshape(-1))
    out['bboxes_ignore'] = to_numpy(ignored.get('bboxes', np.zeros((0, 4)))).astype(
        np.float32).reshape(-1, 4)
    out['labels_ignore'] = to_numpy(ignored.get('labels', np.zeros(0))).astype(np.int64).reshape(-1)
    return out
