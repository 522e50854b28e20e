"""VOCMetric through MMEngine's Evaluator, on the hand-computed ``voc_case`` (conftest.py)."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmft.registry import METRICS
from mmft.structures import DetDataSample


def voc_samples(voc_case):
    """DetDataSamples of the hand case: difficult boxes in ignored_instances."""
    det_results, annotations = voc_case.dets, voc_case.anns
    samples = []
    for i, (dets, ann) in enumerate(zip(det_results, annotations)):
        labels = np.concatenate([np.full(len(d), c) for c, d in enumerate(dets)])
        dets = np.vstack(dets)
        sample = DetDataSample(metainfo=dict(img_id=i, ori_shape=(300, 300)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(ann['bboxes']),
                                           labels=torch.tensor(ann['labels']))
        sample.ignored_instances = InstanceData(
            bboxes=torch.tensor(ann['bboxes_ignore']).reshape(-1, 4),
            labels=torch.tensor(ann['labels_ignore']).reshape(-1))
        sample.pred_instances = InstanceData(bboxes=torch.tensor(dets[:, :4]),
                                             scores=torch.tensor(dets[:, 4]),
                                             labels=torch.tensor(labels))
        samples.append(sample)
    return samples


def evaluate(samples, dataset_meta=None, **cfg):
    evaluator = Evaluator(METRICS.build(dict(type='VOCMetric', **cfg)))
    evaluator.dataset_meta = dataset_meta or dict(classes=('cat', 'dog'))
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


@pytest.mark.parametrize('mode', ['11points', 'area'])
def test_voc_map_hand_computed(mode, read_log, voc_case):
    cat_ap, dog_ap = voc_case.ap[f'cat_{mode}'], voc_case.ap['dog']
    results = evaluate(voc_samples(voc_case), eval_mode=mode)
    assert list(results) == ['pascal_voc/mAP', 'pascal_voc/AP50']
    assert results['pascal_voc/mAP'] == pytest.approx((cat_ap + dog_ap) / 2, abs=1e-6)
    assert results['pascal_voc/AP50'] == results['pascal_voc/mAP']
    log = read_log()
    # the per-class table: class, gts, dets, recall, ap; 2 cat gts (the difficult one left out)
    assert 'class' in log and 'recall' in log
    cat_row = next(line for line in log.splitlines() if '| cat' in line)
    assert [c.strip() for c in cat_row.split('|')[1:-1]] == ['cat', '2', '4', '1.000',
                                                             f'{cat_ap:.3f}']


def test_voc_default_mode_is_11points_and_several_iou_thrs(voc_case):
    expected = (voc_case.ap['cat_11points'] + voc_case.ap['dog']) / 2
    results = evaluate(voc_samples(voc_case), iou_thrs=[0.5, 0.95])
    assert results['pascal_voc/AP50'] == pytest.approx(expected, abs=1e-6)
    # at 0.95 only the exact boxes match: the dog's FP (IoU .4) still ranks first, so same APs
    assert results['pascal_voc/AP95'] == pytest.approx(expected, abs=1e-6)
    assert results['pascal_voc/mAP'] == pytest.approx(
        (results['pascal_voc/AP50'] + results['pascal_voc/AP95']) / 2)


def test_voc2007_with_area_mode_warns(voc_case):
    with pytest.warns(UserWarning, match="VOC2007 is scored with eval_mode='11points'"):
        evaluate(voc_samples(voc_case), dict(classes=('cat', 'dog'), dataset_type='VOC2007'),
                 eval_mode='area')


def test_voc_recall_of_proposals(voc_case):
    results = evaluate(voc_samples(voc_case), metric='recall', proposal_nums=(1, 10),
                       iou_thrs=[0.5, 0.75])
    # image 0: the 0.95 proposal overlaps the dog gt by 0.4 (top-1 finds nothing);
    # with 10, the 2 gts are found exactly. Image 1: the single gt found by its only box.
    assert results['pascal_voc/recall@1@0.5'] == pytest.approx(1 / 3)
    assert results['pascal_voc/recall@10@0.5'] == pytest.approx(1.)
    assert results['pascal_voc/AR@10'] == pytest.approx(1.)


def test_voc_metric_rejects_bad_arguments():
    with pytest.raises(KeyError, match="'mAP' or 'recall'"):
        METRICS.build(dict(type='VOCMetric', metric='bbox'))
    with pytest.raises(ValueError, match='11points'):
        METRICS.build(dict(type='VOCMetric', eval_mode='voc07'))


def test_gt_resized_by_the_pipeline_is_refused():
    from mmft.datasets.transforms import LoadAnnotations, PackDetInputs, Resize
    from mmft.evaluation.metrics.sample_fields import gt_boxes
    results = dict(img=np.zeros((40, 60, 3), np.uint8), img_shape=(40, 60), ori_shape=(40, 60),
                   img_path='a.png', instances=[dict(bbox=[1, 1, 9, 9], bbox_label=0,
                                                     ignore_flag=0)])
    results = LoadAnnotations(with_bbox=True)(results)
    results = Resize(scale=(30, 20), keep_ratio=False)(results)  # annotations before Resize
    sample = PackDetInputs(meta_keys=('img_path', 'ori_shape'))(results)['data_samples']
    with pytest.raises(ValueError, match='Put LoadAnnotations after Resize'):
        gt_boxes(sample.to_dict())
