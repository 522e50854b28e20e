"""FinetuneRunner: MMEngine's Runner with the fine-tuning steps in its loading path.

What it adds, in the order a run meets it:

1. ``from_cfg``: ``num_classes='auto'`` heads get the dataset's class count;
   a head whose count differs from the dataset's stops the run here.
2. ``build_model``: ``finetune.freeze`` patterns freeze parameters before DDP
   wraps the model and before the optimizer exists; ``finetune.unfreeze``
   patterns are checked against them. ``wrap_model`` keeps frozen norm layers
   in eval mode after ``sync_bn`` replaced them.
3. ``build_optim_wrapper``: every parameter gets its param group (paramwise
   ``lr_mult`` included), then the frozen ones are parked outside the optimizer;
   ``auto_scale_lr`` scales the parked groups too, for when they thaw.
4. ``load_checkpoint`` (``load_from``): :func:`mmft.finetune.load.load_checkpoint` in
   'finetune' mode (foreign formats, URLs, exclude, class-aware transfer, shape
   skips), then the hooks' ``after_load_checkpoint`` (an EMA model copies the
   loaded weights), and the load report, logged and written to
   ``<log_dir>/load_report.txt`` by rank 0. ``load_exact`` (``tools/test.py``) is
   the same in 'exact' mode. Resuming loads the checkpoint untouched, as MMEngine
   does but through the safe reader, after re-applying the unfreezing stages the
   checkpoint had passed (so the optimizer state fits).
5. ``resume='auto'`` (``--resume``): resume from the work_dir's latest
   checkpoint when there is one, else fine-tune from ``load_from``.
"""
import copy
import os.path as osp
from functools import cached_property
from typing import Any, Dict, List, Optional, Tuple, Union

from mmengine.dist import is_main_process
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmengine.runner.loops import BaseLoop
from torch import nn
from torch.optim import Optimizer

from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.incremental import apply_incremental, incremental_classes
from mmft.finetune.freeze import freeze, keep_frozen_norms_in_eval, parameter_counts, unfreeze
from mmft.checkpoint import torch_load_safely
from mmft.checkpoint.reader import check_readable
from mmft.finetune.load import load_checkpoint
from mmft.finetune.optim_groups import park_frozen, unpark
from mmft.finetune.patterns import check_patterns_match
from mmft.finetune.report import LoadReport
from mmft.registry import RUNNERS
from .checkpoints import find_resume_checkpoint

#: checkpoint meta key: indices of the finetune.unfreeze stages applied, in order
UNFROZEN_STAGES = 'finetune_unfrozen_stages'


@RUNNERS.register_module()
class FinetuneRunner(Runner):
    """A Runner that fine-tunes (see the module docstring); a drop-in for ``Runner``."""

    @classmethod
    def from_cfg(cls, cfg) -> 'FinetuneRunner':
        cfg = copy.deepcopy(cfg)
        ft = FinetuneConfig.from_cfg(cfg.get('finetune'))  # fail on a bad section first
        if ft.incremental.enabled:
            apply_incremental(cfg)  # the heads count the old classes and the new ones
        else:
            resolve_num_classes(cfg)
        return super().from_cfg(cfg)

    @cached_property
    def finetune_cfg(self) -> FinetuneConfig:
        return FinetuneConfig.from_cfg(self.cfg.get('finetune'))

    @property
    def unwrapped_model(self) -> nn.Module:
        # a test-time-augmentation wrapper holds the detector as a checkpoint stores it
        wrapped = is_model_wrapper(self.model) or isinstance(self.model, BaseTTAModel)
        return self.model.module if wrapped else self.model

    # --------------------------------------------------------------- freezing
    def build_model(self, model: Union[nn.Module, Dict]) -> nn.Module:
        model = super().build_model(model)
        ft = self.finetune_cfg
        #: what finetune.freeze froze: all that finetune.unfreeze may thaw (parameters the
        #: model freezes itself, e.g. backbone.frozen_stages, stay frozen)
        self.finetune_frozen = set(freeze(model, ft.freeze, norm_eval=ft.norm_eval)
                                   if ft.freeze else [])
        self.unfrozen_stages: List[int] = []
        for stage in ft.unfreeze:
            check_patterns_match(sorted(self.finetune_frozen), stage.patterns,
                                 'finetune.unfreeze (among the finetune.freeze parameters)')
        if ft.freeze:
            counts = parameter_counts(model)
            self.logger.info(f'finetune.freeze froze {len(self.finetune_frozen)} parameter '
                             f'tensors; trainable {counts["trainable"]:,} / frozen '
                             f'{counts["frozen"]:,} elements')
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
        custom_hooks = list(custom_hooks or [])
        if self.finetune_cfg.unfreeze:
            custom_hooks.append(dict(type='GradualUnfreezeHook'))
        if self.finetune_cfg.incremental.enabled:
            custom_hooks.append(dict(type='IncrementalHook'))
        custom_hooks.append(dict(type='ScheduleCheckHook'))  # warns: lr schedule vs loop length
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
        self.parked_param_groups = [(opt, park_frozen(opt)) for opt in _optimizers(wrapper)]
        return wrapper

    def scale_lr(self, optim_wrapper, auto_scale_lr: Optional[Dict] = None) -> None:
        # parked groups join the optimizer when they thaw: scale their lr now with the rest
        parked = getattr(self, 'parked_param_groups', [])
        kept = [list(opt.param_groups) for opt, _ in parked]
        for opt, groups in parked:
            opt.param_groups.extend(groups)
        try:
            super().scale_lr(optim_wrapper, auto_scale_lr)
        finally:
            for (opt, _), groups in zip(parked, kept):
                opt.param_groups[:] = groups

    def apply_unfreeze_stage(self, index: int) -> List[str]:
        """Thaw stage ``index`` of ``finetune.unfreeze`` and give it to the optimizer."""
        if index in self.unfrozen_stages:
            return []
        stage = self.finetune_cfg.unfreeze[index]
        names = unfreeze(self.unwrapped_model, stage.patterns, only=self.finetune_frozen)
        self.unfrozen_stages.append(index)
        schedulers = self.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for opt, parked in getattr(self, 'parked_param_groups', []):
            unpark(opt, parked, schedulers)
        if names and is_model_wrapper(self.model):
            # DDP fixed its set of gradient-synchronised parameters when it was built
            self.model = self.wrap_model(self.cfg.get('model_wrapper_cfg'), self.model.module)
        self.logger.info(f'finetune.unfreeze stage {index}: {len(names)} parameter tensors '
                         f'thawed ({stage.patterns})')
        return names

    # --------------------------------------------------------------- loading
    def load_or_resume(self) -> None:
        """``resume='auto'``: the latest checkpoint of this work_dir if any, else
        ``load_from``. ``resume=True`` with ``load_from``: resume from that file.
        ``resume=True`` without: the latest checkpoint (MMEngine's behaviour).

        "Latest" follows :func:`~mmft.engine.checkpoints.find_resume_checkpoint`: a stale
        ``last_checkpoint`` falls back to the newest complete checkpoint with a warning; a
        ``last_checkpoint`` with no complete checkpoint left stops the run instead of
        quietly fine-tuning from ``load_from`` again."""
        if self._has_loaded:
            return
        if self._resume == 'auto' or (self._resume and self._load_from is None):
            latest = latest_checkpoint(self.work_dir)
            if latest is not None:
                self.logger.info(f'resuming from the latest checkpoint {latest}')
                self.resume(latest)
            elif self._resume == 'auto' and self._load_from is not None:
                self.logger.info(f'no checkpoint in {self.work_dir} to resume; fine-tuning '
                                 f'from load_from {self._load_from}')
                self._resume = False
                self.load_checkpoint(self._load_from)
        elif self._resume:
            self.resume(self._load_from)
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
        self._has_loaded = True

    def load_checkpoint(self, filename: str, map_location: Union[str, Any] = 'cpu',
                        strict: bool = False, revise_keys: list = [(r'^module.', '')]) -> dict:
        """Resume: the checkpoint untouched. ``load_from``: the fine-tuning load.

        Both read through mmft's safe reader (``weights_only=True`` and the allow-list),
        whatever torch's default.

        Returns:
            The checkpoint dict (for ``load_from``: the model's state after loading and
            the file's meta); the load report is ``self.load_report``.
        """
        if self._resume:
            return self._load_for_resume(filename, map_location, strict, revise_keys)
        report = load_checkpoint(self.unwrapped_model, filename, 'finetune', self.finetune_cfg,
                                 classes=self.dataset_classes())
        return self._after_load(report)

    def load_exact(self, filename: str) -> dict:
        """Load a checkpoint of this very model (``tools/test.py``): every tensor must fit
        and the checkpoint's classes must be the dataset's."""
        report = load_checkpoint(self.unwrapped_model, filename, 'exact',
                                 classes=self.dataset_classes())
        return self._after_load(report)

    def _after_load(self, report: LoadReport) -> dict:
        checkpoint = dict(state_dict=self.unwrapped_model.state_dict(), meta=report.source_meta)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        self._has_loaded = True
        self.load_report = report
        self._log_report(report)
        return checkpoint

    def _load_for_resume(self, filename: str, map_location: Union[str, Any], strict: bool,
                         revise_keys: list) -> dict:
        """MMEngine's resume load, reading through the safe reader."""
        check_readable(filename)
        checkpoint = torch_load_safely(filename, map_location=map_location)
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if not isinstance(meta, dict) or not {'epoch', 'iter'} <= set(meta):
            raise ValueError(
                f'cannot resume from {filename}: it holds no training state (meta.epoch / '
                'meta.iter), only weights. To start a new run from these weights, use '
                f'load_from={filename!r} without --resume.')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        _load_checkpoint_to_model(self.unwrapped_model, checkpoint, strict,
                                  revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'resumed weights from {filename}')
        # the saved optimizer has the groups of the stages thawed before the save
        for index in meta.get(UNFROZEN_STAGES, []):
            self.apply_unfreeze_stage(index)
        return checkpoint

    def dataset_classes(self) -> Optional[Tuple[str, ...]]:
        """Class names of the data this run uses (built dataset first, else config);
        with ``finetune.incremental``, the old classes then the new ones."""
        if self.finetune_cfg.incremental.enabled:
            return incremental_classes(self.cfg)[2]
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


def _optimizers(wrapper) -> List[Optimizer]:
    """The torch optimizers of an OptimWrapper or an OptimWrapperDict."""
    if isinstance(wrapper, OptimWrapperDict):
        return [w.optimizer for w in wrapper.optim_wrappers.values()]
    return [wrapper.optimizer]


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: what ``last_checkpoint`` names, else (with a
    warning) the newest complete ``iter_*.pth`` / ``epoch_*.pth``; see
    :func:`mmft.engine.checkpoints.find_resume_checkpoint` (which raises when
    ``last_checkpoint`` exists but no complete checkpoint is left)."""
    return find_resume_checkpoint(work_dir)
