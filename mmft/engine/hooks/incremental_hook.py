"""IncrementalHook: the training-time half of ``finetune.incremental``.

FinetuneRunner adds it when ``finetune.incremental`` is on (see
:mod:`mmft.finetune.incremental`). Each training iteration, before the student sees
the batch:

1. the training dataset's labels (indices into the new classes) become indices into
   the union (old classes first);
2. with ``pseudo_labels``, the frozen pretrained model (the teacher, built once from
   ``load_from``) predicts on the same images, and its confident old-class detections
   join the gt, so unlabelled old objects are not trained as background;
3. with ``distill``, the teacher's dense old-class logits of that pass (one-stage class
   outputs, RPN objectness) are kept, and the student's ``loss()`` gains
   ``loss_distill``; for two-stage detectors also the teacher's features, on which its
   RoI head scores the student's sampled RoIs: ``loss_distill_roi_cls`` / ``_bbox``
   (:mod:`mmft.finetune.distill`). The student's ``loss`` is wrapped on the instance for
   the run and restored after it.

Working on the batch, not inside a head, makes it model-agnostic: any detector whose
``predict`` returns ``pred_instances`` works (two-stage, one-stage, with masks).
Checkpoints get the union as ``meta.dataset_meta.classes``.
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.structures import InstanceData

from mmft.finetune.distill import (OutputRecorder, RoIDistiller, channel_maps,
                                   distillation_loss, roi_distillable)
from mmft.finetune.incremental import add_pseudo_labels, build_teacher, label_map
from mmft.registry import HOOKS
from mmft.structures.det_data_sample import DetDataSample


@HOOKS.register_module()
class IncrementalHook(Hook):
    """Maps labels into the union and adds the teacher's pseudo-labels (module docstring)."""

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        from mmft.finetune.incremental import incremental_classes
        if not hasattr(runner, 'finetune_cfg'):
            raise TypeError("IncrementalHook needs mmft's FinetuneRunner (it reads "
                            'finetune.incremental and adds this hook itself); remove '
                            'runner_type from the config or set it to FinetuneRunner')
        self.options = runner.finetune_cfg.incremental
        self.old, self.new, self.union = incremental_classes(runner.cfg)
        self.lookup = label_map(self.new, self.union)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.dataset_meta = dict(getattr(model, 'dataset_meta', None) or {},
                                  classes=self.union)
        self.teacher = None
        self.num_pseudo = 0
        self.recorders = self.roi_distiller = self.student = self.channels = None
        if self.options.pseudo_labels or self.options.distill:
            load_from = runner.cfg.get('load_from')
            if load_from is None:
                raise ValueError('finetune.incremental needs the pretrained model as teacher '
                                 'for pseudo_labels and distill: set load_from to its '
                                 'checkpoint, or set finetune.incremental=dict('
                                 'pseudo_labels=False, distill=False)')
            device = next(model.parameters()).device
            self.teacher = build_teacher(
                runner.cfg.model, load_from, self.old, runner.finetune_cfg,
                self.options.score_thr if self.options.pseudo_labels else None).to(device)
        if self.options.distill:
            self._start_distillation(model)
        pseudo = f'on (score >= {self.options.score_thr:.2f})' if self.options.pseudo_labels \
            else 'off'
        distilled = ([f'dense {list(self.channels[0])}'] if self.recorders else []) + \
            ([f'RoI head on {self.options.distill_roi_num} shared RoIs per image '
              f'({self.options.distill_roi_loss})'] if
             self.roi_distiller else [])
        runner.logger.info(
            f'finetune.incremental: {len(self.old)} old + {len(self.union) - len(self.old)} '
            f'new classes {list(self.union)}; pseudo-labels {pseudo}; distillation '
            f'{"on: " + "; ".join(distilled) if distilled else "off"}')

    def _start_distillation(self, model) -> None:
        options = self.options
        if options.distill_dense:
            self.channels = channel_maps(model, self.teacher, len(self.old))
            self.recorders = (OutputRecorder(model, list(self.channels[0]), training_only=True),
                              OutputRecorder(self.teacher, list(self.channels[1])))
        if options.distill_roi and roi_distillable(model):
            self.roi_distiller = RoIDistiller(model, self.teacher, len(self.old),
                                              options.distill_roi_num, options.distill_roi_bbox,
                                              options.distill_roi_loss,
                                              options.distill_roi_new_iou)
        if self.recorders is None and self.roi_distiller is None:
            raise ValueError(f'finetune.incremental.distill: nothing to distil in '
                             f'{type(model).__name__} with distill_dense=False (distill_roi '
                             'needs a StandardRoIHead); set distill=False or distill_dense=True')
        student_loss = model.loss
        recorders, roi = self.recorders, self.roi_distiller
        num_old = len(self.old)

        def loss_with_distillation(batch_inputs, batch_data_samples):
            if recorders is not None:
                recorders[0].clear()
            if roi is not None:
                roi.clear()
            losses = student_loss(batch_inputs, batch_data_samples)
            if recorders is not None:
                losses['loss_distill'] = options.distill_weight * distillation_loss(
                    recorders[0].outputs, recorders[1].outputs, *self.channels)
            if roi is not None:
                # labels index the union here (before_train_iter): old ones are pseudo-labels
                new_boxes = [s.gt_instances.bboxes[s.gt_instances.labels >= num_old]
                             for s in batch_data_samples]
                losses.update({name: options.distill_roi_weight * value
                               for name, value in roi.loss(new_boxes).items()})
            return losses

        model.loss = loss_with_distillation  # this run only: after_train removes it
        self.student = model

    def after_train(self, runner) -> None:
        for recorder in (self.recorders or ()) + ((self.roi_distiller,) if self.roi_distiller
                                                  else ()):
            recorder.remove()
        if self.student is not None:
            del self.student.loss  # the class's own loss again
        self.recorders = self.roi_distiller = self.student = None

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None
                          ) -> None:
        if data_batch is None:
            return
        samples = data_batch['data_samples']
        for sample in samples:
            for field in ('gt_instances', 'ignored_instances'):
                instances = sample.get(field, None)
                if instances is not None and 'labels' in instances:
                    instances.labels = self.lookup.to(instances.labels.device)[instances.labels]
        if self.teacher is None:
            return
        if self.recorders is not None:
            self.recorders[1].clear()
        with torch.no_grad():
            metas = [DetDataSample(metainfo=s.metainfo) for s in samples]
            data = self.teacher.data_preprocessor(
                dict(inputs=data_batch['inputs'], data_samples=metas), False)
            if not self.options.pseudo_labels:  # the teacher's outputs for distillation only
                self.teacher._forward(data['inputs'], data['data_samples'])
                return
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
        if self.options.pseudo_labels and isinstance(outputs, dict):
            runner.message_hub.update_scalar('train/num_pseudo_labels', self.num_pseudo)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        meta['dataset_meta'] = dict(meta.get('dataset_meta') or {}, classes=self.union)
