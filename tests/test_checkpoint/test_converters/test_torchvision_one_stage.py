"""torchvision RetinaNet (v1, v2) and FCOS -> mmft: keys, class rows, and equal detections.

torchvision models are built with ``weights=None`` (no download), given random
BatchNorm statistics and non-zero biases, then converted; mmft's model, with the
overrides docs/model_zoo.md lists, must give torchvision's boxes, scores and labels.
"""
import pytest
import torch
from torchvision.models.detection import (fcos_resnet50_fpn, retinanet_resnet50_fpn,
                                          retinanet_resnet50_fpn_v2)

from mmft.checkpoint.converters import COCO_CATEGORY_IDS, COCO_CLASSES, convert_torchvision
from mmft.registry import MODELS
from mmft.structures import DetDataSample
from .test_torchvision_converter import _randomise_norms

H, W = 128, 256  # multiples of 128: torchvision's P3-P7 strides are then exactly 8..128
TV_SIZES = [[32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406], [512, 645, 812]]
BUILDERS = dict(retinanet=retinanet_resnet50_fpn, retinanet_v2=retinanet_resnet50_fpn_v2,
                fcos=fcos_resnet50_fpn)


def _torchvision(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = BUILDERS[name](weights=None, weights_backbone=None, min_size=H, max_size=W,
                           image_mean=[0., 0., 0.], image_std=[1., 1., 1.], **kwargs)
    with torch.no_grad():
        _randomise_norms(model, seed)
        for pname, p in model.named_parameters():
            if pname.endswith('bias') and not pname.startswith('backbone.body') \
                    and 'cls_logits' not in pname:
                p.normal_(0, 0.05)
        cls = model.head.classification_head.cls_logits
        # spread the class scores (random init leaves them all at the 0.01 prior)
        cls.weight.normal_(0, 0.05)
        cls.bias.normal_(-4.5 if name == 'fcos' else -3.5, 1.0)
    return model.eval()


def torchvision_overrides(name):
    """The mmft model config that reproduces torchvision's model ``name`` (docs/model_zoo.md)."""
    backbone = dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                    norm_eval=True, style='pytorch', init_cfg=None)
    neck = dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
                num_outs=5, relu_before_extra_convs=True,  # P7 = conv(relu(P6))
                add_extra_convs='on_input' if name == 'retinanet_v2' else 'on_output')
    if name == 'fcos':
        head = dict(type='FCOSHead', num_classes=80, in_channels=256, strides=[8, 16, 32, 64, 128],
                    norm_on_bbox=True, centerness_on_reg=True, conv_bias=True, prior_offset=0.,
                    norm_cfg=dict(type='GN', num_groups=32))
        return dict(type='FCOS', backbone=backbone, neck=neck, bbox_head=head)
    head = dict(type='RetinaHead', num_classes=80, in_channels=256,
                anchor_generator=dict(type='AnchorGenerator', sizes=TV_SIZES,
                                      ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128],
                                      round_base_anchors=True),
                norm_cfg=dict(type='GN', num_groups=32) if name == 'retinanet_v2' else None)
    return dict(type='RetinaNet', backbone=backbone, neck=neck, bbox_head=head)


@pytest.mark.parametrize('name', list(BUILDERS))
def test_keys_all_convert_and_load_exactly(name):
    tv = _torchvision(name)
    result = convert_torchvision(tv.state_dict())
    assert result.unconverted == {} or not result.unconverted
    assert result.meta['classes'] == COCO_CLASSES
    model = MODELS.build(torchvision_overrides(name))
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    assert not unexpected and not [k for k in missing if not k.endswith('num_batches_tracked')]
    # class rows: mmft row a * 80 + i is torchvision row a * 91 + COCO id of class i
    src = tv.state_dict()['head.classification_head.cls_logits.weight']
    cls_key = 'bbox_head.conv_cls.weight' if name == 'fcos' else 'bbox_head.retina_cls.weight'
    out = result.state_dict[cls_key]
    anchors = 1 if name == 'fcos' else 9
    assert out.shape[0] == anchors * 80
    for a in range(anchors):
        for i in (0, 2, 79):
            assert torch.equal(out[a * 80 + i], src[a * 91 + COCO_CATEGORY_IDS[i]])


@pytest.mark.parametrize('name', list(BUILDERS))
def test_detections_equal(name):
    """No top-k cut on either side (torchvision's also spans the dropped rows), else the
    same score threshold, per-class NMS and decoding."""
    thr = 0.3 if name != 'fcos' else 0.2
    tv = _torchvision(name, seed=1, score_thresh=thr, topk_candidates=10 ** 6,
                      detections_per_img=10 ** 6)
    converted = convert_torchvision(tv.state_dict())
    cfg = torchvision_overrides(name)
    # torchvision's FCOS keeps sqrt(cls * centerness) > thr, mmft keeps cls > score_thr and
    # multiplies by the centerness: with score_thr = thr ** 2 mmft keeps a superset whose extra
    # candidates all score below thr ** 2, so they suppress nothing above it
    cfg['test_cfg'] = dict(nms_pre=-1, min_bbox_size=-1,
                           score_thr=thr ** 2 if name == 'fcos' else thr,
                           nms=dict(type='nms', iou_threshold=0.6 if name == 'fcos' else 0.5),
                           max_per_img=10 ** 6)
    model = MODELS.build(cfg).eval()
    model.load_state_dict(converted.state_dict, strict=False)
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        ref = tv([x[0]])[0]
        sample = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                             scale_factor=(1.0, 1.0), pad_shape=(H, W),
                                             batch_input_shape=(H, W)))
        got = model.bbox_head.predict(model.extract_feat(x), [sample], rescale=True)[0]
    # torchvision also scores COCO id 0 and the unused ids, which mmft drops
    used = torch.isin(ref['labels'], torch.tensor(COCO_CATEGORY_IDS))
    ref = {k: v[used] for k, v in ref.items()}
    if name == 'fcos':
        ref['scores'] = ref['scores'] ** 2  # mmft's score: cls * centerness
        got = got[got.scores > thr ** 2]
    assert len(ref['boxes']) >= 5, 'test setup: torchvision should detect something'
    assert got.bboxes.shape == ref['boxes'].shape
    # both lists are sorted by score; equal scores (a few among thousands) may come in either
    # order, so compare them in a canonical order: label, then box
    got_rows = _canonical(torch.tensor(COCO_CATEGORY_IDS)[got.labels], got.scores, got.bboxes)
    ref_rows = _canonical(ref['labels'], ref['scores'], ref['boxes'])
    assert torch.equal(got_rows[:, 0], ref_rows[:, 0])  # labels
    assert torch.allclose(got_rows[:, 1], ref_rows[:, 1], atol=1e-5)  # scores
    assert torch.allclose(got_rows[:, 2:], ref_rows[:, 2:], atol=1e-3)  # boxes
    # and in the score order itself, where no scores tie
    assert torch.allclose(got.scores, ref['scores'], atol=1e-5)


def _canonical(labels, scores, boxes):
    rows = torch.cat([labels[:, None].double(), scores[:, None].double(), boxes.double()], 1)
    for col in (2, 0):  # stable sorts: by x1, then by label
        rows = rows[torch.sort(rows[:, col], stable=True)[1]]
    return rows


def test_convert_tool_and_load_from_give_the_same_model(tmp_path, repo_root):
    """convert.py writes an mmft checkpoint that loads exactly; load_from (the fine-tuning
    load) reads the raw torchvision file into the Cityscapes recipe, COCO rows transferred."""
    from mmengine.config import Config

    from mmft.checkpoint import load_exact, read_checkpoint
    from mmft.finetune.config import FinetuneConfig
    from mmft.finetune.load import load_pretrained
    from tools.model_converters import convert as convert_tool
    tv = _torchvision('retinanet')
    raw = tmp_path / 'retinanet_resnet50_fpn_coco.pth'
    torch.save(tv.state_dict(), raw)
    assert convert_tool.main([str(raw), str(tmp_path / 'converted.pth')]) == 0
    model = MODELS.build(torchvision_overrides('retinanet'))
    converted = str(tmp_path / 'converted.pth')
    load_exact(model, read_checkpoint(converted), converted, expected_classes=COCO_CLASSES)
    expected = convert_torchvision(tv.state_dict()).state_dict
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    cfg = Config.fromfile(f'{repo_root}/configs/finetune/cityscapes_retinanet.py')
    recipe = MODELS.build(cfg.model)
    recipe.init_weights()
    report = load_pretrained(recipe, str(raw), FinetuneConfig.from_cfg(cfg.finetune),
                             ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                              'bicycle'))
    assert report.source_format == 'torchvision' and report.source_classes == COCO_CLASSES
    assert sorted(report.transferred) == ['bbox_head.retina_cls.bias',
                                          'bbox_head.retina_cls.weight']
    car = COCO_CATEGORY_IDS[COCO_CLASSES.index('car')]
    src = tv.state_dict()['head.classification_head.cls_logits.weight']
    out = recipe.state_dict()['bbox_head.retina_cls.weight']
    for a in range(9):
        assert torch.equal(out[a * 8 + 2], src[a * 91 + car])
