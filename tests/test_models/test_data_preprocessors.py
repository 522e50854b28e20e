import pytest
import torch
from mmengine.structures import InstanceData

from mmft.models.data_preprocessors import DetDataPreprocessor
from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample


def _batch(shapes, with_masks=False):
    torch.manual_seed(0)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in shapes]
    samples = []
    for h, w in shapes:
        s = DetDataSample(metainfo=dict(img_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[1., 2., 5., 6.]]),
                                      labels=torch.tensor([0]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_normalise_bgr_to_rgb_and_pad():
    pre = MODELS.build(dict(type='DetDataPreprocessor', mean=[10., 20., 30.], std=[2., 4., 5.],
                            bgr_to_rgb=True, pad_size_divisor=32))
    data = _batch([(40, 50), (70, 20)])
    raw = [img.clone() for img in data['inputs']]
    out = pre(data, training=False)
    inputs = out['inputs']
    assert inputs.shape == (2, 3, 96, 64) and inputs.dtype == torch.float32
    # image 1, channel 0 after bgr->rgb is raw channel 2 (R), normalised by mean/std[0]
    expected = (raw[1][2].float() - 10.) / 2.
    torch.testing.assert_close(inputs[1, 0, :70, :20], expected)
    assert (inputs[1, :, 70:, :] == 0).all() and (inputs[1, :, :, 20:] == 0).all()
    metas = [s.metainfo for s in out['data_samples']]
    assert metas[0]['batch_input_shape'] == (96, 64) == metas[1]['batch_input_shape']
    assert metas[0]['pad_shape'] == (64, 64)
    assert metas[1]['pad_shape'] == (96, 32)
    assert metas[0]['img_shape'] == (40, 50)


def test_no_divisor_keeps_largest_size_and_pad_value():
    pre = DetDataPreprocessor(pad_value=7)
    out = pre(_batch([(10, 12), (8, 9)]))
    assert out['inputs'].shape == (2, 3, 10, 12)
    assert (out['inputs'][1, :, 8:, :] == 7).all()
    assert out['data_samples'][1].pad_shape == (8, 9)


def test_inputs_without_samples():
    out = DetDataPreprocessor(pad_size_divisor=8)(dict(inputs=[torch.zeros(3, 5, 5,
                                                                           dtype=torch.uint8)]))
    assert out['inputs'].shape == (1, 3, 8, 8) and out['data_samples'] is None


def test_bad_divisor_is_rejected():
    with pytest.raises(ValueError, match='pad_size_divisor'):
        DetDataPreprocessor(pad_size_divisor=0)


def test_pad_mask_pads_bitmap_masks_to_batch_shape():
    pre = DetDataPreprocessor(pad_size_divisor=16, pad_mask=True)
    data = _batch([(20, 30), (10, 12)])
    for s, img in zip(data['data_samples'], data['inputs']):
        h, w = img.shape[-2:]
        s.gt_instances.masks = BitmapMasks(
            torch.ones(1, h, w, dtype=torch.uint8).numpy(), h, w)
    out = pre(data, training=True)
    for s in out['data_samples']:
        m = s.gt_instances.masks
        assert (m.height, m.width) == (32, 32)
    assert out['data_samples'][1].gt_instances.masks.to_ndarray()[0, 10:, :].sum() == 0


def test_pad_seg_pads_semantic_maps_with_the_ignore_value():
    from mmengine.structures import PixelData
    pre = DetDataPreprocessor(pad_size_divisor=16, pad_seg=True, seg_pad_value=255)
    data = _batch([(20, 30), (10, 12)])
    for s, img in zip(data['data_samples'], data['inputs']):
        h, w = img.shape[-2:]
        s.gt_sem_seg = PixelData(sem_seg=torch.full((1, h, w), 3, dtype=torch.uint8))
    out = pre(data, training=True)
    for s in out['data_samples']:
        assert tuple(s.gt_sem_seg.sem_seg.shape) == (1, 32, 32)
    small = out['data_samples'][1].gt_sem_seg.sem_seg[0]
    assert (small[:10, :12] == 3).all()  # the map itself is kept where it was
    assert (small[10:, :] == 255).all() and (small[:, 12:] == 255).all()
    # not padded at test time: predictions are compared at the image's own size
    data = _batch([(20, 30)])
    data['data_samples'][0].gt_sem_seg = PixelData(sem_seg=torch.zeros(1, 20, 30))
    out = pre(data, training=False)
    assert tuple(out['data_samples'][0].gt_sem_seg.sem_seg.shape) == (1, 20, 30)


def test_channels_last_changes_the_layout_not_the_values():
    data = _batch([(10, 12), (8, 9)])
    plain = DetDataPreprocessor(pad_size_divisor=8)(data)['inputs']
    nhwc = DetDataPreprocessor(pad_size_divisor=8, channels_last=True)(data)['inputs']
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert not plain.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, nhwc)
