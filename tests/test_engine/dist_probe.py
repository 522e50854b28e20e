"""Test-only hook: what each rank of a run saw, written to ``<work_dir>/probe_rank<R>.json``.

test_distributed.py loads it into torchrun's processes through the config's
``custom_imports``; mmft itself never imports it. Parameters are compared across
ranks by SHA-1 of their bytes, so "identical" means bit-identical.
"""
import hashlib
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmft.registry import HOOKS


def digest(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-1 of the tensors' bytes, in order."""
    sha = hashlib.sha1()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


@HOOKS.register_module()
class DistProbeHook(Hook):
    """Record per rank: the setup before training, each iteration's samples and resulting
    parameters, and the metrics of val / test."""

    priority = 'LOWEST'  # after the unfreeze and optimizer hooks of the same iteration

    def __init__(self) -> None:
        self.record: Dict = dict(iters=[], metrics=[])
        self._frozen_at_start: List[str] = []

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _params(self, runner) -> Dict[str, torch.nn.Parameter]:
        return dict(self._model(runner).named_parameters())

    def _optimizer_state(self, runner) -> Dict:
        names = {id(p): n for n, p in self._params(runner).items()}
        groups = runner.optim_wrapper.optimizer.param_groups
        return dict(optimized=sorted(names[id(p)] for g in groups for p in g['params']),
                    lr=[g['lr'] for g in groups],
                    initial_lr=[g.get('initial_lr') for g in groups])

    def before_train(self, runner) -> None:
        params = self._params(runner)
        self._frozen_at_start = [n for n, p in params.items() if not p.requires_grad]
        report = getattr(runner, 'load_report', None)
        self.record.update(
            rank=get_rank(), world_size=get_world_size(),
            wrapper=type(runner.model).__name__,
            find_unused_parameters=getattr(runner.model, 'find_unused_parameters', None),
            broadcast_buffers=getattr(runner.model, 'broadcast_buffers', None),
            load_report=report.full_text() if report is not None else None,
            frozen=self._frozen_at_start,
            frozen_digest=digest(params[n] for n in self._frozen_at_start),
            buffers_digest=digest(self._model(runner).buffers()),
            **self._optimizer_state(runner))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        ids = [s.metainfo['img_id'] for s in data_batch['data_samples']]
        self.record['iters'].append(dict(iter=runner.iter, img_ids=ids))

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        params = self._params(runner)
        layer4 = [p for n, p in params.items() if n.startswith('backbone.layer4.')]
        self.record['iters'][-1].update(
            params_digest=digest(params.values()),
            buffers_digest=digest(self._model(runner).buffers()),
            frozen_digest=digest(params[n] for n in self._frozen_at_start
                                 if not params[n].requires_grad),
            layer4_digest=digest(layer4),
            trainable=sum(p.requires_grad for p in params.values()),
            **self._optimizer_state(runner))

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.record['metrics'].append(dict(metrics or {}))

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.record['metrics'].append(dict(metrics or {}))

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir, f'probe_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(self.record, f, indent=1)
