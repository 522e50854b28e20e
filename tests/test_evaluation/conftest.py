"""Shared helpers: a log file to read what the metrics logged, and a hand-computed VOC case."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.logging import MMLogger

_ids = itertools.count()


@pytest.fixture
def read_log(tmp_path):
    """Make a fresh MMLogger the current one (metrics log to it); call to read its file."""
    log_file = tmp_path / 'metric.log'
    logger = MMLogger.get_instance(f'test_evaluation_{next(_ids)}', log_file=str(log_file))

    def read() -> str:
        for handler in logger.handlers:
            handler.flush()
        return log_file.read_text()

    return read


@pytest.fixture
def voc_case():
    """A 2-image, 2-class VOC case whose APs are known by hand (legacy +1 widths).

    Class 0 ('cat'): 2 gts + 1 difficult. Detections by score: TP, one on the difficult box,
    FP, TP -> counted TP, -, FP, TP: recall .5 .5 .5 1, precision 1 1 .5 2/3.
      11points: recall >= 0..0.5 -> best precision 1 (6 points), >= 0.6..1 -> 2/3 (5 points)
      area: .5 * 1 + .5 * 2/3
    Class 1 ('dog'): 1 gt; an FP (IoU 0.4) scores above the TP: recall 0 1, precision 0 .5
      -> AP .5 in both modes.

    Returns:
        Namespace of ``dets`` (per image, per class (k, 5)), ``anns`` (per image dict) and
        ``ap`` (the APs by hand: ``cat_11points``, ``cat_area``, ``dog``).
    """
    g1, g2, g3 = [10, 10, 49, 49], [60, 60, 99, 99], [120, 10, 159, 49]
    anns = [
        dict(bboxes=np.array([g1, [10, 60, 49, 99]], np.float32), labels=np.array([0, 1]),
             bboxes_ignore=np.array([g3], np.float32), labels_ignore=np.array([0])),
        dict(bboxes=np.array([g2], np.float32), labels=np.array([0]),
             bboxes_ignore=np.zeros((0, 4), np.float32), labels_ignore=np.zeros(0, int)),
    ]
    dets = [
        [np.array([g1 + [0.9], g3 + [0.8], [200, 200, 239, 239, 0.7]], np.float32),
         # IoU with the dog gt: 16*40 / (40*40) = 0.4 with the +1 widths
         np.array([[10, 60, 25, 99, 0.95], [10, 60, 49, 99, 0.5]], np.float32)],
        [np.array([g2 + [0.6]], np.float32), np.zeros((0, 5), np.float32)],
    ]
    ap = dict(cat_11points=(6 + 5 * 2 / 3) / 11, cat_area=0.5 + 0.5 * 2 / 3, dog=0.5)
    return SimpleNamespace(dets=dets, anns=anns, ap=ap)
