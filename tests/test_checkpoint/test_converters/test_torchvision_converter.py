"""torchvision -> mmft: keys, class layout, and numerically equal features.

torchvision models are built with ``weights=None, weights_backbone=None`` (no
download) and then given random BatchNorm statistics so that a wrong key
mapping (e.g. swapped ``bn1``/``bn2``) changes the outputs.
"""
import os.path as osp

import pytest
import torch
import torchvision
from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn

from mmft.checkpoint.converters import COCO_CATEGORY_IDS, COCO_CLASSES, convert_torchvision
from mmft.checkpoint.converters.torchvision import convert_class_rows
from mmft.checkpoint import read_checkpoint
from mmft.models.backbones.resnet import ResNet
from mmft.models.necks.fpn import FPN

H, W = 128, 192  # multiples of 64: torchvision's anchor strides are then exactly 4..64


def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Random affine and running statistics in every BatchNorm / FrozenBatchNorm."""
    gen = torch.Generator().manual_seed(seed)
    for name, buf in list(model.state_dict().items()):
        if name.endswith(('running_mean', 'bn1.bias', 'bn2.bias', 'bn3.bias', 'downsample.1.bias')):
            buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
        elif name.endswith(('running_var', 'bn1.weight', 'bn2.weight', 'bn3.weight',
                            'downsample.1.weight')):
            buf.copy_(torch.rand(buf.shape, generator=gen) * 0.5 + 0.5)


@pytest.fixture(scope='module')
def tv_maskrcnn():
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=H, max_size=W,
                                  image_mean=[0., 0., 0.], image_std=[1., 1., 1.])
    with torch.no_grad():
        _randomise_norms(model)
        # non-zero FPN / RPN biases so a bias mapped to the wrong conv shows up
        for name, p in model.named_parameters():
            if name.endswith('bias') and not name.startswith('backbone.body'):
                p.normal_(0, 0.05)
    return model.eval()


def _mmft_backbone_and_neck(depth: int = 50):
    backbone = ResNet(depth=depth, out_indices=(0, 1, 2, 3), norm_eval=True, style='pytorch')
    neck = FPN(in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)
    return backbone.eval(), neck.eval()


def _sub_state(state_dict, prefix):
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def test_detection_keys_all_convert_and_class_rows_move(tv_maskrcnn):
    source = tv_maskrcnn.state_dict()
    result = convert_torchvision(source)
    assert result.unconverted == []
    assert result.meta['source_format'] == 'torchvision'
    assert result.meta['classes'] == COCO_CLASSES
    assert result.meta['dataset_meta'] == {'classes': COCO_CLASSES}
    sd = result.state_dict
    assert sd['roi_head.bbox_head.fc_cls.weight'].shape == (81, 1024)
    assert sd['roi_head.bbox_head.fc_reg.weight'].shape == (320, 1024)
    assert sd['roi_head.mask_head.conv_logits.weight'].shape == (80, 256, 1, 1)
    cls_w = source['roi_heads.box_predictor.cls_score.weight']
    # mmft row 0 is 'person' = COCO id 1; row 79 'toothbrush' = id 90; background last
    assert torch.equal(sd['roi_head.bbox_head.fc_cls.weight'][0], cls_w[1])
    assert torch.equal(sd['roi_head.bbox_head.fc_cls.weight'][79], cls_w[90])
    assert torch.equal(sd['roi_head.bbox_head.fc_cls.weight'][80], cls_w[0])
    # 'backpack' is mmft class 24 and COCO id 27 (ids 12, 26 unused before it)
    assert COCO_CLASSES[24] == 'backpack'
    reg = source['roi_heads.box_predictor.bbox_pred.weight']
    assert torch.equal(sd['roi_head.bbox_head.fc_reg.weight'][24 * 4:25 * 4], reg[27 * 4:28 * 4])
    mask = source['roi_heads.mask_predictor.mask_fcn_logits.bias']
    assert torch.equal(sd['roi_head.mask_head.conv_logits.bias'][24], mask[27])
    # every other parameter keeps its values under its new name
    assert torch.equal(sd['neck.lateral_convs.2.conv.weight'],
                       source['backbone.fpn.inner_blocks.2.0.weight'])
    assert torch.equal(sd['rpn_head.rpn_reg.bias'], source['rpn.head.bbox_pred.bias'])
    assert torch.equal(sd['roi_head.mask_head.upsample.weight'],
                       source['roi_heads.mask_predictor.conv5_mask.weight'])


def test_class_rows_fixed_numbers():
    # each source row holds its own index, so the output shows where it came from
    ids = lambda n: torch.arange(float(n))[:, None]  # noqa: E731
    rows, names = convert_class_rows(ids(91), 91, 'cls')
    assert rows[:12, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13] and rows[-1] == 0
    assert len(rows) == 81 and names[11] == 'stop sign'
    reg, _ = convert_class_rows(ids(364), 91, 'reg')
    assert reg[:8, 0].tolist() == [4, 5, 6, 7, 8, 9, 10, 11] and len(reg) == 320
    # a torchvision model fine-tuned on 3 classes (+ background first)
    rows, names = convert_class_rows(ids(4), 4, 'cls')
    assert rows[:, 0].tolist() == [1, 2, 3, 0] and names is None
    assert convert_class_rows(ids(16), 4, 'reg')[0][:, 0].tolist() == list(range(4, 16))
    assert convert_class_rows(ids(4), 4, 'mask')[0][:, 0].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match='looks truncated'):
        convert_class_rows(ids(10), 4, 'reg')
    assert list(COCO_CATEGORY_IDS[-3:]) == [88, 89, 90]


def test_older_torchvision_key_names_convert():
    old = {'backbone.body.conv1.weight': torch.zeros(1),
           'backbone.fpn.inner_blocks.0.weight': torch.zeros(1),
           'backbone.fpn.layer_blocks.3.bias': torch.zeros(1),
           'rpn.head.conv.weight': torch.zeros(1),
           'roi_heads.mask_head.mask_fcn3.weight': torch.zeros(1),
           'roi_heads.something_new.weight': torch.zeros(1)}
    result = convert_torchvision(old)
    assert set(result.state_dict) == {
        'backbone.conv1.weight', 'neck.lateral_convs.0.conv.weight', 'neck.fpn_convs.3.conv.bias',
        'rpn_head.rpn_conv.weight', 'roi_head.mask_head.convs.2.conv.weight'}
    assert result.unconverted == ['roi_heads.something_new.weight']


@pytest.mark.parametrize('builder', [maskrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn])
def test_backbone_and_fpn_features_equal(builder, tv_maskrcnn, tmp_path):
    if builder is maskrcnn_resnet50_fpn:
        tv = tv_maskrcnn
    else:
        torch.manual_seed(1)
        tv = builder(weights=None, weights_backbone=None, min_size=H, max_size=W).eval()
        with torch.no_grad():
            _randomise_norms(tv, seed=1)
    path = tmp_path / 'tv.pth'
    torch.save(tv.state_dict(), path)
    loaded = read_checkpoint(path)  # format detected from the keys
    assert loaded.format == 'torchvision' and loaded.unconverted == []
    backbone, neck = _mmft_backbone_and_neck()
    missing, unexpected = backbone.load_state_dict(_sub_state(loaded.state_dict, 'backbone.'),
                                                   strict=False)
    assert missing == [] and unexpected == []
    neck.load_state_dict(_sub_state(loaded.state_dict, 'neck.'), strict=True)
    x = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = tv.backbone(x)  # OrderedDict '0'..'3', 'pool'
        got = neck(backbone(x))
    assert len(got) == len(expected) == 5
    for level, (name, ref) in enumerate(expected.items()):
        assert got[level].shape == ref.shape, name
        scale = ref.abs().max()
        assert torch.allclose(got[level], ref, atol=1e-4 * scale, rtol=1e-4), name


@pytest.mark.parametrize('depth', [18, 34])
def test_classification_resnet_as_backbone(depth, tmp_path):
    torch.manual_seed(depth)
    tv = getattr(torchvision.models, f'resnet{depth}')(weights=None).eval()
    with torch.no_grad():
        _randomise_norms(tv, seed=depth)
    torch.save(tv.state_dict(), tmp_path / 'cls.pth')
    loaded = read_checkpoint(tmp_path / 'cls.pth')
    assert loaded.format == 'torchvision'
    assert sorted(loaded.unconverted) == ['fc.bias', 'fc.weight']
    assert loaded.meta['classes'] is None
    backbone = ResNet(depth=depth, out_indices=(3,)).eval()
    backbone.load_state_dict(_sub_state(loaded.state_dict, 'backbone.'), strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        t = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(t))))
        (out,) = backbone(x)
    assert torch.allclose(out, ref, atol=1e-5 * ref.abs().max())


def _mmft_rpn_with_torchvision_conventions():
    """mmft RPNHead configured as torchvision's RPN (test mode)."""
    from mmft.models.dense_heads.rpn_head import RPNHead
    rpn = RPNHead(
        in_channels=256, feat_channels=256,
        # torchvision rounds its base anchors to whole pixels ([-23, -11, 23, 11] for size 32,
        # ratio 0.5); MMDetection does not
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64], round_base_anchors=True),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        # torchvision: rpn_pre_nms_top_n_test=1000 per level, rpn_post_nms_top_n_test=1000,
        # rpn_nms_thresh=0.7, rpn_score_thresh=0.0
        test_cfg=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                      min_bbox_size=0))
    return rpn.eval()


def test_rpn_proposals_equal(tv_maskrcnn):
    from mmft.structures import DetDataSample
    loaded = convert_torchvision(tv_maskrcnn.state_dict())
    backbone, neck = _mmft_backbone_and_neck()
    backbone.load_state_dict(_sub_state(loaded.state_dict, 'backbone.'), strict=False)
    neck.load_state_dict(_sub_state(loaded.state_dict, 'neck.'))
    rpn = _mmft_rpn_with_torchvision_conventions()
    rpn.load_state_dict(_sub_state(loaded.state_dict, 'rpn_head.'), strict=True)

    x = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images, _ = tv_maskrcnn.transform([x[0]])
        assert tuple(images.tensors.shape[-2:]) == (H, W)  # no resize, no padding
        assert torch.allclose(images.tensors, x)
        tv_feats = tv_maskrcnn.backbone(images.tensors)
        tv_props, _ = tv_maskrcnn.rpn(images, tv_feats)
        sample = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(H, W),
                                             pad_shape=(H, W)))
        props = rpn.predict(neck(backbone(x)), [sample])[0]
    ref = tv_props[0]
    assert len(ref) > 100
    assert props.bboxes.shape == ref.shape
    assert torch.allclose(props.bboxes, ref, atol=1e-3), \
        (props.bboxes - ref).abs().max()



def _torchvision_paste_boxes(boxes: torch.Tensor, mask_size: int = 28) -> torch.Tensor:
    """The boxes torchvision's paste really stretches its ``mask_size`` masks over.

    torchvision gives each mask a one-cell zero border, expands its box by
    ``(M + 2) / M`` to match, casts that box to int64 (toward zero) and resizes the
    bordered mask to ``x2 - x1 + 1`` by ``y2 - y1 + 1`` pixels placed at ``(x1, y1)``.
    The unbordered mask therefore spans ``[x1 + c, x2 + 1 - c]``, ``c`` being one cell.
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * ((mask_size + 2) / mask_size)
    low, high = (centre - half).long().float(), (centre + half).long().float()
    size = (high + 1 - low).clamp(min=1)
    cell = size / (mask_size + 2)
    return torch.cat([low + cell, low + size - cell], dim=1)


@pytest.mark.parametrize('with_mask', [True, False], ids=['maskrcnn', 'fasterrcnn'])
def test_final_detections_equal(with_mask, tv_maskrcnn):
    """Backbone -> FPN -> RPN -> RoI heads of mmft, configured with torchvision's
    conventions, give torchvision's final boxes, scores, labels and masks."""
    import copy
    from mmft.models.roi_heads.mask_heads import paste_masks
    from mmft.registry import MODELS
    from mmft.structures import DetDataSample, bbox2roi

    if with_mask:
        tv = copy.deepcopy(tv_maskrcnn)
    else:
        torch.manual_seed(2)
        tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=H, max_size=W,
                                     image_mean=[0., 0., 0.], image_std=[1., 1., 1.]).eval()
        with torch.no_grad():
            _randomise_norms(tv, seed=2)
    with torch.no_grad():
        cls = tv.roi_heads.box_predictor.cls_score
        # confident scores (0.2 to 0.8 here), so detections pass score_thresh 0.05; much
        # stronger saturates them near 1, where float ties make the order of detections arbitrary
        cls.weight.mul_(4)
        # torchvision's softmax also spans the 10 rows of unused COCO ids, which mmft does not
        # have; trained torchvision weights give them ~0 probability, so make that exact here
        unused = torch.tensor([i for i in range(1, 91) if i not in COCO_CATEGORY_IDS])
        cls.weight[unused] = 0
        cls.bias[unused] = -1e4
    converted = convert_torchvision(tv.state_dict())
    backbone, neck = _mmft_backbone_and_neck()
    backbone.load_state_dict(_sub_state(converted.state_dict, 'backbone.'), strict=False)
    neck.load_state_dict(_sub_state(converted.state_dict, 'neck.'))
    rpn = _mmft_rpn_with_torchvision_conventions()
    rpn.load_state_dict(_sub_state(converted.state_dict, 'rpn_head.'))
    roi_align = dict(type='RoIAlign', sampling_ratio=2, aligned=False)  # torchvision's roi_align
    roi_head = MODELS.build(dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(output_size=7, **roi_align),
                                out_channels=256, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                       roi_feat_size=7, num_classes=80,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),  # BoxCoder(10, 10, 5, 5)
                       reg_class_agnostic=False),
        **(dict(mask_roi_extractor=dict(type='SingleRoIExtractor',
                                        roi_layer=dict(output_size=14, **roi_align),
                                        out_channels=256, featmap_strides=[4, 8, 16, 32]),
                mask_head=dict(type='FCNMaskHead', num_convs=4, in_channels=256,
                               conv_out_channels=256, num_classes=80))
           if with_mask else {}),
        # torchvision: box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=100
        test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
                      mask_thr_binary=0.5))).eval()
    roi_head.load_state_dict(_sub_state(converted.state_dict, 'roi_head.'), strict=True)

    x = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        # tv([x[0]]) step by step, to keep the 28x28 masks from before pasting
        images, _ = tv.transform([x[0]])
        tv_feats = tv.backbone(images.tensors)
        tv_dets = tv.roi_heads(tv_feats, tv.rpn(images, tv_feats)[0], images.image_sizes)[0]
        ref = tv.transform.postprocess([dict(d) for d in tv_dets], images.image_sizes, [(H, W)])[0]
        sample = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(H, W),
                                             pad_shape=(H, W)))
        feats = neck(backbone(x))
        proposals = rpn.predict(feats, [sample])
        got = roi_head.predict(feats, proposals, [sample], rescale=True)[0]
    assert len(ref['boxes']) >= 5, 'test setup: torchvision should detect something'
    assert (ref['scores'][:-1] - ref['scores'][1:]).min() > 1e-6, \
        'test setup: tied scores leave the order of detections undefined'
    assert got.bboxes.shape == ref['boxes'].shape
    assert torch.allclose(got.bboxes, ref['boxes'], atol=1e-2)
    assert torch.allclose(got.scores, ref['scores'], atol=1e-4)
    # torchvision labels are COCO ids; mmft's are indices into COCO_CLASSES
    assert [COCO_CATEGORY_IDS[i] for i in got.labels.tolist()] == ref['labels'].tolist()
    if not with_mask:
        return

    # Masks. Both pastes sample the same field (the 28x28 probabilities, bilinear, with a
    # zero border one cell wide) at pixel centres; they differ only in where the box is:
    # mmft (like MMDetection and Detectron2) uses the exact box, torchvision rounds its
    # expanded box to whole pixels, moving each edge by < 1 px. So check, exactly:
    # 1. the 28x28 probabilities (what the weights and RoIAlign settings decide);
    with torch.no_grad():
        logits = roi_head._mask_forward(feats, bbox2roi([got.bboxes]))['mask_pred']
    probs = logits[torch.arange(len(logits)), got.labels].sigmoid()
    assert torch.allclose(probs, tv_dets[0]['masks'][:, 0], atol=1e-5)
    # 2. mmft's final masks are these probabilities pasted into mmft's boxes;
    assert torch.equal(got.masks, paste_masks(probs, got.bboxes, H, W, threshold=0.5))
    # 3. pasted into the boxes torchvision really uses, they give torchvision's masks at every
    #    pixel not within 1e-4 of the threshold (bilinear weights sum to 1, so pasted values
    #    differ by no more than the 28x28 ones). With the exact boxes instead, ~5% of the
    #    pixels of these random-weight masks flip: their probabilities sit near 0.5 everywhere,
    #    where a trained model's flips are confined to a 1-px band along the contour.
    ref_probs = ref['masks'][:, 0]
    decided = (ref_probs - 0.5).abs() > 1e-4
    assert decided.float().mean() > 0.999, 'test setup: almost every pixel is decided'
    in_tv_boxes = paste_masks(probs, _torchvision_paste_boxes(ref['boxes']), H, W, threshold=0.5)
    assert torch.equal(in_tv_boxes[decided], (ref_probs > 0.5)[decided])
