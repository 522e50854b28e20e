"""Fixtures of tests/test_finetune: a small model with MMDetection's head layout, for tests of mmft/finetune/.

It has the parameter names and row layouts that the fine-tuning code cares
about (``backbone.*`` with BatchNorm, ``roi_head.bbox_head.fc_cls`` with
``n + 1`` rows, ``fc_reg`` with ``4n``, ``roi_head.mask_head.conv_logits`` with
``n`` channels) at a size that builds in milliseconds.
"""
import pytest
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, num_classes: int, **layers: nn.Module) -> None:
        super().__init__()
        self.num_classes = num_classes
        for name, layer in layers.items():
            self.add_module(name, layer)


def small_detector(num_classes: int, width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Module()
    model.backbone = nn.Sequential()
    model.backbone.add_module('conv1', nn.Conv2d(3, width, 3, bias=False))
    model.backbone.add_module('bn1', nn.BatchNorm2d(width))
    model.backbone.add_module('layer1', nn.Conv2d(width, width, 3))
    model.neck = nn.Conv2d(width, width, 1)
    model.rpn_head = Head(1, rpn_cls=nn.Conv2d(width, 3, 1))
    model.roi_head = nn.Module()
    model.roi_head.bbox_head = Head(num_classes,
                                    shared_fcs=nn.Linear(width, width),
                                    fc_cls=nn.Linear(width, num_classes + 1),
                                    fc_reg=nn.Linear(width, 4 * num_classes))
    model.roi_head.mask_head = Head(num_classes, conv_logits=nn.Conv2d(width, num_classes, 1))
    for p in model.parameters():  # random, so that copies are distinguishable
        nn.init.normal_(p)
    return model


@pytest.fixture
def make_detector():
    """``make_detector(num_classes, width=8, seed=0)``: see :func:`small_detector`."""
    return small_detector
