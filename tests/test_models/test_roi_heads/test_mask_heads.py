import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmft.models.roi_heads import paste_masks
from mmft.registry import MODELS
from mmft.structures import BitmapMasks, PolygonMasks

TRAIN_CFG = dict(mask_size=28)
TEST_CFG = dict(mask_thr_binary=0.5)


def _head(**overrides):
    cfg = dict(type='FCNMaskHead', num_convs=2, in_channels=8, conv_out_channels=8,
               num_classes=3)
    cfg.update(overrides)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_keys_and_shapes_follow_mmdetection():
    head = _head()
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        'convs.0.conv.weight': (8, 8, 3, 3), 'convs.0.conv.bias': (8,),
        'convs.1.conv.weight': (8, 8, 3, 3), 'convs.1.conv.bias': (8,),
        'upsample.weight': (8, 8, 2, 2), 'upsample.bias': (8,),
        'conv_logits.weight': (3, 8, 1, 1), 'conv_logits.bias': (3,)}
    assert head(torch.randn(4, 8, 14, 14)).shape == (4, 3, 28, 28)
    assert not head.conv_logits.bias.any()
    assert _head(class_agnostic=True)(torch.randn(2, 8, 14, 14)).shape == (2, 1, 28, 28)
    nearest = _head(upsample_cfg=dict(type='bilinear', scale_factor=2), num_convs=0)
    assert 'upsample.weight' not in nearest.state_dict()
    assert nearest(torch.randn(2, 8, 7, 7)).shape == (2, 3, 14, 14)
    with pytest.raises(ValueError, match='upsample_cfg type'):
        _head(upsample_cfg=dict(type='carafe', scale_factor=2))


def test_targets_crop_the_gt_mask_to_each_positive_for_every_mask_type(sample_priors):
    bitmap = np.zeros((2, 32, 32), np.uint8)
    bitmap[0, 4:20, 8:24] = 1  # gt 0: box (8, 4, 24, 20)
    bitmap[1, 24:30, 0:6] = 1
    polygons = PolygonMasks([[np.array([8, 4, 24, 4, 24, 20, 8, 20], float)],
                             [np.array([0, 24, 6, 24, 6, 30, 0, 30], float)]], 32, 32)
    # the proposal (0, 4, 40, 20) (IoU 0.4) reaches past the image and is clipped to x <= 32
    res, gt = sample_priors([[8, 4, 24, 20], [0, 4, 40, 20]], [[8, 4, 24, 20], [0, 24, 6, 30]],
                            [2, 0], iou_thr=0.35)
    head = _head()
    targets = {}
    for name, masks in [('bitmap', BitmapMasks(bitmap, 32, 32)), ('polygon', polygons),
                        ('tensor', torch.from_numpy(bitmap).bool())]:
        gt.masks = masks
        targets[name] = head.get_targets([res], [gt], TRAIN_CFG)
        assert targets[name].shape == (2, 28, 28) and targets[name].dtype == torch.float32
    t = targets['bitmap']
    assert t[0].all()  # the proposal is the gt box
    # gt columns 8..24 of the clipped 32-pixel-wide proposal: target columns 7..20
    assert t[1, :, 7:21].all() and not t[1, :, :7].any() and not t[1, :, 21:].any()
    torch.testing.assert_close(targets['tensor'], t)
    assert (targets['polygon'] == t).float().mean() > 0.95


def test_loss_and_target(sample_priors):
    head = _head()
    res, gt = sample_priors([[8, 4, 24, 20], [0, 0, 3, 3]], [[8, 4, 24, 20]], [1], iou_thr=0.35)
    mask = np.zeros((1, 32, 32), np.uint8)
    mask[0, 4:12, 8:24] = 1  # top half of the box
    gt.masks = BitmapMasks(mask, 32, 32)
    target = head.get_targets([res], [gt], TRAIN_CFG)
    perfect = torch.full((1, 3, 28, 28), 0.)
    perfect[0, 1] = (target[0] * 2 - 1) * 30  # only the label's channel counts
    out = head.loss_and_target(perfect, [res], [gt], TRAIN_CFG)
    assert out['loss_mask']['loss_mask'] < 1e-6 and out['mask_targets'].shape == (1, 28, 28)
    wrong = head.loss_and_target(-perfect, [res], [gt], TRAIN_CFG)['loss_mask']['loss_mask']
    assert wrong > 10

    none, gt_none = sample_priors([[0, 0, 3, 3]], [], [], iou_thr=0.35)
    gt_none.masks = BitmapMasks(np.zeros((0, 32, 32), np.uint8), 32, 32)
    preds = head(torch.randn(0, 8, 14, 14))
    loss = head.loss_and_target(preds, [none], [gt_none], TRAIN_CFG)['loss_mask']['loss_mask']
    assert loss == 0
    loss.backward()
    with pytest.raises(KeyError, match='mask_size'):
        head.get_targets([res], [gt], dict())
    del gt.masks
    with pytest.raises(KeyError, match='with_mask=True'):
        head.get_targets([res], [gt], TRAIN_CFG)


def _reference_paste(masks, boxes, h, w, cut=True):
    """Every mask sampled over the whole image, then cut to its box's pixels plus one."""
    xs, ys = torch.arange(w) + 0.5, torch.arange(h) + 0.5
    x0, y0, x1, y1 = boxes.unbind(1)
    gx = (xs[None] - x0[:, None]) / (x1 - x0).clamp(min=1e-6)[:, None] * 2 - 1
    gy = (ys[None] - y0[:, None]) / (y1 - y0).clamp(min=1e-6)[:, None] * 2 - 1
    n = len(masks)
    grid = torch.stack([gx[:, None].expand(n, h, w), gy[:, :, None].expand(n, h, w)], dim=3)
    out = F.grid_sample(masks[:, None], grid, align_corners=False)[:, 0]
    if not cut:
        return out
    keep_x = (xs[None] > (x0.floor() - 1)[:, None]) & (xs[None] < (x1.ceil() + 1)[:, None])
    keep_y = (ys[None] > (y0.floor() - 1)[:, None]) & (ys[None] < (y1.ceil() + 1)[:, None])
    return out * (keep_y[:, :, None] & keep_x[:, None, :])


def test_paste_matches_whole_image_sampling_in_any_grouping():
    torch.manual_seed(0)
    boxes = torch.tensor([[10.3, 20.7, 30.2, 41.9], [-5., -3., 20., 12.], [50., 40., 90., 70.],
                          [5., 5., 5., 9.], [100., 100., 120., 120.], [1., 2., 63., 47.]])
    masks = torch.rand(len(boxes), 28, 28)
    expected = _reference_paste(masks, boxes, 48, 64) >= 0.5
    for num_chunks in (None, 1, 2):
        out = paste_masks(masks, boxes, 48, 64, num_chunks=num_chunks)
        assert out.dtype == torch.bool and out.shape == (6, 48, 64)
        assert torch.equal(out, expected), num_chunks
    assert not out[3].any() and not out[4].any()  # zero-width box, box outside the image
    # a box up to 28 px needs no cut: the margin holds all of bilinear's spill
    small = boxes[:1]
    whole = _reference_paste(masks[:1], small, 48, 64, cut=False)
    assert torch.equal(paste_masks(masks[:1], small, 48, 64), whole >= 0.5)
    probs = paste_masks(masks, boxes, 48, 64, threshold=-1)
    assert probs.dtype == torch.uint8 and probs.max() > 200
    assert paste_masks(masks[:0], boxes[:0], 48, 64).shape == (0, 48, 64)


def test_full_mask_pastes_exactly_the_pixels_of_an_integer_box():
    out = paste_masks(torch.ones(1, 28, 28), torch.tensor([[10., 20., 30., 40.]]), 64, 64)
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[20:40, 10:30] = True
    assert torch.equal(out[0], expected)


def test_predict_by_feat_rescales_boxes_and_masks_to_ori_shape():
    head = _head()
    logits = torch.full((2, 3, 28, 28), -10.)
    logits[0, 2] = 10.  # box 0 is label 2: a full mask
    logits[1, 0, :, :14] = 10.  # box 1 is label 0: left half
    meta = dict(img_shape=(64, 96), ori_shape=(32, 24), scale_factor=(4., 2.))
    boxes = torch.tensor([[8., 4., 40., 36.], [48., 20., 88., 60.]])

    def results():
        return InstanceData(bboxes=boxes.clone(), labels=torch.tensor([2, 0]),
                            scores=torch.tensor([0.9, 0.8]))

    full = head.predict_by_feat([logits], [results()], [meta], TEST_CFG)[0]
    assert full.masks.shape == (2, 64, 96) and full.masks.dtype == torch.bool
    torch.testing.assert_close(full.bboxes, boxes)
    assert full.masks[0].sum() == 32 * 32 and full.masks[1].sum() == 20 * 40
    ori = head.predict_by_feat([logits], [results()], [meta], TEST_CFG, rescale=True)[0]
    assert ori.masks.shape == (2, 32, 24)
    torch.testing.assert_close(ori.bboxes, boxes / torch.tensor([4., 2., 4., 2.]))
    assert ori.masks[0, 2:18, 2:10].all() and ori.masks[0].sum() == 16 * 8
    assert ori.masks[1, 10:30, 12:17].all() and ori.masks[1].sum() == 20 * 5

    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
                         scores=torch.zeros(0))
    out = head.predict_by_feat([logits[:0]], [empty], [meta], TEST_CFG, rescale=True)[0]
    assert out.masks.shape == (0, 32, 24) and out.masks.dtype == torch.bool
    with pytest.raises(KeyError, match='ori_shape'):
        head.predict_by_feat([logits], [results()], [dict(img_shape=(64, 96))], TEST_CFG,
                             rescale=True)
