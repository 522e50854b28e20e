"""CityScapesMetric runs cityscapesscripts' official evaluation on a tiny fake gtFine tree."""
import sys

import cityscapesscripts  # noqa: F401  the cityscapes extra: missing fails, never skips
import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmft.registry import METRICS
from mmft.structures import DetDataSample

CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
H, W = 64, 128
# frame -> [(label id, instance, y1, y2, x1, x2)]: cars (26) and persons (24), >= 100 pixels
FRAMES = {
    'frankfurt_000000_000294': [(26, 0, 10, 40, 5, 45), (24, 0, 20, 60, 60, 75)],
    'frankfurt_000000_000576': [(26, 0, 5, 35, 10, 60), (26, 1, 30, 60, 70, 120)],
}


@pytest.fixture
def cityscapes_tree(tmp_path):
    """gtFine/val/frankfurt/*_gtFine_instanceIds.png (uint16, label id * 1000 + instance;
    road (7) around, an unlabeled (0, void) strip); returns (root, {frame: [(label, mask)]})."""
    instances = {}
    for frame, objects in FRAMES.items():
        ids = np.full((H, W), 7, dtype=np.uint16)
        ids[:, :3] = 0
        instances[frame] = []
        for label_id, k, y1, y2, x1, x2 in objects:
            ids[y1:y2, x1:x2] = label_id * 1000 + k
        for label_id, k, *_ in objects:  # masks after all painting: overlaps are resolved
            instances[frame].append((label_id, ids == label_id * 1000 + k))
        gt_dir = tmp_path / 'gtFine' / 'val' / 'frankfurt'
        gt_dir.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(gt_dir / f'{frame}_gtFine_instanceIds.png'), ids)
    return tmp_path, instances


def samples(root, instances, edit=lambda frame, i, mask: mask):
    """One DetDataSample per frame predicting every gt instance (mask edited by ``edit``)."""
    label_of = {24: CLASSES.index('person'), 26: CLASSES.index('car')}
    out = []
    for frame, objs in instances.items():
        img_path = root / 'leftImg8bit' / 'val' / 'frankfurt' / f'{frame}_leftImg8bit.png'
        masks = np.stack([edit(frame, i, m.copy()) for i, (_, m) in enumerate(objs)])
        sample = DetDataSample(metainfo=dict(img_path=str(img_path), ori_shape=(H, W)))
        sample.pred_instances = InstanceData(
            masks=torch.from_numpy(masks), scores=torch.linspace(0.9, 0.8, len(objs)),
            labels=torch.tensor([label_of[lid] for lid, _ in objs]),
            bboxes=torch.zeros(len(objs), 4))
        out.append(sample)
    return out


def evaluate(root, data_samples, **cfg):
    cfg = dict(type='CityScapesMetric', outfile_prefix=str(root / 'eval'),
               seg_prefix=str(root / 'gtFine' / 'val'), **cfg)
    evaluator = Evaluator(METRICS.build(cfg))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=data_samples)
    return evaluator.evaluate(len(data_samples))


def test_perfect_predictions_score_one(cityscapes_tree, read_log, monkeypatch):
    root, instances = cityscapes_tree
    cwd = root / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # cityscapesscripts alone would write matches.json here
    results = evaluate(root, samples(root, instances))
    assert results == {'cityscapes/mAP': 1.0, 'cityscapes/AP@50': 1.0}
    assert list(cwd.iterdir()) == []
    assert not (root / 'eval' / 'results').exists()  # keep_results=False
    log = read_log()
    assert '| car ' in log and '| person ' in log and '| average ' in log


def test_worse_predictions_score_less(cityscapes_tree):
    root, instances = cityscapes_tree

    def shrink_first_car(frame, i, mask):  # IoU 0.6 with its gt: matched below 0.6 only
        if frame == 'frankfurt_000000_000294' and i == 0:
            mask[:, 29:] = False  # keep 24 of 40 columns
        return mask

    results = evaluate(root, samples(root, instances, shrink_first_car))
    assert results['cityscapes/AP@50'] == 1.0
    assert results['cityscapes/mAP'] < 1.0

    def miss_second_frame(frame, i, mask):
        return mask * (frame != 'frankfurt_000000_000576')

    results = evaluate(root, samples(root, instances, miss_second_frame))
    assert results['cityscapes/AP@50'] < 1.0


def test_format_only_keeps_the_official_layout(cityscapes_tree):
    root, instances = cityscapes_tree
    assert evaluate(root, samples(root, instances), format_only=True) == {}
    out = root / 'eval' / 'results'
    lines = (out / 'frankfurt_000000_000294_leftImg8bit_pred.txt').read_text().splitlines()
    png, label_id, score = lines[0].split(' ')
    assert png == 'frankfurt_000000_000294_leftImg8bit_0_car.png' and label_id == '26'
    assert float(score) == pytest.approx(0.9)
    mask = cv2.imread(str(out / png), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert (mask > 0).sum() == instances['frankfurt_000000_000294'][0][1].sum()


def test_errors_name_the_fix(cityscapes_tree):
    root, instances = cityscapes_tree
    with pytest.raises(ValueError, match='seg_prefix'):
        METRICS.build(dict(type='CityScapesMetric', outfile_prefix=str(root / 'eval')))
    metric = METRICS.build(dict(type='CityScapesMetric', outfile_prefix=str(root / 'eval'),
                                seg_prefix=str(root / 'nowhere')))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [s.to_dict() for s in samples(root, instances)])
    with pytest.raises(FileNotFoundError, match='gtFine/<split>'):
        metric.compute_metrics(metric.results)
    metric.dataset_meta = dict(classes=('pedestrian', ) + CLASSES[1:])
    with pytest.raises(ValueError, match="'pedestrian' is not a Cityscapes instance label"):
        metric.process({}, [s.to_dict() for s in samples(root, instances)])


def test_missing_cityscapesscripts_names_the_extra(tmp_path, monkeypatch):
    """Without the optional package the metric cannot be built, and says how to get it."""
    for name in ('cityscapesscripts', 'cityscapesscripts.evaluation',
                 'cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling',
                 'cityscapesscripts.helpers', 'cityscapesscripts.helpers.labels'):
        monkeypatch.setitem(sys.modules, name, None)  # `import` raises ImportError
    with pytest.raises(ImportError, match=r"install mmft's cityscapes extra, "
                                          r'pip install -e \.\[cityscapes\]'):
        METRICS.build(dict(type='CityScapesMetric', outfile_prefix=str(tmp_path / 'eval'),
                           seg_prefix=str(tmp_path)))
