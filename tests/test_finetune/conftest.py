"""Fixtures of tests/test_finetune: a small model with MMDetection's head layout, for tests of mmft/finetune/.

It has the parameter names and row layouts that the fine-tuning code cares
about (``backbone.*`` with BatchNorm, ``roi_head.bbox_head.fc_cls`` with
``n + 1`` rows, ``fc_reg`` with ``4n``, ``roi_head.mask_head.conv_logits`` with
``n`` channels) at a size that builds in milliseconds.
"""
import pytest
import torch
from torch import nn

from mmft.structures.class_rows import ClassRows, declare


class Head(nn.Module):
    """A head that declares its class rows as MMDetection's R-CNN heads do."""

    def __init__(self, num_classes: int, class_agnostic: bool = False,
                 **layers: nn.Module) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        for name, layer in layers.items():
            self.add_module(name, layer)

    def class_rows(self):
        if self.class_agnostic:
            return {}
        rows = {}
        n = self.num_classes
        if hasattr(self, 'fc_cls'):
            softmax = self.fc_cls.out_features == n + 1
            rows.update(declare('fc_cls', ClassRows(n, background='last' if softmax else None,
                                                    activation='softmax' if softmax
                                                    else 'sigmoid')))
        if hasattr(self, 'fc_reg'):
            rows.update(declare('fc_reg', ClassRows(n, per_class=4)))
        if hasattr(self, 'conv_logits'):
            rows.update(declare('conv_logits', ClassRows(n)))
        return rows


def small_detector(num_classes: int, width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Module()
    model.backbone = nn.Sequential()
    model.backbone.add_module('conv1', nn.Conv2d(3, width, 3, bias=False))
    model.backbone.add_module('bn1', nn.BatchNorm2d(width))
    model.backbone.add_module('layer1', nn.Conv2d(width, width, 3))
    model.neck = nn.Conv2d(width, width, 1)
    model.rpn_head = Head(1, class_agnostic=True, rpn_cls=nn.Conv2d(width, 3, 1))
    model.roi_head = nn.Module()
    model.roi_head.bbox_head = Head(num_classes,
                                    shared_fcs=nn.Linear(width, width),
                                    fc_cls=nn.Linear(width, num_classes + 1),
                                    fc_reg=nn.Linear(width, 4 * num_classes))
    model.roi_head.mask_head = Head(num_classes, conv_logits=nn.Conv2d(width, num_classes, 1))
    model.finetune_preset = 'mask_rcnn'
    for p in model.parameters():  # random, so that copies are distinguishable
        nn.init.normal_(p)
    return model


@pytest.fixture
def make_detector():
    """``make_detector(num_classes, width=8, seed=0)``: see :func:`small_detector`."""
    return small_detector
