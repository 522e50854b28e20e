"""OpenImagesMetric: hierarchy expansion, label filtering and the group-of rule, against APs
worked out by hand on the tiny tree (classes Animal > {Cat, Dog}, Vehicle)."""
import pytest
import torch

from mmft.datasets import OpenImagesDataset
from mmft.evaluation.functional import tpfp_openimages
from mmft.registry import METRICS

from tests.test_datasets.openimages_tree import make_openimages

ANIMAL, CAT, DOG, VEHICLE = range(4)
# (image index, class, box, score)
PREDS = [(0, CAT, [10, 10, 30, 40], 0.9),      # the cat: TP for Cat and (as Animal) Animal
         (0, DOG, [55, 5, 70, 20], 0.8),       # two dogs inside the group-of box:
         (0, DOG, [75, 25, 95, 45], 0.7),      # one TP together
         (0, VEHICLE, [0, 0, 50, 50], 0.99),   # img1 is not annotated for Vehicle: dropped
         (1, CAT, [20, 10, 50, 40], 0.95),     # img2: Cat verified absent: an FP
         (1, VEHICLE, [20, 10, 80, 40], 0.5)]  # the vehicle


def _evaluate(tmp_path, **metric_kwargs):
    ds = OpenImagesDataset(**make_openimages(tmp_path), test_mode=True, pipeline=[])
    metric = METRICS.build(dict(type='OpenImagesMetric', **metric_kwargs))
    metric.dataset_meta = ds.metainfo
    samples = []
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        rows = [p for p in PREDS if p[0] == idx]
        samples.append(dict(
            instances=info['instances'], image_level_labels=info['image_level_labels'],
            pred_instances=dict(bboxes=torch.tensor([r[2] for r in rows], dtype=torch.float32),
                                scores=torch.tensor([r[3] for r in rows]),
                                labels=torch.tensor([r[1] for r in rows]))))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_hierarchy_aware_map(tmp_path):
    out = _evaluate(tmp_path)
    # Cat: FP 0.95 then TP 0.9 -> 0.5; Dog: the group-of box found -> 1; Animal: the cat box
    # (0.9) and the dog group (0.8) -> 1; Vehicle: the img1 prediction is filtered -> 1
    assert out['openimages/AP50'] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert out['openimages/mAP'] == out['openimages/AP50']


def test_without_filtering_or_group_of(tmp_path):
    # the unannotated Vehicle prediction (0.99) now counts as an FP: Vehicle 0.5
    assert _evaluate(tmp_path, filter_labels=False)['openimages/mAP'] == \
        pytest.approx((0.5 + 1 + 1 + 0.5) / 4)
    # group-of boxes as plain boxes: the small dogs miss it (IoU < 0.5): Dog 0, Animal 0.5
    assert _evaluate(tmp_path, use_group_of=False)['openimages/mAP'] == \
        pytest.approx((0.5 + 0 + 0.5 + 1) / 4)


def test_tpfp_openimages_group_rule():
    dets = torch.tensor([[0, 0, 10, 10, .9], [1, 1, 9, 9, .8], [50, 50, 60, 60, .7],
                         [52, 52, 58, 58, .95], [90, 90, 99, 99, .6]]).numpy()
    gts = torch.tensor([[0, 0, 10, 10], [40, 40, 70, 70]]).numpy()
    tp, fp, out = tpfp_openimages(dets, gts, [False, True])
    # det 0 hits the plain box, det 1 duplicates it (FP, and outside the group box);
    # dets 2 and 3 fall in the group box: one TP scored 0.95; det 4 is an FP
    assert tp.tolist() == [[1, 0, 0, 1]] and fp.tolist() == [[0, 1, 1, 0]]
    assert out[:, 4].tolist() == pytest.approx([.9, .8, .6, .95])
    _, fp, out = tpfp_openimages(dets[:1], gts, [False, True])
    assert fp.tolist() == [[0, 1]] and out[-1, 4] == 0  # an unfound group: score-0 FP


def test_metric_errors(tmp_path):
    with pytest.raises(ValueError, match='one ioa_thr per iou_thr'):
        METRICS.build(dict(type='OpenImagesMetric', iou_thrs=[0.5, 0.75], ioa_thrs=0.5))
    metric = METRICS.build(dict(type='OpenImagesMetric'))
    metric.dataset_meta = dict(classes=('a', ))
    with pytest.raises(ValueError, match='RELATION_MATRIX'):
        metric.process({}, [dict(instances=[])])


def test_base_config_pipeline_feeds_the_metric(repo_root, tmp_path):
    """The base config's test pipeline keeps what the metric reads, through a dataloader."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/datasets/openimages_detection.py'))
    loader = cfg.test_dataloader.copy()
    loader.dataset.update(make_openimages(tmp_path))
    ds_loader = Runner.build_dataloader(loader, seed=0)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = ds_loader.dataset.metainfo
    for batch in ds_loader:
        for sample in batch['data_samples']:
            gt = sample.gt_instances
            # perfect predictions: the gt (loaded after Resize: original pixels)
            assert sample.scale_factor != (1.0, 1.0)
            sample.pred_instances = InstanceData(bboxes=gt.bboxes, labels=gt.labels,
                                                 scores=torch.ones(len(gt.labels)))
        metric.process(batch, [s.to_dict() for s in batch['data_samples']])
    assert metric.evaluate(2)['openimages/mAP'] == pytest.approx(1.0)
