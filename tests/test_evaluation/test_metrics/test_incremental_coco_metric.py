"""IncrementalCocoMetric: old / new class AP and their harmonic mean, on cases known by hand."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.evaluation.metrics.incremental_coco_metric import harmonic_mean
from mmft.registry import METRICS
from mmft.structures.det_data_sample import DetDataSample

CLASSES = ('a', 'b', 'c')  # 'a', 'b' old; 'c' new
GT = {1: [([4, 4, 30, 30], 0), ([40, 40, 70, 70], 2)],
      2: [([10, 10, 50, 40], 1), ([60, 5, 90, 35], 2)]}


def _samples(found_c):
    """Perfect detections of every gt, except the 'c' gts of images not in ``found_c``."""
    samples = []
    for img, objects in GT.items():
        sample = DetDataSample(metainfo=dict(img_id=img, ori_shape=(100, 100)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([b for b, _ in objects], dtype=torch.float32),
            labels=torch.tensor([lb for _, lb in objects]))
        sample.ignored_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                                labels=torch.zeros(0, dtype=torch.long))
        dets = [(b, lb) for b, lb in objects if lb != 2 or img in found_c]
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([b for b, _ in dets], dtype=torch.float32),
            scores=torch.ones(len(dets)), labels=torch.tensor([lb for _, lb in dets]))
        samples.append(sample.to_dict())
    return samples


def _run(found_c, **cfg):
    metric = METRICS.build(dict(type='IncrementalCocoMetric', **cfg))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, _samples(found_c))
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('found_c, new_ap', [((1, 2), 1.0), ((), 0.0), ((1,), 51 / 101)])
def test_old_new_and_harmonic_mean(found_c, new_ap):
    out = _run(found_c, old_classes=('a', 'b'))
    assert out['bbox_old_mAP'] == pytest.approx(1.0)
    # one 'c' found of two, at score 1: precision 1 up to recall 0.5 -> 51 of 101 points
    assert out['bbox_new_mAP'] == pytest.approx(new_ap)
    assert out['bbox_hmean_mAP'] == pytest.approx(2 * new_ap / (1 + new_ap))
    assert 'bbox_mAP' in out and 'bbox_c_precision' in out  # CocoMetric's results stay


def test_old_classes_by_count_and_bad_arguments():
    out = _run((1,), num_old_classes=2)
    assert out['bbox_old_mAP'] == pytest.approx(1.0)
    assert out['bbox_new_mAP'] == pytest.approx(51 / 101)
    with pytest.raises(ValueError, match='exactly one of old_classes'):
        METRICS.build(dict(type='IncrementalCocoMetric'))
    with pytest.raises(TypeError, match="write \\('a',\\)"):
        METRICS.build(dict(type='IncrementalCocoMetric', old_classes='a'))
    with pytest.raises(ValueError, match=r"old_classes \['z'\] are not evaluated classes"):
        _run((1,), old_classes=('a', 'z'))


def test_harmonic_mean():
    assert harmonic_mean(0.6, 0.3) == pytest.approx(0.4)
    assert harmonic_mean(0.6, 0.0) == 0.0
    assert math.isnan(harmonic_mean(float('nan'), 0.5))
