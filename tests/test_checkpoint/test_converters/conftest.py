"""Fixtures of the converter tests: foreign checkpoints that take a while to build."""
import pytest

from tests.test_checkpoint.test_converters.foreign_checkpoints import detectron2_mask_rcnn_r50_fpn


@pytest.fixture(scope='session')
def d2_weights():
    """Detectron2's mask_rcnn_R_50_FPN weights (random), ``{name: array}``; copy before editing."""
    return detectron2_mask_rcnn_r50_fpn()
