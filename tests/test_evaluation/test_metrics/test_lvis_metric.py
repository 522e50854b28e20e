"""LVISMetric against the lvis package's own evaluator on a tiny federated LVIS set."""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

pytest.importorskip('lvis')
from lvis import LVIS, LVISEval, LVISResults  # noqa: E402

from mmft.evaluation.metrics.lvis_metric import lvis_numpy_compat  # noqa: E402
from mmft.registry import METRICS  # noqa: E402
from tests.test_datasets.lvis_tree import CLASSES, CATEGORIES, H, W, make_lvis  # noqa: E402

CAT_ID = {n: i for n, i, _ in CATEGORIES}
# (img_id, class, box, score): hits, a near miss, a false positive on a verified-negative
# category (counts) and one on a category neither verified nor annotated in image 1 (ignored)
PREDS = [(1, 'apple', [5, 4, 20, 21], 0.9), (1, 'banana', [30, 8, 58, 40], 0.8),
         (1, 'cat', [0, 0, 10, 10], 0.7), (2, 'apple', [10, 10, 40, 30], 0.6),
         (2, 'apple', [0, 30, 20, 47], 0.95), (2, 'cat', [41, 22, 60, 44], 0.5),
         (3, 'cat', [5, 5, 30, 30], 0.4), (3, 'banana', [1, 1, 9, 9], 0.3)]


def _mask(box):
    m = np.zeros((H, W), bool)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = True
    return m


def _samples():
    samples = []
    for img_id in (1, 2, 3):
        rows = [p for p in PREDS if p[0] == img_id]
        samples.append(dict(img_id=img_id, ori_shape=(H, W), pred_instances=dict(
            bboxes=torch.tensor([r[2] for r in rows], dtype=torch.float32),
            scores=torch.tensor([r[3] for r in rows]),
            labels=torch.tensor([CLASSES.index(r[1]) for r in rows]),
            masks=torch.from_numpy(np.stack([_mask(r[2]) for r in rows])))))
    return samples


def _reference(ann_file, iou_type):
    dets = []
    for img_id, name, (x1, y1, x2, y2), score in PREDS:
        det = dict(image_id=img_id, category_id=CAT_ID[name], score=score)
        if iou_type == 'bbox':
            det['bbox'] = [x1, y1, x2 - x1, y2 - y1]
        else:
            rle = mask_utils.encode(np.asfortranarray(_mask((x1, y1, x2, y2)).astype(np.uint8)))
            rle['counts'] = rle['counts'].decode()
            det['segmentation'] = rle
        dets.append(det)
    gt = LVIS(ann_file)
    ev = LVISEval(gt, LVISResults(gt, dets), iou_type)
    with lvis_numpy_compat():  # lvis 0.5.3 and NumPy 2
        ev.run()
    return ev.get_results()


def test_lvis_metric_equals_lvis_eval(tmp_path):
    root, ann = make_lvis(tmp_path)
    ann_file = f'{root}/{ann}'
    metric = METRICS.build(dict(type='LVISMetric', ann_file=ann_file, metric=['bbox', 'segm'],
                                classwise=True))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, _samples())
    out = metric.evaluate(3)
    for iou_type in ('bbox', 'segm'):
        ref = _reference(ann_file, iou_type)
        for key in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'):
            assert out[f'lvis/{iou_type}_{key}'] == pytest.approx(float(ref[key]), nan_ok=True)
    assert 0 < out['lvis/bbox_AP'] < 1
    assert 'lvis/bbox_apple_precision' in out


def test_federated_rules_matter(tmp_path):
    """A false 'cat' in image 1 (verified negative there) lowers APr; one in image 2's
    unverified categories would not: the metric follows LVIS's rules, not COCO's."""
    root, ann = make_lvis(tmp_path)
    metric = METRICS.build(dict(type='LVISMetric', ann_file=f'{root}/{ann}',
                                metric_items=['APr']))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = _samples()
    metric.process({}, samples)
    with_neg = metric.evaluate(3)['lvis/bbox_APr']
    keep = samples[0]['pred_instances']
    drop = keep['labels'] != CLASSES.index('cat')
    samples[0]['pred_instances'] = {k: v[drop] for k, v in keep.items()}
    metric.process({}, samples)
    without = metric.evaluate(3)['lvis/bbox_APr']
    assert without > with_neg


def test_lvis_metric_errors(tmp_path):
    with pytest.raises(ValueError, match='needs ann_file'):
        METRICS.build(dict(type='LVISMetric'))
    root, ann = make_lvis(tmp_path)
    metric = METRICS.build(dict(type='LVISMetric', ann_file=f'{root}/{ann}'))
    metric.dataset_meta = dict(classes=('apple', 'dog'))
    metric.process({}, _samples()[:1])
    with pytest.raises(ValueError, match=r"missing \['dog'\]"):
        metric.evaluate(1)
    with pytest.raises(KeyError, match='not LVIS results'):
        METRICS.build(dict(type='LVISMetric', ann_file=f'{root}/{ann}', metric_items=['mAP']))


def test_missing_lvis_package_names_the_extra(monkeypatch):
    import builtins
    from mmft.evaluation.metrics import lvis_metric
    real = builtins.__import__

    def no_lvis(name, *args, **kwargs):
        if name == 'lvis':
            raise ImportError('No module named lvis')
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_lvis)
    with pytest.raises(ImportError, match='requirements/lvis.txt'):
        lvis_metric.import_lvis()


def test_lvis_fixed_ap_equals_lvis_eval_without_per_image_limit(tmp_path):
    root, ann = make_lvis(tmp_path)
    ann_file = f'{root}/{ann}'
    metric = METRICS.build(dict(type='LVISFixedAPMetric', ann_file=ann_file, topk=2))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = _samples()
    metric.process({}, samples[:2])  # two batches: the per-class top-2 is kept across them
    metric.process({}, samples[2:])
    out = metric.evaluate(3)
    # independent: keep each category's 2 best detections, then LVISEval with no limit
    kept = []
    for name in CLASSES:
        rows = sorted((p for p in PREDS if p[1] == name), key=lambda p: -p[3])[:2]
        kept += [dict(image_id=i, category_id=CAT_ID[n], score=s,
                      bbox=[x1, y1, x2 - x1, y2 - y1]) for i, n, (x1, y1, x2, y2), s in rows]
    gt = LVIS(ann_file)
    ev = LVISEval(gt, LVISResults(gt, kept, max_dets=-1), 'bbox')
    ev.params.max_dets = -1
    with lvis_numpy_compat():
        ev.run()
    ref = ev.get_results()
    for key in ('AP', 'AP50', 'APr', 'APc', 'APf'):
        assert out[f'lvis_fixed_ap/{key}'] == pytest.approx(float(ref[key]), nan_ok=True)
    # topk matters: apple's third detection (0.6, a hit in image 2) was cut
    wide = METRICS.build(dict(type='LVISFixedAPMetric', ann_file=ann_file, topk=10))
    wide.dataset_meta = dict(classes=CLASSES)
    wide.process({}, samples)
    assert wide.evaluate(3)['lvis_fixed_ap/APf'] > out['lvis_fixed_ap/APf']
