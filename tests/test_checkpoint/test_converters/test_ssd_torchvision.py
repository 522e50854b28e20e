"""torchvision's ``ssd300_vgg16`` converted into mmft's SSD300 gives torchvision's outputs.

Overrides that make mmft compute what torchvision computes (docs/model_zoo.md):
``data_preprocessor.mean=[122.99925, 116.9991, 103.9992], std=[1, 1, 1]`` (torchvision
normalises [0, 1] RGB by mean (0.48235, 0.45882, 0.40784) and std 1/255),
``anchor_generator.clip_to_input=True`` (its default boxes are clipped to the image),
``test_cfg``: ``score_thr=0.01``, ``nms_pre=-1``, ``min_bbox_size=-1``, ``max_per_img=200``.
What cannot match exactly: torchvision keeps the 400 best boxes per class before NMS and
mmft the ``nms_pre`` best per level (the same boxes when no class has more than 400
candidates; the test lifts both caps); torchvision's pool after conv4_3 floors where
MMDetection's ceils (the same sizes for a 300 px input); its L2 norm divides by
``max(norm, 1e-12)``, MMDetection's by ``norm + 1e-10``; and mmft's softmax has no rows for the 10 COCO ids
torchvision leaves unused (a trained torchvision model gives them ~0 probability; here
their logits are set to -100).
"""
import copy

import pytest
import torch
import torchvision
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import COCO_CATEGORY_IDS, convert_torchvision, unused_coco_ids
from mmft.checkpoint.converters.torchvision import is_torchvision_ssd
from mmft.registry import MODELS
from mmft.structures import DetDataSample
from tests.test_models.test_detectors.test_ssd_yolov3 import SSD300

TORCHVISION_OVERRIDES = dict(
    data_preprocessor=dict(mean=[122.99925, 116.9991, 103.9992], std=[1, 1, 1]),
    bbox_head=dict(anchor_generator=dict(clip_to_input=True)),
    test_cfg=dict(score_thr=0.01, nms_pre=-1, min_bbox_size=-1, max_per_img=200))


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


@pytest.fixture(scope='module')
def converted():
    torch.manual_seed(0)
    tv = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None).eval()
    with torch.no_grad():
        # random VGG activations are huge: scale the class logits to std ~2 and make
        # background likely, so that a few hundred (box, class) pairs pass score_thr
        feats = list(tv.backbone(torch.rand(1, 3, 300, 300) * 255 - 115).values())
        for feat, conv in zip(feats, tv.head.classification_head.module_list):
            conv.weight.mul_(1.0 / conv(feat).std())
            conv.bias.zero_()
            conv.bias.view(-1, 91)[:, 0] = 8.0
            # the 10 unused COCO ids have no rows in mmft; a trained model gives them ~0
            conv.weight.view(-1, 91, *conv.weight.shape[1:])[:, unused_coco_ids()] = 0
            conv.bias.view(-1, 91)[:, unused_coco_ids()] = -100.0
    # lift both models' caps (400 per class / nms_pre per level, 200 per image) so that the
    # whole NMS output is compared
    tv.topk_candidates = tv.detections_per_img = 10 ** 6
    result = convert_torchvision(tv.state_dict())
    cfg = _merge(SSD300, TORCHVISION_OVERRIDES)
    cfg['test_cfg']['max_per_img'] = 10 ** 6
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg).eval()
    model.load_state_dict(result.state_dict, strict=True)
    return tv, model, result


@pytest.mark.slow
def test_ssd300_vgg16_gives_torchvision_detections(converted):
    tv, model, result = converted
    assert is_torchvision_ssd(list(tv.state_dict()))
    assert result.unconverted == [] and len(result.meta['classes']) == 80
    torch.manual_seed(1)
    rgb = torch.randint(0, 256, (3, 300, 300), dtype=torch.uint8)
    with torch.no_grad():
        tv_feats = list(tv.backbone(tv.transform([rgb.float() / 255])[0].tensors).values())
        expected = tv([rgb.float() / 255])[0]
        data = model.data_preprocessor(dict(inputs=[rgb.flip(0)], data_samples=[
            DetDataSample(metainfo=dict(img_shape=(300, 300), ori_shape=(300, 300),
                                        scale_factor=(1.0, 1.0)))]), False)
        feats = model.extract_feat(data['inputs'])
        for ours, theirs in zip(feats, tv_feats):
            torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-3)
        cls_scores, bbox_preds = model.bbox_head(feats)
        tv_out = tv.head(tv_feats)
        cls = torch.cat([c.permute(0, 2, 3, 1).reshape(1, -1, 81) for c in cls_scores], 1)
        reg = torch.cat([b.permute(0, 2, 3, 1).reshape(1, -1, 4) for b in bbox_preds], 1)
        torch.testing.assert_close(reg, tv_out['bbox_regression'], atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(cls[..., :80], tv_out['cls_logits'][..., COCO_CATEGORY_IDS],
                                   atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(cls[..., 80], tv_out['cls_logits'][..., 0], atol=1e-3,
                                   rtol=1e-3)
        pred = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert 10 < len(pred) == len(expected['scores'])
    labels = torch.as_tensor(COCO_CATEGORY_IDS)[pred.labels]

    # every detection of ours is one of theirs: same label, score within 1e-4, box within
    # 0.11 px (matched one to one; not by sorting, since near-equal scores sort differently
    # from CPU to CPU)
    ours = torch.cat([pred.scores[:, None], labels[:, None].float(), pred.bboxes], 1)
    theirs = torch.cat([expected['scores'][:, None], expected['labels'][:, None].float(),
                        expected['boxes']], 1)
    free = torch.ones(len(theirs), dtype=torch.bool)
    for row in ours:
        fits = free & (theirs[:, 1] == row[1]) & ((theirs[:, 0] - row[0]).abs() <= 1e-4) & \
            ((theirs[:, 2:] - row[2:]).abs() <= 0.11).all(1)
        assert fits.any(), f'no torchvision detection matches ours {row.tolist()}'
        free[fits.nonzero()[0, 0]] = False
