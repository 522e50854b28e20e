"""PackDetInputs: tensor types, BGR kept, ignored instances split off, meta keys checked."""
import numpy as np
import pytest
import torch

from mmft.datasets.transforms import PackDetInputs
from mmft.structures import DetDataSample
from mmft.structures.masks import BitmapMasks

from tests.test_datasets.test_transforms.transform_samples import BOXES, make_results


def _meta(results):
    return dict(results, img_id=3, img_path='a.png', scale_factor=(1.0, 1.0), flip=False,
                flip_direction=None)


def test_packs_image_and_splits_ignored_instances():
    results = _meta(make_results('bitmap'))
    out = PackDetInputs()(results)
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 48, 64)
    # channel order unchanged (BGR): the data preprocessor converts
    assert torch.equal(inputs[:, 5, 7], torch.from_numpy(results['img'][5, 7]))
    assert isinstance(sample, DetDataSample)
    gt, ignored = sample.gt_instances, sample.ignored_instances
    assert gt.bboxes.dtype == torch.float32 and gt.labels.dtype == torch.int64
    assert gt.bboxes.tolist() == BOXES[:2].tolist() and gt.labels.tolist() == [0, 1]
    assert ignored.bboxes.tolist() == BOXES[2:].tolist() and ignored.labels.tolist() == [2]
    assert isinstance(gt.masks, BitmapMasks) and len(gt.masks) == 2 and len(ignored.masks) == 1
    assert sample.metainfo == dict(img_id=3, img_path='a.png', ori_shape=(48, 64),
                                   img_shape=(48, 64), scale_factor=(1.0, 1.0), flip=False,
                                   flip_direction=None)


def test_empty_instances_grayscale_and_meta_keys():
    results = dict(img=np.zeros((8, 6), np.uint8), img_id=1, gt_bboxes=np.zeros((0, 4), np.float32),
                   gt_bboxes_labels=np.zeros(0, np.int64), gt_ignore_flags=np.zeros(0, bool))
    out = PackDetInputs(meta_keys=('img_id', ))(results)
    assert out['inputs'].shape == (1, 8, 6)
    assert out['data_samples'].gt_instances.bboxes.shape == (0, 4)
    # no Resize / RandomFlip in the pipeline: scale 1, no flip
    meta = PackDetInputs(meta_keys=('img_id', 'scale_factor', 'flip'))(results)['data_samples']
    assert meta.scale_factor == (1.0, 1.0) and meta.flip is False
    with pytest.raises(KeyError, match=r"\['img_path'\].*add the transform"):
        PackDetInputs(meta_keys=('img_id', 'img_path'))(results)
