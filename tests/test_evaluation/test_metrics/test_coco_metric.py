"""CocoMetric gives exactly pycocotools' COCOeval numbers on a hand-built COCO set.

The set: 3 images (ids 1, 2, 5), categories listed out of order with ids 3/7/11, small,
medium and large rectangles (polygons, one compressed RLE), a crowd region; detections
jittered from the gts plus false positives and wrong classes, written once as COCO results
(what COCOeval reads) and once as data samples (what the metric reads).
"""
import copy
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmft.evaluation.metrics.coco_metric import AP_ITEMS, stat_names
from mmft.registry import METRICS
from mmft.structures import DetDataSample

CLASSES = ('person', 'car', 'cat')  # category ids 3, 7, 11
CAT_ID = dict(person=3, car=7, cat=11)
H, W = 120, 160
ALL_STATS = stat_names((100, 300, 1000))


def _rect_polygon(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _rect_mask(x1, y1, x2, y2):
    mask = np.zeros((H, W), dtype=bool)
    mask[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = True
    return mask


def _rect_rle(x1, y1, x2, y2):
    rle = mask_utils.encode(np.asfortranarray(_rect_mask(x1, y1, x2, y2).astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    return rle


@pytest.fixture
def coco_set(tmp_path):
    """Returns (ann_file, bbox results, segm results) of the set described above."""
    rng = np.random.RandomState(0)
    images = [dict(id=i, width=W, height=H, file_name=f'{i}.jpg') for i in (1, 2, 5)]
    gts = [  # image, class, x, y, w, h: small (< 32**2), medium, large (> 96**2) objects
        (1, 'person', 4, 4, 20, 24), (1, 'car', 30, 10, 40, 50), (1, 'cat', 80, 20, 60, 90),
        (2, 'car', 10, 10, 100, 100), (2, 'person', 120, 5, 12, 30), (2, 'person', 130, 60, 25, 40),
        (5, 'cat', 5, 5, 30, 30), (5, 'car', 50, 40, 45, 60), (5, 'person', 110, 80, 10, 10),
    ]
    anns = []
    for img, name, x, y, w, h in gts:
        seg = _rect_polygon(x, y, w, h)
        if len(anns) == 4:  # one gt given as compressed RLE
            seg = _rect_rle(x, y, x + w, y + h)
        anns.append(dict(id=len(anns) + 1, image_id=img, category_id=CAT_ID[name],
                         bbox=[x, y, w, h], segmentation=seg, iscrowd=0))
    anns.append(dict(id=len(anns) + 1, image_id=2, category_id=CAT_ID['person'],
                     bbox=[60, 70, 50, 45], segmentation=_rect_rle(60, 70, 110, 115), iscrowd=1))
    categories = [dict(id=11, name='cat'), dict(id=3, name='person'), dict(id=7, name='car')]
    coco = dict(images=images, annotations=anns, categories=categories)
    gt_api = COCO()
    gt_api.dataset = copy.deepcopy(coco)
    gt_api.createIndex()
    for ann in anns:  # areas as in real COCO files: the mask's pixel count
        ann['area'] = float(mask_utils.area(gt_api.annToRLE(ann)))
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(coco))

    bbox_res, segm_res = [], []
    for img, name, x, y, w, h in gts:
        for _ in range(2):  # two jittered detections per gt, a wrong class now and then
            dx1, dy1, dx2, dy2 = rng.randint(-8, 9, size=4) * 0.5
            x1, y1 = max(x + dx1, 0.), max(y + dy1, 0.)
            x2, y2 = min(x + w + dx2, W), min(y + h + dy2, H)
            label = name if rng.rand() > 0.2 else CLASSES[rng.randint(3)]
            bbox_res.append(dict(image_id=img, category_id=CAT_ID[label],
                                 bbox=[x1, y1, x2 - x1, y2 - y1],
                                 score=float(np.float32(rng.rand()))))
    for img in (1, 2, 5):  # false positives
        for _ in range(3):
            x1, y1 = rng.randint(0, W - 30), rng.randint(0, H - 30)
            w, h = rng.randint(4, 30, size=2)
            bbox_res.append(dict(image_id=img, category_id=CAT_ID[CLASSES[rng.randint(3)]],
                                 bbox=[float(x1), float(y1), float(w), float(h)],
                                 score=float(np.float32(rng.rand()))))
    for det in bbox_res:
        x, y, w, h = det['bbox']
        segm_res.append(dict(image_id=det['image_id'], category_id=det['category_id'],
                             segmentation=_rect_rle(x, y, x + w, y + h), score=det['score']))
    return str(ann_file), bbox_res, segm_res


def samples_from(bbox_res, segm_res=None, gt_coco=None):
    """DetDataSamples (pred_instances in xyxy, labels by class order) of COCO results;
    with ``gt_coco``, also gt_instances / ignored_instances (crowd) with bitmap masks."""
    id_to_label = {CAT_ID[n]: i for i, n in enumerate(CLASSES)}
    samples = []
    for img in (1, 2, 5):
        idx = [i for i, d in enumerate(bbox_res) if d['image_id'] == img]
        boxes = [[d['bbox'][0], d['bbox'][1], d['bbox'][0] + d['bbox'][2],
                  d['bbox'][1] + d['bbox'][3]] for d in (bbox_res[i] for i in idx)]
        sample = DetDataSample(metainfo=dict(img_id=img, ori_shape=(H, W)))
        labels = [id_to_label[bbox_res[i]['category_id']] for i in idx]
        pred = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                            scores=torch.tensor([bbox_res[i]['score'] for i in idx]),
                            labels=torch.tensor(labels))
        if segm_res is not None:
            pred.masks = torch.from_numpy(np.stack(
                [mask_utils.decode(segm_res[i]['segmentation']) for i in idx]).astype(bool))
        sample.pred_instances = pred
        if gt_coco is not None:
            for field, crowd in (('gt_instances', 0), ('ignored_instances', 1)):
                anns = [a for a in gt_coco.imgToAnns[img] if a['iscrowd'] == crowd]
                xyxy = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                         a['bbox'][1] + a['bbox'][3]] for a in anns]
                sample.set_field(InstanceData(
                    bboxes=torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4),
                    labels=torch.tensor([id_to_label[a['category_id']] for a in anns],
                                        dtype=torch.long),
                    masks=np.array([gt_coco.annToMask(a) for a in anns]).reshape(-1, H, W)),
                    field)
        samples.append(sample)
    return samples


def run_metric(samples, **cfg):
    metric = METRICS.build(dict(type='CocoMetric', **cfg))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [s.to_dict() for s in samples])
    return metric.compute_metrics(metric.results)


def cocoeval_stats(ann_file, dets, iou_type, max_dets=None, use_cats=1):
    """COCOeval run directly, as a user would."""
    gt = COCO(ann_file)
    coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), iou_type)
    if max_dets is not None:
        coco_eval.params.maxDets = max_dets
    coco_eval.params.useCats = use_cats
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval


def test_bbox_and_segm_equal_cocoeval_exactly(coco_set):
    ann_file, bbox_res, segm_res = coco_set
    results = run_metric(samples_from(bbox_res, segm_res), ann_file=ann_file,
                         metric=['bbox', 'segm'], metric_items=ALL_STATS)
    for iou_type, dets in (('bbox', bbox_res), ('segm', segm_res)):
        # the same parameters as the metric (maxDets = proposal_nums): all 12 stats
        stats = cocoeval_stats(ann_file, dets, iou_type, max_dets=[100, 300, 1000]).stats
        assert [results[f'{iou_type}_{n}'] for n in ALL_STATS] == stats.tolist()
        # COCOeval's defaults: the 6 AP stats (< 100 detections per image)
        default = cocoeval_stats(ann_file, dets, iou_type).stats
        assert [results[f'{iou_type}_{n}'] for n in AP_ITEMS] == default[:6].tolist()
    # a non-trivial set: neither perfect nor empty, and small/medium/large all populated
    assert 0.2 < results['bbox_mAP'] < 0.9 and 0.2 < results['segm_mAP'] < 0.9
    assert all(results[f'bbox_mAP_{s}'] >= 0 for s in 'sml')


def test_default_keys_and_evaluator_prefix(coco_set):
    ann_file, bbox_res, _ = coco_set
    evaluator = Evaluator(METRICS.build(dict(type='CocoMetric', ann_file=ann_file)))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=samples_from(bbox_res))
    results = evaluator.evaluate(3)
    assert list(results) == [f'coco/bbox_{n}' for n in AP_ITEMS]
    assert results['coco/bbox_mAP'] == cocoeval_stats(ann_file, bbox_res, 'bbox').stats[0]


def test_classwise_table_logged(coco_set, read_log):
    ann_file, bbox_res, _ = coco_set
    results = run_metric(samples_from(bbox_res), ann_file=ann_file, classwise=True)
    log = read_log()
    assert '| category | mAP' in log and 'mAP_50 | mAP_75 | mAP_s | mAP_m | mAP_l |' in log
    precision = cocoeval_stats(ann_file, bbox_res, 'bbox').eval['precision']
    for k, name in enumerate(CLASSES):  # catIds 3, 7, 11: the class order
        expected = precision[:, :, k, 0, -1]
        assert results[f'bbox_{name}_precision'] == pytest.approx(expected[expected > -1].mean())
        assert f'| {name} ' in log
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log  # COCOeval summary
    assert 'bbox_mAP_copypaste' in log


def test_format_only_writes_json(coco_set, tmp_path):
    ann_file, bbox_res, segm_res = coco_set
    prefix = tmp_path / 'out' / 'preds'
    results = run_metric(samples_from(bbox_res, segm_res), ann_file=ann_file,
                         metric=['bbox', 'segm'], format_only=True, outfile_prefix=str(prefix))
    assert results == {}
    written = json.loads((tmp_path / 'out' / 'preds.bbox.json').read_text())
    key = lambda d: (d['image_id'], d['score'])  # noqa: E731
    assert sorted(written, key=key) == sorted(bbox_res, key=key)  # ids mapped by name, xywh
    segm = json.loads((tmp_path / 'out' / 'preds.segm.json').read_text())
    assert sorted(d['segmentation']['counts'] for d in segm) == \
        sorted(d['segmentation']['counts'] for d in segm_res)
    with pytest.raises(ValueError, match='outfile_prefix'):
        METRICS.build(dict(type='CocoMetric', format_only=True))


def test_gt_from_data_samples_equals_ann_file(coco_set):
    """Without ann_file the gt comes from gt_instances (+ crowd as ignored_instances)."""
    ann_file, bbox_res, segm_res = coco_set
    with_file = run_metric(samples_from(bbox_res, segm_res), ann_file=ann_file,
                           metric=['bbox', 'segm'], metric_items=ALL_STATS)
    without = run_metric(samples_from(bbox_res, segm_res, COCO(ann_file)),
                         metric=['bbox', 'segm'], metric_items=ALL_STATS)
    assert without == pytest.approx(with_file, rel=1e-12)


def test_proposal_ar_equals_cocoeval_class_agnostic(coco_set):
    ann_file, bbox_res, _ = coco_set
    results = run_metric(samples_from(bbox_res), ann_file=ann_file, metric='proposal',
                         proposal_nums=(1, 10, 100))
    stats = cocoeval_stats(ann_file, bbox_res, 'bbox', max_dets=[1, 10, 100], use_cats=0).stats
    assert list(results) == ['AR@1', 'AR@10', 'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100']
    assert list(results.values()) == stats[6:].tolist()


def test_proposal_fast_perfect_proposals(coco_set):
    ann_file, _, _ = coco_set
    gt = COCO(ann_file)
    perfect = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'],
                    score=1.) for a in gt.dataset['annotations'] if not a['iscrowd']]
    results = run_metric(samples_from(perfect), ann_file=ann_file, metric='proposal_fast',
                         proposal_nums=(1, 100))
    assert results['AR@100'] == pytest.approx(1.)
    assert results['AR@1'] == pytest.approx(3 / 9)  # one of the three gts of each image


def test_no_detections_scores_zero(coco_set):
    ann_file, _, _ = coco_set
    empty = [DetDataSample(metainfo=dict(img_id=i, ori_shape=(H, W)),
                           pred_instances=InstanceData(bboxes=torch.zeros(0, 4),
                                                       scores=torch.zeros(0),
                                                       labels=torch.zeros(0, dtype=torch.long)))
             for i in (1, 2, 5)]
    results = run_metric(empty, ann_file=ann_file)
    assert results['bbox_mAP'] == 0.


def test_class_names_must_be_in_ann_file(coco_set):
    ann_file, bbox_res, _ = coco_set
    metric = METRICS.build(dict(type='CocoMetric', ann_file=ann_file))
    metric.dataset_meta = dict(classes=('person', 'car', 'dog'))
    metric.process({}, [s.to_dict() for s in samples_from(bbox_res)])
    with pytest.raises(ValueError, match=r"missing \['dog'\]"):
        metric.compute_metrics(metric.results)
