"""finetune.incremental end to end: a 10-class shapes model learns 2 new classes from data
that labels only those, with the pretrained model's pseudo-labels (Mask R-CNN, RetinaNet)."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook

from mmft.checkpoint import torch_load_safely
from mmft.datasets.synthetic import generate_shapes_dataset
from mmft.engine import FinetuneRunner
from mmft.engine.hooks import IncrementalHook
from tests.test_engine.test_one_stage_runs import MODELS
from tests.tiny_runs import IMAGE_SIZE, SOURCE_CLASSES, make_shapes_data, tiny_config

NEW = ('pentagon', 'arrow')
UNION = SOURCE_CLASSES + NEW
EVAL_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                 dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                       'img_shape', 'scale_factor'))]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    out = make_shapes_data(root, num_train=4, num_val=2)
    for split, classes in (('train', NEW), ('val', UNION)):
        generate_shapes_dataset(osp.join(root, 'new'), classes=classes, num_images=4,
                                image_size=IMAGE_SIZE, seed=1, split_name=split, progress=False)
    out['new'] = osp.join(root, 'new')
    return out


def _model(family):
    if family == 'mask_rcnn':
        return None  # tiny_config's own
    model = dict(MODELS[family])
    # an untrained teacher scores ~0.01 (focal-loss prior): keep its boxes for the test
    model['test_cfg'] = dict(model['test_cfg'], score_thr=0.0)
    return model


@pytest.fixture(scope='module', params=['mask_rcnn', 'retinanet'])
def pretrained(request, data, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('pretrain'))
    cfg = tiny_config(data['source'], work_dir, SOURCE_CLASSES, max_iters=2)
    if _model(request.param) is not None:
        cfg.model = _model(request.param)
    FinetuneRunner.from_cfg(cfg).train()
    return request.param, osp.join(work_dir, 'iter_2.pth')


def _runner(data, pretrained, work_dir, custom_hooks=(), **incremental):
    family, ckpt = pretrained
    cfg = tiny_config(data['new'], str(work_dir), NEW, max_iters=2, load_from=ckpt,
                      finetune=dict(incremental=dict(score_thr=0.0, **incremental)),
                      custom_hooks=list(custom_hooks))
    if _model(family) is not None:
        cfg.model = _model(family)
    cfg.merge_from_dict(dict(
        val_dataloader=dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler',
                                                                      shuffle=False),
                            dataset=dict(type='CocoDataset', data_root=data['new'] + '/',
                                         ann_file='val.json', data_prefix=dict(img='val/'),
                                         test_mode=True, pipeline=EVAL_PIPELINE)),
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='IncrementalCocoMetric', metric='bbox')))
    return FinetuneRunner.from_cfg(cfg)


def test_union_head_pseudo_labels_and_union_checkpoint(data, pretrained, tmp_path):
    family, ckpt = pretrained
    runner = _runner(data, pretrained, tmp_path)
    state = runner.model.state_dict()
    key = 'roi_head.bbox_head.fc_cls.weight' if family == 'mask_rcnn' else \
        'bbox_head.retina_cls.weight'
    per_anchor = 1 if family == 'mask_rcnn' else 9
    assert state[key].shape[0] == per_anchor * (len(UNION) + (family == 'mask_rcnn'))
    runner.train()
    # every old row came from the checkpoint; the new ones were initialised
    report = runner.load_report
    assert [m.how for m in report.class_matches] == ['name'] * 10 + ['new'] * 2
    hook = next(h for h in runner.hooks if isinstance(h, IncrementalHook))
    assert hook.teacher is not None and hook.num_pseudo > 0
    assert not any(p.requires_grad for p in hook.teacher.parameters())

    # one batch through the hook: labels of the new data move past the old classes, and the
    # teacher's boxes come in as old classes
    batch = next(iter(runner.train_dataloader))
    labelled = [len(s.gt_instances) for s in batch['data_samples']]
    hook.before_train_iter(runner, 0, batch)
    for sample, n in zip(batch['data_samples'], labelled):
        labels = sample.gt_instances.labels
        assert labels[:n].min() >= len(SOURCE_CLASSES)
        assert (labels[n:] < len(SOURCE_CLASSES)).all()
    assert sum(len(s.gt_instances) for s in batch['data_samples']) > sum(labelled)

    meta = torch_load_safely(osp.join(str(tmp_path), 'iter_2.pth'))['meta']
    assert tuple(meta['dataset_meta']['classes']) == UNION
    assert tuple(runner.model.dataset_meta['classes']) == UNION

    metrics = runner.val()  # evaluated over the 12 classes
    for name in ('old', 'new', 'hmean'):
        assert f'coco/bbox_{name}_mAP' in metrics


def test_distillation_of_dense_old_class_outputs(data, pretrained, tmp_path):
    family, _ = pretrained
    runner = _runner(data, pretrained, tmp_path, pseudo_labels=False)
    losses = []
    runner.register_hook(_LossProbe(losses), priority='LOWEST')
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, IncrementalHook))
    assert hook.num_pseudo == 0
    student, teacher = hook.channels
    if family == 'mask_rcnn':  # the RPN objectness, all 3 anchors' channels
        assert list(student) == ['rpn_head.rpn_cls'] and student['rpn_head.rpn_cls'] is None
    else:  # anchor a, old class c: channel a * 12 + c in the student, a * 10 + c in the teacher
        cls = 'bbox_head.retina_cls'
        assert student[cls].tolist() == [a * 12 + c for a in range(9) for c in range(10)]
        assert teacher[cls].tolist() == list(range(90))
    assert len(losses) == 2 and all(v >= 0 for v in losses)
    # the student starts as the teacher on the old outputs (BatchNorm statistics of the
    # student's training mode aside)
    assert losses[0] < 1e-3
    assert not hasattr(runner.model.__dict__, 'loss') and 'loss' not in runner.model.__dict__


def test_roi_distillation_on_shared_proposals(data, pretrained, tmp_path):
    family, _ = pretrained
    if family != 'mask_rcnn':  # one-stage: no RoI head, so nothing to distil without dense
        with pytest.raises(ValueError, match='nothing to distil in RetinaNet with '
                                             'distill_dense=False'):
            _runner(data, pretrained, tmp_path, pseudo_labels=False,
                    distill_dense=False).train()
        return
    runner = _runner(data, pretrained, tmp_path, distill_dense=False, distill_roi_num=8)
    losses = []
    runner.register_hook(_LossProbe(losses, ('loss_distill_roi_cls', 'loss_distill_roi_bbox',
                                             'loss_distill')), priority='LOWEST')
    boxes = _NewBoxProbe()
    runner.register_hook(boxes, priority='LOWEST')
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, IncrementalHook))
    assert hook.recorders is None and hook.roi_distiller is None  # removed after the run
    assert len(losses) == 2
    for cls, bbox, dense in losses:
        assert cls >= 0 and bbox >= 0 and dense is None
    assert 'loss' not in runner.model.__dict__
    # the distiller was given each image's labelled (new-class) boxes, not the pseudo-labels
    assert len(boxes.given) == 2 and boxes.given == boxes.labelled
    assert boxes.pseudo > 0 and all(n > 0 for counts in boxes.given for n in counts)


class _NewBoxProbe(Hook):
    """Records the boxes the RoI distiller is given and the batch's new / pseudo labels."""

    def __init__(self):
        self.given, self.labelled, self.pseudo = [], [], 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        # after IncrementalHook's: the labels index the union, pseudo-labels are in
        old = len(SOURCE_CLASSES)
        labels = [s.gt_instances.labels for s in data_batch['data_samples']]
        self.labelled.append([int((lab >= old).sum()) for lab in labels])
        self.pseudo += sum(int((lab < old).sum()) for lab in labels)
        distiller = next(h for h in runner.hooks if isinstance(h, IncrementalHook)).roi_distiller
        if 'loss' not in distiller.__dict__:
            loss = distiller.loss

            def probe(new_boxes=None):
                self.given.append([len(b) for b in new_boxes])
                return loss(new_boxes)
            distiller.loss = probe


def test_teacher_pieces_can_be_switched_off(data, pretrained, tmp_path):
    # NumClassCheckHook (in MMDetection's SSD configs) counts the union, not the new classes
    runner = _runner(data, pretrained, tmp_path, pseudo_labels=False, distill=False,
                     custom_hooks=[dict(type='NumClassCheckHook')])
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, IncrementalHook))
    assert hook.teacher is None and hook.num_pseudo == 0


class _LossProbe(Hook):
    def __init__(self, losses, names=None):
        self.losses, self.names = losses, names

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.names is None:
            self.losses.append(float(torch.as_tensor(outputs['loss_distill']).detach()))
            return
        self.losses.append([None if n not in outputs else
                            float(torch.as_tensor(outputs[n]).detach()) for n in self.names])
