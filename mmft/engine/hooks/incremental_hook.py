"""IncrementalHook: the training-time half of ``finetune.incremental``.

FinetuneRunner adds it when ``finetune.incremental`` is on (see
:mod:`mmft.finetune.incremental`). Each training iteration, before the student sees
the batch:

1. the training dataset's labels (indices into the new classes) become indices into
   the union (old classes first);
2. with ``pseudo_labels``, the frozen pretrained model (the teacher, built once from
   ``load_from``) predicts on the same images, and its confident old-class detections
   join the gt, so unlabelled old objects are not trained as background.

Working on the batch, not inside a head, makes it model-agnostic: any detector whose
``predict`` returns ``pred_instances`` works (two-stage, one-stage, with masks).
Checkpoints get the union as ``meta.dataset_meta.classes``.
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.structures import InstanceData

from mmft.finetune.incremental import add_pseudo_labels, build_teacher, label_map
from mmft.registry import HOOKS
from mmft.structures.det_data_sample import DetDataSample


@HOOKS.register_module()
class IncrementalHook(Hook):
    """Maps labels into the union and adds the teacher's pseudo-labels (module docstring)."""

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        from mmft.finetune.incremental import incremental_classes
        self.options = runner.finetune_cfg.incremental
        self.old, self.new, self.union = incremental_classes(runner.cfg)
        self.lookup = label_map(self.new, self.union)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.dataset_meta = dict(getattr(model, 'dataset_meta', None) or {},
                                  classes=self.union)
        self.teacher = None
        self.num_pseudo = 0
        if self.options.pseudo_labels:
            load_from = runner.cfg.get('load_from')
            if load_from is None:
                raise ValueError('finetune.incremental.pseudo_labels needs the pretrained '
                                 'model as teacher: set load_from to its checkpoint, or set '
                                 'finetune.incremental=dict(pseudo_labels=False)')
            device = next(model.parameters()).device
            self.teacher = build_teacher(runner.cfg.model, load_from, self.old,
                                         runner.finetune_cfg).to(device)
        runner.logger.info(
            f'finetune.incremental: {len(self.old)} old + {len(self.union) - len(self.old)} '
            f'new classes {list(self.union)}; pseudo-labels '
            f'{"on (score >= %.2f)" % self.options.score_thr if self.teacher else "off"}')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None
                          ) -> None:
        if data_batch is None:
            return
        samples = data_batch['data_samples']
        for sample in samples:
            gt = sample.gt_instances
            gt.labels = self.lookup.to(gt.labels.device)[gt.labels]
        if self.teacher is None:
            return
        with torch.no_grad():
            metas = [DetDataSample(metainfo=s.metainfo) for s in samples]
            data = self.teacher.data_preprocessor(
                dict(inputs=data_batch['inputs'], data_samples=metas), False)
            preds = self.teacher.predict(data['inputs'], data['data_samples'], rescale=False)
        for sample, pred in zip(samples, preds):
            result: InstanceData = pred.pred_instances
            before = len(sample.gt_instances)
            sample.gt_instances = add_pseudo_labels(
                sample.gt_instances, result, len(self.old), self.options.score_thr,
                self.options.iou_thr)
            self.num_pseudo += len(sample.gt_instances) - before

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if self.teacher is not None and isinstance(outputs, dict):
            runner.message_hub.update_scalar('train/num_pseudo_labels', self.num_pseudo)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        meta['dataset_meta'] = dict(meta.get('dataset_meta') or {}, classes=self.union)
