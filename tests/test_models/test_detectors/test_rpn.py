"""The RPN detector through the Runner: MMDetection's RPN recipe trains on the shapes data and
its proposals are evaluated with CocoMetric(metric='proposal_fast')."""
import os.path as osp

from mmengine.config import Config

from mmft.engine import FinetuneRunner
from tests.tiny_runs import REPO_ROOT, SOURCE_CLASSES, make_shapes_data, tiny_config

WIDTH = 16


def test_rpn_trains_and_its_proposals_recall_the_objects(tmp_path):
    shapes = make_shapes_data(str(tmp_path / 'shapes'), num_train=4, num_val=2)
    iters = 6
    cfg = tiny_config(shapes['source'], str(tmp_path / 'work'), SOURCE_CLASSES,
                      max_iters=iters, batch_size=2)
    model = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/models/rpn_r50_fpn.py')).model
    model.backbone.update(depth=18, base_channels=16, frozen_stages=-1, init_cfg=None)
    model.neck.update(in_channels=[16, 32, 64, 128], out_channels=WIDTH)
    model.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH,
                          anchor_generator=dict(scales=[4]))
    model.test_cfg.rpn.update(nms_pre=300, max_per_img=300)
    cfg.model = model
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
    cfg.merge_from_dict(dict(
        val_cfg=dict(type='ValLoop'),
        val_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=shapes['source'] + '/',
                         ann_file='val.json', data_prefix=dict(img='val/'),
                         metainfo=dict(classes=SOURCE_CLASSES), test_mode=True,
                         pipeline=pipeline)),
        # MMDetection's rpn_r50_fpn_1x_coco.py evaluates this way
        val_evaluator=dict(type='CocoMetric', ann_file=shapes['source'] + '/val.json',
                           metric='proposal_fast')))
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0].tolist()
    assert len(losses) == iters and losses[-1] < losses[0]
    assert set(runner.message_hub.log_scalars) >= {'train/loss_rpn_cls', 'train/loss_rpn_bbox'}
    metrics = runner.val()
    # a few iterations only: some objects are already recalled among the proposals
    assert metrics['coco/AR@1000'] > 0, metrics
    assert metrics['coco/AR@100'] <= metrics['coco/AR@300'] <= metrics['coco/AR@1000']
