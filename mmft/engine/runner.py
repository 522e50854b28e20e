"""FinetuneRunner: MMEngine's Runner with the fine-tuning steps in its loading path.

What it adds, in the order a run meets it:

1. ``from_cfg``: ``num_classes='auto'`` heads get the dataset's class count;
   a head whose count differs from the dataset's stops the run here.
2. ``build_model``: ``finetune.freeze`` patterns freeze parameters before DDP
   wraps the model and before the optimizer exists.
   ``wrap_model`` keeps frozen norm layers in eval mode after ``sync_bn`` replaced them.
3. ``build_optim_wrapper``: frozen parameters are parked outside the optimizer;
   ``auto_scale_lr`` scales their lr too, for when they thaw.
4. ``load_checkpoint`` (``load_from``): :func:`mmft.finetune.load.load_pretrained`
   (foreign formats, exclude, class-aware transfer, shape skips) and the load
   report, printed and written to ``<log_dir>/load_report.txt`` (by rank 0; every rank
   loads).
   Resuming loads the checkpoint untouched, as MMEngine does.
5. ``resume='auto'`` (``--resume``): resume from the work_dir's latest
   checkpoint when there is one, else fine-tune from ``load_from``.
"""
import copy
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmengine.runner.loops import BaseLoop
from torch import nn

from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.freeze import freeze, keep_frozen_norms_in_eval, parameter_counts, unfreeze
from mmft.finetune.io import torch_load_safely
from mmft.finetune.load import load_pretrained
from mmft.finetune.optim_groups import park_frozen, unpark
from mmft.finetune.report import LoadReport
from mmft.registry import RUNNERS


@RUNNERS.register_module()
class FinetuneRunner(Runner):
    """A Runner that fine-tunes (see the module docstring); a drop-in for ``Runner``."""

    @classmethod
    def from_cfg(cls, cfg) -> 'FinetuneRunner':
        cfg = copy.deepcopy(cfg)
        resolve_num_classes(cfg)
        FinetuneConfig.from_cfg(cfg.get('finetune'))  # fail on a bad section before building
        return super().from_cfg(cfg)

    @property
    def finetune_cfg(self) -> FinetuneConfig:
        return FinetuneConfig.from_cfg(self.cfg.get('finetune'))

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.model.module if is_model_wrapper(self.model) else self.model

    # --------------------------------------------------------------- freezing
    def build_model(self, model: Union[nn.Module, Dict]) -> nn.Module:
        model = super().build_model(model)
        ft = self.finetune_cfg
        if ft.freeze:
            names = freeze(model, ft.freeze, norm_eval=ft.norm_eval)
            counts = parameter_counts(model)
            self.logger.info(f'finetune.freeze froze {len(names)} parameter tensors; '
                             f'trainable {counts["trainable"]:,} / frozen {counts["frozen"]:,} '
                             'elements')
        return model

    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model: nn.Module) -> nn.Module:
        model = super().wrap_model(model_wrapper_cfg, model)
        # sync_bn (and its revert without DDP) swaps the norm layers for new modules in
        # train mode, without freeze()'s eval pinning: pin the frozen ones again and
        # re-apply what train() decides (norm_eval, frozen stages)
        inner = model.module if is_model_wrapper(model) else model
        ft = self.finetune_cfg
        if ft.freeze and ft.norm_eval:
            keep_frozen_norms_in_eval(inner)
        return model.train(inner.training)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        stages = self.finetune_cfg.unfreeze
        if stages:
            custom_hooks = list(custom_hooks or [])
            custom_hooks.append(dict(type='GradualUnfreezeHook'))
        super().register_hooks(default_hooks, custom_hooks)

    def build_optim_wrapper(self, optim_wrapper):
        # MMEngine's paramwise constructor leaves frozen parameters out altogether; build with
        # every parameter so that each gets its group (lr_mult, decay_mult), then park the
        # frozen ones until they thaw
        frozen = [p for p in self.unwrapped_model.parameters() if not p.requires_grad]
        for param in frozen:
            param.requires_grad_(True)
        try:
            wrapper = super().build_optim_wrapper(optim_wrapper)
        finally:
            for param in frozen:
                param.requires_grad_(False)
        optimizer = getattr(wrapper, 'optimizer', None)
        if optimizer is None:
            raise TypeError('FinetuneRunner supports one optimizer (OptimWrapper / '
                            'AmpOptimWrapper); OptimWrapperDict is not supported with freezing')
        self.parked_param_groups = park_frozen(optimizer)
        return wrapper

    def scale_lr(self, optim_wrapper, auto_scale_lr: Optional[Dict] = None) -> None:
        # parked groups join the optimizer when they thaw: scale their lr now with the rest
        optimizer = optim_wrapper.optimizer
        kept = list(optimizer.param_groups)
        optimizer.param_groups[:] = kept + getattr(self, 'parked_param_groups', [])
        try:
            super().scale_lr(optim_wrapper, auto_scale_lr)
        finally:
            optimizer.param_groups[:] = kept

    def unfreeze(self, patterns: Sequence[str]) -> List[str]:
        """Make ``patterns`` trainable now and give them to the optimizer."""
        names = unfreeze(self.unwrapped_model, patterns)
        if not names:
            return names
        optimizer = self.optim_wrapper.optimizer
        schedulers = self.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        unpark(optimizer, getattr(self, 'parked_param_groups', []), schedulers)
        if is_model_wrapper(self.model):
            # DDP fixed its set of gradient-synchronised parameters when it was built
            self.model = self.wrap_model(self.cfg.get('model_wrapper_cfg'), self.model.module)
        self.logger.info(f'unfroze {len(names)} parameter tensors ({list(patterns)})')
        return names

    # --------------------------------------------------------------- loading
    def load_or_resume(self) -> None:
        """``resume='auto'``: the latest checkpoint of this work_dir if any, else
        ``load_from``. ``resume=True`` with ``load_from``: resume from that file.
        ``resume=True`` without: the latest checkpoint (MMEngine's behaviour)."""
        if self._has_loaded:
            return
        if self._resume == 'auto' or (self._resume and self._load_from is None):
            latest = find_latest_checkpoint(self.work_dir)
            if latest is not None:
                self.logger.info(f'resuming from the latest checkpoint {latest}')
                self._resume_from(latest)
                return
            if self._resume == 'auto' and self._load_from is not None:
                self.logger.info(f'no checkpoint in {self.work_dir} to resume; fine-tuning '
                                 f'from load_from {self._load_from}')
                self._resume = False
                self.load_checkpoint(self._load_from)
            return
        if self._resume:
            self._resume_from(self._load_from)
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)

    def _resume_from(self, filename: str) -> None:
        stages = self.finetune_cfg.unfreeze
        if stages and self._train_loop is not None:
            # the saved optimizer holds the groups unfrozen before the save: recreate them
            meta = (torch_load_safely(filename).get('meta') or {})
            for stage in stages:
                if stage_reached(stage, meta.get('iter', 0), meta.get('epoch', 0)):
                    self.unfreeze(stage.patterns)
        self.resume(filename)
        self._has_loaded = True

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        if self._resume:
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        report = load_pretrained(self.unwrapped_model, filename, self.finetune_cfg,
                                 new_classes=self.dataset_classes())
        self._has_loaded = True
        self._log_report(report)
        self.load_report = report
        return report

    def dataset_classes(self) -> Optional[Tuple[str, ...]]:
        """Class names of the data this run uses (built dataset first, else config)."""
        for loop in (self._train_loop, self._test_loop, self._val_loop):
            if isinstance(loop, BaseLoop):
                classes = getattr(loop.dataloader.dataset, 'metainfo', {}).get('classes')
                if classes is not None:
                    return tuple(classes)
        return resolve_num_classes(copy.deepcopy(self.cfg))

    def _log_report(self, report: LoadReport) -> None:
        if not is_main_process():
            return  # every rank loads the same checkpoint the same way; rank 0 tells
        self.logger.info('\n' + report.summary())
        path = osp.join(self.log_dir, 'load_report.txt')
        with open(path, 'w') as f:
            f.write(report.full_text())
        self.logger.info(f'every key of the load, bucket by bucket: {path}')


def stage_reached(stage: Any, iteration: int, epoch: int) -> bool:
    """Whether an unfreeze stage's time (iter or epoch, 0-based) has come."""
    if stage.iter is not None:
        return iteration >= stage.iter
    return epoch >= stage.epoch
