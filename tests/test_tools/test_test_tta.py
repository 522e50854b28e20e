"""tools/test.py --tta: a trained tiny Mask R-CNN tested on flipped + unflipped views, the
predictions merged by NMS, and the COCO metric computed."""
import pickle

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmft.engine import FinetuneRunner
from mmft.finetune.config import resolve_num_classes
from mmft.registry import DATASETS, MODELS
from mmft.utils import register_all_modules
from tests.tiny_runs import SOURCE_CLASSES, _dataset, make_shapes_data, tiny_config
from tools import test as test_tool

from torchvision.ops import batched_nms


def test_tta_merges_flipped_views_and_computes_the_metric(tmp_path):
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=2)
    cfg = tiny_config(shapes['source'], str(tmp_path / 'train'), SOURCE_CLASSES, max_iters=2)
    FinetuneRunner.from_cfg(cfg).train()
    ckpt = str(tmp_path / 'train' / 'iter_2.pth')

    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
    test_cfg = tiny_config(shapes['source'], str(tmp_path / 'tta'), SOURCE_CLASSES)
    test_cfg.test_dataloader = dict(batch_size=2, num_workers=0,
                                    sampler=dict(type='DefaultSampler', shuffle=False),
                                    dataset=_dataset(shapes['source'], 'val', SOURCE_CLASSES,
                                                     pipeline))
    test_cfg.test_evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'],
                                   ann_file=f"{shapes['source']}/val.json")
    test_cfg.test_cfg = dict(type='TestLoop')
    # low thresholds so that the random-ish tiny model predicts plenty to merge
    test_cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=20)
    path = str(tmp_path / 'tta.py')
    test_cfg.dump(path)

    out = tmp_path / 'tta.pkl'
    metrics = test_tool.main([path, ckpt, '--tta', '--out', str(out)])
    assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' in metrics
    with open(out, 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 2 and dumped[0]['flip'] is False

    # the same merge, computed independently from the detector's two single-view predictions
    register_all_modules()
    cfg = Config.fromfile(path)
    test_tool.use_tta(cfg)
    resolve_num_classes(cfg)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    detector = MODELS.build(cfg.model.module)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    detector.load_state_dict(state)
    detector.eval()
    batch = pseudo_collate([dataset[0]])
    assert [s[0].flip for s in batch['data_samples']] == [True, False]
    with torch.no_grad():
        views = [detector.test_step(dict(inputs=batch['inputs'][i],
                                         data_samples=batch['data_samples'][i]))[0]
                 for i in range(2)]
    w = views[0].ori_shape[1]
    flipped = views[0].pred_instances.bboxes.clone()
    flipped[:, [0, 2]] = w - views[0].pred_instances.bboxes[:, [2, 0]]
    boxes = torch.cat([flipped, views[1].pred_instances.bboxes])
    scores = torch.cat([v.pred_instances.scores for v in views])
    labels = torch.cat([v.pred_instances.labels for v in views])
    assert len(views[0].pred_instances) > 0 and len(views[1].pred_instances) > 0
    keep = batched_nms(boxes, scores, labels, 0.5)[:100]
    expected = dumped[[d['img_path'] for d in dumped].index(views[1].img_path)]['pred_instances']
    torch.testing.assert_close(expected['bboxes'], boxes[keep])
    torch.testing.assert_close(expected['scores'], scores[keep])
    # merging removed duplicates: fewer than the two views together
    assert len(keep) < len(boxes)
