"""What tools/train.py and tools/test.py do to a config before building the Runner.

Kept here, not in the scripts, so tests and notebooks apply the same rules.
"""
import datetime
import os
import os.path as osp
import subprocess
from typing import Optional

import torch
from mmengine.config import Config


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config file name without .py>``, as MMDetection."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def resolve_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    """Command line > config > default."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision with dynamic loss scaling.

    Raises:
        RuntimeError: no GPU; MMEngine's AmpOptimWrapper refuses CPU training.
    """
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper does not '
                           'train on the CPU); drop --amp on this machine')
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ValueError(f"--amp works with optim_wrapper.type='OptimWrapper', got "
                         f"{wrapper.type!r}; set AmpOptimWrapper in the config instead")
    wrapper.type = 'AmpOptimWrapper'
    wrapper.loss_scale = 'dynamic'


def enable_auto_scale_lr(cfg: Config) -> None:
    """Scale lr by (real total batch) / ``auto_scale_lr.base_batch_size``."""
    scale = cfg.get('auto_scale_lr')
    if not scale or 'base_batch_size' not in scale:
        raise ValueError("--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in the "
                         'config: N is the total batch the lr was tuned for (16 for schedule_1x)')
    scale.enable = True


def apply_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` alone (or ``auto``): resume from the work_dir's latest checkpoint,
    or, on the first run of that work_dir, fine-tune from ``load_from`` as usual
    (``resume='auto'``, handled by FinetuneRunner). ``--resume PATH``: resume from PATH."""
    if resume is None:
        return
    if resume == 'auto':
        cfg.resume = 'auto'
    else:
        cfg.resume = True
        cfg.load_from = resume


def prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Make ``--launcher pytorch|slurm`` work without a GPU.

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and wraps the model
    with ``device_ids=[LOCAL_RANK]``, both of which fail on CPU. The Runner skips
    ``init_dist`` when a process group exists, so we start a gloo group here
    (with ``env_cfg.dist_cfg.timeout``, in seconds, if set) and
    let DDP run without device ids.

    Raises:
        ValueError: ``sync_bn`` is set; torch's SyncBatchNorm trains on GPUs only.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.get('sync_bn') is not None:
        raise ValueError(f'sync_bn={cfg.sync_bn!r} needs GPUs: torch.nn.SyncBatchNorm does not '
                         'train on CPU tensors. Remove sync_bn from the config (or '
                         '--cfg-options sync_bn=None) to train on CPU; each process then '
                         'normalises over its own batch')
    import torch.distributed as dist
    if not dist.is_initialized():
        if launcher == 'slurm':
            _slurm_env_to_torch_env()
        timeout = cfg.env_cfg.get('dist_cfg', {}).get('timeout')  # seconds, as init_dist
        kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
        dist.init_process_group(backend='gloo', **kwargs)
    # MMEngine's own wrapper settings when the config has none; with a model_wrapper_cfg
    # it would ignore the top-level find_unused_parameters key
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'


def _slurm_env_to_torch_env() -> None:
    """Fill torch.distributed's env:// variables from Slurm's, as MMEngine's init_dist does:
    Slurm's ranks win (train.py has set LOCAL_RANK=0 already), MASTER_* from the
    environment win."""
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        # SLURM_NODELIST is compressed ("node[01-04]"); scontrol expands it
        first = subprocess.getoutput(
            f"scontrol show hostnames {os.environ['SLURM_NODELIST']} | head -n1")
        os.environ['MASTER_ADDR'] = first.strip()


def build_runner(cfg: Config):
    """The Runner for a config: ``runner_type`` if the config names one,
    else mmft's FinetuneRunner (load report, class transfer, freezing).

    Warns first about top-level keys that look like typos of known ones
    (:mod:`mmft.utils.config_keys`)."""
    from mmengine.registry import RUNNERS

    from mmft.registry import helpful_unknown_type
    from mmft.utils.config_keys import warn_suspicious_keys
    warn_suspicious_keys(cfg)
    with helpful_unknown_type():
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        from mmft.engine import FinetuneRunner
        return FinetuneRunner.from_cfg(cfg)
