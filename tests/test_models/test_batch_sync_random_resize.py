"""BatchSyncRandomResize: every ``interval`` iterations a new batch size is drawn (a multiple
of ``size_divisor`` within the range, the aspect ratio kept) and the next batches, their
boxes and shapes are resized to it; through DetDataPreprocessor in training only."""
import random

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures import DetDataSample


def _samples(n=2, h=64, w=96):
    out = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w),
                                        batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 16., 40., 48.]]),
                                      labels=torch.tensor([0]))
        out.append(s)
    return out


def test_size_changes_every_interval_and_boxes_follow():
    random.seed(0)
    hub = MessageHub.get_instance('bsrr_test')
    aug = MODELS.build(dict(type='BatchSyncRandomResize', random_size_range=(32, 128),
                            interval=2, size_divisor=32))
    sizes = []
    for it in range(6):
        hub.update_info('iter', it)
        out, samples = aug(torch.rand(2, 3, 64, 96), _samples())
        sizes.append(tuple(out.shape[-2:]))
        h, w = sizes[-1]
        sy, sx = h / 64, w / 96
        for s in samples:
            assert s.batch_input_shape == (h, w)
            assert s.img_shape == (int(64 * sy), int(96 * sx)) == s.pad_shape
            assert torch.allclose(s.gt_instances.bboxes,
                                  torch.tensor([[8. * sx, 16. * sy, 40. * sx, 48. * sy]]))
    # iterations 0 and 1 keep the input size; the size drawn after iteration 1 (iter + 1
    # divisible by 2) holds for 2 and 3, the next for 4 and 5
    assert sizes[0] == sizes[1] == (64, 96)
    assert sizes[2] == sizes[3] and sizes[4] == sizes[5]
    for h, w in sizes[2:]:
        assert h % 32 == 0 and w % 32 == 0 and 32 <= h <= 128
        assert w == 32 * int(1.5 * h // 32)  # the 3:2 aspect ratio of the input


def test_draws_cover_the_range():
    random.seed(1)
    aug = MODELS.build(dict(type='BatchSyncRandomResize', random_size_range=(32, 96),
                            interval=1, size_divisor=32))
    seen = set()
    for _ in range(40):
        out, _ = aug(torch.rand(1, 3, 32, 32), _samples(1, 32, 32))
        seen.add(tuple(out.shape[-2:]))
    assert seen == {(32, 32), (64, 64), (96, 96)}


def test_runs_in_the_data_preprocessor_only_when_training():
    pre = MODELS.build(dict(type='DetDataPreprocessor', pad_size_divisor=32, batch_augments=[
        dict(type='BatchSyncRandomResize', random_size_range=(128, 128), interval=1)]))
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
                data_samples=_samples(1, 64, 64))
    assert pre(dict(data), training=False)['inputs'].shape[-2:] == (64, 64)
    pre(dict(data), training=True)  # draws 128 for the next batch
    out = pre(dict(inputs=data['inputs'], data_samples=_samples(1, 64, 64)), training=True)
    assert out['inputs'].shape[-2:] == (128, 128)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='random_size_range'):
        MODELS.build(dict(type='BatchSyncRandomResize', random_size_range=(800, 480)))
    with pytest.raises(ValueError, match='interval'):
        MODELS.build(dict(type='BatchSyncRandomResize', random_size_range=(480, 800),
                          interval=0))
