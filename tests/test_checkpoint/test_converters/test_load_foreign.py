"""Foreign checkpoints through the fine-tuning load that ``load_from`` runs.

Every key lands in exactly one bucket of the LoadReport (source keys that did not
convert as 'unexpected'); torchvision and Detectron2 detectors bring COCO's class
names, so the rows of the classes Cityscapes shares with COCO are transferred into
the 8-class heads of the shipped recipes.
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torchvision
from mmengine.config import Config
from torchvision.models.detection import maskrcnn_resnet50_fpn

from mmft.engine import FinetuneRunner
from mmft.finetune.config import FinetuneConfig
from mmft.checkpoint.converters import COCO_CATEGORY_IDS, COCO_CLASSES
from mmft.checkpoint import read_checkpoint
from mmft.finetune.load import load_pretrained
from mmft.finetune.report import BUCKETS
from mmft.registry import MODELS
from tests.test_checkpoint.test_converters.foreign_checkpoints import (
    caffe2_msra_r50, caffe_resnet50, detectron2_resnet, write_pickle)
from tests.tiny_runs import make_shapes_data, tiny_config

CITYSCAPES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
# the COCO class each Cityscapes class takes its rows from (rider: the built-in synonym)
FROM_COCO = {name: 'person' if name == 'rider' else name for name in CITYSCAPES}
CLASS_KEYS = {f'roi_head.{head}.{p}' for head in ('bbox_head.fc_cls', 'bbox_head.fc_reg',
                                                  'mask_head.conv_logits')
              for p in ('weight', 'bias')}


def _recipe(repo_root, name, **model):
    """The model (``model`` merged into it) and finetune options of configs/finetune/NAME.py."""
    cfg = Config.fromfile(osp.join(repo_root, f'configs/finetune/{name}.py'))
    cfg.merge_from_dict(dict(model=model))
    return MODELS.build(cfg.model), FinetuneConfig.from_cfg(cfg.get('finetune'))


def _load_and_account(model, path, cfg=None, new_classes=CITYSCAPES):
    """load_pretrained, then check that every key is in exactly one bucket."""
    loaded = read_checkpoint(path)
    report = load_pretrained(model, str(path), cfg or FinetuneConfig(), new_classes, loaded)
    keys = set(model.state_dict()) | set(loaded.state_dict) | set(loaded.unconverted)
    for key in keys:
        report.bucket_of(key)  # raises unless exactly one
    assert sum(len(getattr(report, bucket)) for bucket in BUCKETS) == len(keys)
    return loaded, report


def test_torchvision_maskrcnn_into_the_cityscapes_recipe(tmp_path, repo_root):
    torch.manual_seed(0)
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    path = tmp_path / 'maskrcnn_resnet50_fpn_coco.pth'
    torch.save(tv, path)
    model, cfg = _recipe(repo_root, 'cityscapes_torchvision')
    loaded, report = _load_and_account(model, path, cfg)
    assert report.source_format == 'torchvision' and report.source_classes == COCO_CLASSES
    assert report.missing == [] and report.unexpected == [] and report.skipped_suspicious == []
    assert set(report.transferred) == CLASS_KEYS
    out = model.state_dict()
    cls, reg = 'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_reg.weight'
    logits = 'roi_head.mask_head.conv_logits.weight'
    car, coco_car = CITYSCAPES.index('car'), COCO_CLASSES.index('car')
    assert torch.equal(out[cls][car], loaded.state_dict[cls][coco_car])
    for i, name in enumerate(CITYSCAPES):
        row = COCO_CATEGORY_IDS[COCO_CLASSES.index(FROM_COCO[name])]  # torchvision row = COCO id
        assert torch.equal(out[cls][i], tv['roi_heads.box_predictor.cls_score.weight'][row])
        assert torch.equal(out[reg][4 * i:4 * i + 4],
                           tv['roi_heads.box_predictor.bbox_pred.weight'][4 * row:4 * row + 4])
        assert torch.equal(out[logits][i],
                           tv['roi_heads.mask_predictor.mask_fcn_logits.weight'][row])
    # background: torchvision's first row is mmft's last
    assert torch.equal(out[cls][len(CITYSCAPES)], tv['roi_heads.box_predictor.cls_score.weight'][0])
    assert torch.equal(out['backbone.layer3.4.conv2.weight'],
                       tv['backbone.body.layer3.4.conv2.weight'])
    assert torch.equal(out['neck.fpn_convs.1.conv.bias'], tv['backbone.fpn.layer_blocks.1.0.bias'])


def test_detectron2_pkl_into_the_cityscapes_recipe(d2_weights, tmp_path, repo_root):
    d2 = dict(d2_weights)
    d2['roi_heads.keypoint_head.score_lowres.weight'] = np.zeros((2, 2), np.float32)  # no place
    path = write_pickle({'model': d2, '__author__': 'Detectron2 Model Zoo'},
                        tmp_path / 'model_final_f10217.pkl')
    model, cfg = _recipe(repo_root, 'cityscapes_detectron2')
    _, report = _load_and_account(model, path, cfg)
    assert report.source_format == 'detectron2' and report.source_classes == COCO_CLASSES
    assert report.unexpected == ['roi_heads.keypoint_head.score_lowres.weight']
    assert report.missing == [] and report.skipped_suspicious == []
    assert set(report.transferred) == CLASS_KEYS
    out = model.state_dict()
    cls, reg = 'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_reg.weight'
    for i, name in enumerate(CITYSCAPES):
        row = COCO_CLASSES.index(FROM_COCO[name])  # Detectron2: contiguous COCO order already
        assert np.array_equal(out[cls][i].numpy(),
                              d2['roi_heads.box_predictor.cls_score.weight'][row])
        assert np.array_equal(out[reg][4 * i:4 * i + 4].numpy(),
                              d2['roi_heads.box_predictor.bbox_pred.weight'][4 * row:4 * row + 4])
        assert np.array_equal(out['roi_head.mask_head.conv_logits.bias'][i].numpy(),
                              d2['roi_heads.mask_head.predictor.bias'][row])
    assert np.array_equal(out[cls][8].numpy(), d2['roi_heads.box_predictor.cls_score.weight'][80])
    assert np.array_equal(out['backbone.layer2.3.bn3.running_var'].numpy(),
                          d2['backbone.bottom_up.res3.3.conv3.norm.running_var'])


@pytest.mark.parametrize('source', ['torchvision_resnet50', 'detectron2_msra_r50_pkl'])
def test_imagenet_backbones_restore_the_backbone(source, tmp_path, repo_root):
    if source == 'torchvision_resnet50':
        path = tmp_path / 'resnet50.pth'
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
        recipe, unconverted = 'cityscapes_torchvision', ['fc.weight', 'fc.bias']
    else:
        path = write_pickle({'blobs': caffe2_msra_r50()}, tmp_path / 'R-50.pkl')
        recipe, unconverted = 'cityscapes_detectron2', ['fc1000_w', 'fc1000_b']
    model, _ = _recipe(repo_root, recipe)
    _, report = _load_and_account(model, path)  # checkpoint_type 'auto'
    backbone = {k for k in model.state_dict() if k.startswith('backbone.')}
    assert report.checkpoint_type == 'classification'
    assert set(report.loaded) == backbone
    assert sorted(report.unexpected) == sorted(unconverted)
    assert set(report.missing) == set(model.state_dict()) - backbone  # neck and heads: not in scope


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=2, num_val=1)


def _checkpoint_of(source, folder):
    """(file, backbone and neck overrides of the tiny model, expected state, unconverted keys)."""
    if source == 'caffemodel':
        net, _ = caffe_resnet50(base=8)
        path = folder / 'ResNet-50-model.caffemodel'
        path.write_bytes(net.SerializeToString())
        backbone = dict(depth=50, stem_channels=8, base_channels=8, style='caffe')
        # the runner must load what the converter made; its values are checked against Caffe's
        # arithmetic in test_caffe_converter.py
        expected = dict(read_checkpoint(path).state_dict)
        return path, backbone, dict(in_channels=[32, 64, 128, 256]), expected, ['fc1000']
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None).state_dict()
    expected = {'backbone.' + k: v for k, v in tv.items() if not k.startswith('fc.')}
    if source == 'torchvision':
        path = folder / 'resnet18.pth'
        torch.save(tv, path)
        return path, {}, {}, expected, ['fc.weight', 'fc.bias']
    path = write_pickle({'model': detectron2_resnet(tv), '__author__': 'torchvision'},
                        folder / 'R-18.pkl')
    return path, {}, {}, expected, ['stem.fc.weight', 'stem.fc.bias']


@pytest.mark.parametrize('source', ['torchvision', 'detectron2', 'caffemodel'])
def test_load_from_through_the_runner(source, shapes, tmp_path):
    path, backbone, neck, expected, unconverted = _checkpoint_of(source, tmp_path)
    cfg = tiny_config(shapes['target'], str(tmp_path / 'work'), load_from=str(path),
                      model=dict(backbone=backbone, neck=neck))
    runner = FinetuneRunner.from_cfg(cfg)
    runner.load_checkpoint(str(path))
    report = runner.load_report
    assert report.source_format == source.replace('caffemodel', 'caffe')
    assert report.checkpoint_type == 'classification'
    assert sorted(report.unexpected) == sorted(unconverted)
    out = runner.model.state_dict()
    for key, value in expected.items():
        assert torch.equal(out[key], value.to(out[key].dtype)), key
    assert osp.isfile(osp.join(runner.log_dir, 'load_report.txt'))


def test_recipes_compute_what_the_source_computed(repo_root):
    """The overrides of docs/model_zoo.md, as the two recipes apply them."""
    tv, _ = _recipe(repo_root, 'cityscapes_torchvision')
    d2, _ = _recipe(repo_root, 'cityscapes_detectron2')
    for extractor in (tv.roi_head.bbox_roi_extractor, tv.roi_head.mask_roi_extractor):
        assert all(not l.aligned and l.sampling_ratio == 2 for l in extractor.roi_layers)
    for extractor in (d2.roi_head.bbox_roi_extractor, d2.roi_head.mask_roi_extractor):
        assert all(l.aligned and l.sampling_ratio == 0 for l in extractor.roi_layers)  # ROIAlignV2
    # input: torchvision RGB / 255 normalised by ImageNet std; Detectron2 BGR 0..255 minus mean
    assert tv.data_preprocessor._channel_conversion and not d2.data_preprocessor._channel_conversion
    assert tv.data_preprocessor.std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])
    assert d2.data_preprocessor.mean.flatten().tolist() == pytest.approx([103.53, 116.28, 123.675])
    assert d2.data_preprocessor.std.flatten().tolist() == [1.0, 1.0, 1.0]
    # stride of the first block of a stage: torchvision on the 3x3 conv, MSRA on the 1x1
    assert tv.backbone.layer3[0].conv2.stride == (2, 2)
    assert tv.backbone.layer3[0].conv1.stride == (1, 1)
    assert d2.backbone.layer3[0].conv1.stride == (2, 2)
    assert d2.backbone.layer3[0].conv2.stride == (1, 1)
    for model in (tv, d2):  # frozen BatchNorm (FrozenBatchNorm2d / FrozenBN)
        assert not model.backbone.bn1.weight.requires_grad and model.backbone.norm_eval
