"""init_detector / inference_detector / demo/image_demo.py on a tiny Mask R-CNN."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config


CLASSES = ('circle', 'square', 'triangle')
H, W = 48, 64
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tiny_config() -> Config:
    """Mask R-CNN with a ResNet-18 and 16-channel FPN: builds and runs in well under a second."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/models/mask_rcnn_r50_fpn.py'))
    c = 16
    cfg.merge_from_dict(dict(model=dict(
        backbone=dict(depth=18, init_cfg=None),
        neck=dict(in_channels=[64, 128, 256, 512], out_channels=c),
        rpn_head=dict(in_channels=c, feat_channels=c),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=c),
            bbox_head=dict(in_channels=c, fc_out_channels=32, num_classes=len(CLASSES)),
            mask_roi_extractor=dict(out_channels=c),
            mask_head=dict(in_channels=c, conv_out_channels=c, num_convs=1,
                           num_classes=len(CLASSES))),
        # an untrained model scores everything low: keep all boxes so there is something to see
        test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=5)))))
    cfg.default_scope = 'mmft'
    # classes of the config differ from the checkpoint's: the checkpoint's must win
    cfg.test_dataloader = dict(dataset=dict(type='CocoDataset', metainfo=dict(
        classes=('a', 'b', 'c'), palette=[(255, 0, 0), (0, 255, 0), (0, 0, 255)]), pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(96, 64), keep_ratio=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))
    return cfg


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from mmft.apis import init_detector
    tmp = tmp_path_factory.mktemp('apis')
    cfg = _tiny_config()
    torch.manual_seed(0)
    model = init_detector(cfg)
    assert model.dataset_meta['classes'] == ('a', 'b', 'c')  # no checkpoint: the config's
    ckpt = str(tmp / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=CLASSES))), ckpt)
    images = []
    for i in range(2):
        images.append(str(tmp / f'img_{i}.png'))
        img = np.full((H, W, 3), 60, np.uint8)
        cv2.rectangle(img, (10 + 10 * i, 8), (40, 36), (30, 200, 240), -1)
        cv2.imwrite(images[-1], img)
    cfg_path = str(tmp / 'tiny.py')
    cfg.dump(cfg_path)
    return dict(cfg=cfg, cfg_path=cfg_path, ckpt=ckpt, images=images, tmp=tmp,
                state=model.state_dict())


def test_init_detector_loads_weights_and_classes_from_the_checkpoint(setup):
    from mmft.apis import init_detector
    model = init_detector(setup['cfg_path'], setup['ckpt'], device='cpu')
    assert model.dataset_meta['classes'] == CLASSES
    assert model.dataset_meta['palette'] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert init_detector(setup['cfg'], palette='coco').dataset_meta['palette'] == 'coco'
    assert not model.training and isinstance(model.cfg, Config)
    for key, value in setup['state'].items():
        torch.testing.assert_close(model.state_dict()[key], value)


def test_init_detector_refuses_a_checkpoint_of_another_class_count(setup):
    from mmft.apis import init_detector
    with pytest.raises(ValueError, match='does not fit the model.*num_classes'):
        init_detector(setup['cfg'], setup['ckpt'], cfg_options={
            'model.roi_head.bbox_head.num_classes': 5})


def test_init_detector_resolves_auto_heads_from_checkpoint_else_data(setup):
    from mmft.apis import init_detector
    auto = {f'model.roi_head.{h}.num_classes': 'auto' for h in ('bbox_head', 'mask_head')}
    model = init_detector(setup['cfg'], setup['ckpt'], cfg_options=auto)
    assert model.roi_head.bbox_head.num_classes == len(CLASSES)
    # no checkpoint: the test dataset's classes, as training would resolve them
    two = dict(auto, **{'test_dataloader.dataset.metainfo.classes': ('a', 'b')})
    assert init_detector(setup['cfg'], cfg_options=two).roi_head.mask_head.num_classes == 2


def test_inference_on_paths_and_arrays_gives_the_same_predictions(setup):
    from mmft.apis import inference_detector, init_detector
    from mmft.structures import DetDataSample
    model = init_detector(setup['cfg'], setup['ckpt'])
    one = inference_detector(model, setup['images'][0])
    assert isinstance(one, DetDataSample)
    pred = one.pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred) > 0
    assert pred.masks.shape[1:] == (H, W) and pred.masks.dtype == torch.bool  # original size
    assert (pred.bboxes[:, 2] <= W).all() and (pred.bboxes[:, 3] <= H).all()
    many = inference_detector(model, [cv2.imread(p) for p in setup['images']])
    assert isinstance(many, list) and len(many) == 2
    torch.testing.assert_close(many[0].pred_instances.bboxes, pred.bboxes)
    torch.testing.assert_close(many[0].pred_instances.scores, pred.scores)


def test_image_demo_writes_drawings_and_json(setup):
    from demo import image_demo
    out_dir = setup['tmp'] / 'demo_out'
    image_demo.main([osp.dirname(setup['images'][0]), setup['cfg_path'], '--weights',
                     setup['ckpt'], '--out-dir', str(out_dir), '--pred-score-thr', '0'])
    assert sorted(os.listdir(out_dir / 'vis')) == ['img_0.png', 'img_1.png']
    assert sorted(os.listdir(out_dir / 'preds')) == ['img_0.json', 'img_1.json']
    drawn = cv2.imread(str(out_dir / 'vis' / 'img_0.png'))
    assert drawn.shape == (H, W, 3)
    assert (drawn != cv2.imread(setup['images'][0])).any()   # something was drawn
    with open(out_dir / 'preds' / 'img_0.json') as f:
        preds = json.load(f)
    assert set(preds) == {'labels', 'scores', 'bboxes', 'masks'}
    assert len(preds['labels']) == len(preds['bboxes']) == len(preds['masks']) > 0
