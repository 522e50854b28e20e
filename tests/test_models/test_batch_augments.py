"""BatchFixedSizePad: pads images, masks and semantic maps of a batch to a fixed size, through
DetDataPreprocessor's batch_augments in training only."""
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmft.registry import MODELS
from mmft.structures import DetDataSample
from mmft.structures.masks import BitmapMasks, PolygonMasks


def _samples(shapes, poly=False):
    samples = []
    for h, w in shapes:
        s = DetDataSample(metainfo=dict(img_shape=(h, w)))
        if poly:
            masks = PolygonMasks([[torch.tensor([1., 1., 5., 1., 5., 6., 1., 6.]).numpy()]], h, w)
        else:
            m = torch.zeros(1, h, w, dtype=torch.uint8)
            m[0, 1:6, 1:5] = 1
            masks = BitmapMasks(m.numpy(), h, w)
        s.gt_instances = InstanceData(bboxes=torch.tensor([[1., 1., 5., 6.]]),
                                      labels=torch.tensor([0]), masks=masks)
        s.gt_sem_seg = PixelData(sem_seg=torch.zeros(1, h, w, dtype=torch.uint8))
        samples.append(s)
    return samples


@pytest.mark.parametrize('poly', [False, True])
def test_batch_fixed_size_pad_pads_everything(poly):
    pad = MODELS.build(dict(type='BatchFixedSizePad', size=(48, 64), img_pad_value=-1,
                            pad_mask=True, pad_seg=True, seg_pad_value=255))
    inputs = torch.rand(2, 3, 30, 40)
    out, samples = pad(inputs, _samples([(30, 40), (20, 40)], poly))
    assert out.shape == (2, 3, 48, 64)
    torch.testing.assert_close(out[..., :30, :40], inputs)
    assert (out[..., 30:, :] == -1).all() and (out[..., :, 40:] == -1).all()
    for s in samples:
        assert s.batch_input_shape == (48, 64) == s.pad_shape
        masks = s.gt_instances.masks
        assert (masks.height, masks.width) == (48, 64)
        torch.testing.assert_close(masks.get_bboxes(), torch.tensor([[1., 1., 5., 6.]]))
        seg = s.gt_sem_seg.sem_seg
        assert seg.shape == (1, 48, 64) and (seg[:, 30:] == 255).all()
        assert s.gt_instances.bboxes.tolist() == [[1., 1., 5., 6.]]  # boxes do not move


def test_batch_fixed_size_pad_never_crops():
    pad = MODELS.build(dict(type='BatchFixedSizePad', size=(32, 32)))
    big = torch.rand(1, 3, 40, 40)
    assert pad(big, None)[0] is big
    out, samples = pad(torch.rand(1, 3, 40, 20), _samples([(40, 20)]))
    assert out.shape == (1, 3, 40, 32) and samples[0].batch_input_shape == (40, 32)
    with pytest.raises(ValueError, match=r'size=.*\(h, w\)'):
        MODELS.build(dict(type='BatchFixedSizePad', size=32))


def test_through_data_preprocessor_training_only():
    pre = MODELS.build(dict(type='DetDataPreprocessor', pad_size_divisor=8, pad_mask=True,
                            batch_augments=[dict(type='BatchFixedSizePad', size=(64, 64),
                                                 pad_mask=True)]))
    data = dict(inputs=[torch.randint(0, 255, (3, 30, 40), dtype=torch.uint8)],
                data_samples=_samples([(30, 40)]))
    out = pre(dict(data, data_samples=_samples([(30, 40)])), training=True)
    assert out['inputs'].shape == (1, 3, 64, 64)
    assert out['data_samples'][0].gt_instances.masks.height == 64
    test = pre(data, training=False)
    assert test['inputs'].shape == (1, 3, 32, 40)
