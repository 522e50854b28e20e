"""Distributed training and evaluation on CPU: 2 torchrun processes, gloo, the small Mask R-CNN.

One 2-rank fine-tuning run (tools/dist_train.sh) starts from a 4-class checkpoint with the
backbone frozen, thaws ``backbone.layer4`` at iteration 2 and scales the lr by the total
batch; its checkpoint is then evaluated on 1 rank (tools/test.py), on 2 ranks
(tools/dist_test.sh) and on 2 Slurm tasks (tools/slurm_test.sh, srun stood in for). What
each rank saw comes from tests/test_engine/dist_probe.py. About 60 s on 2 cores.

All of it runs on the CPU (gloo) path, also where CUDA is visible: the tools run with
``CUDA_VISIBLE_DEVICES=''`` and the in-process tests see no GPU (``no_cuda``). MMEngine's
nccl path, one GPU per rank, is MMEngine's own and needs no test here.
"""
import json
import os
import os.path as osp
import pickle
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from mmft.datasets.synthetic import generate_shapes_dataset
from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample
from mmft.utils.cli import _slurm_env_to_torch_env, build_runner, prepare_cpu_distributed

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('circle', 'square', 'triangle')
SOURCE_CLASSES = ('square', 'star', 'circle', 'cross')  # of the load_from checkpoint
BATCH, ITERS, UNFREEZE_AT, LR = 2, 4, 2, 0.01

CONFIG = f'''
_base_ = ['{REPO}/configs/_base_/models/mask_rcnn_r18_fpn_small.py',
          '{REPO}/configs/_base_/datasets/shapes_instance.py',
          '{REPO}/configs/_base_/default_runtime.py']
custom_imports = dict(imports=['tests.test_engine.dist_probe'], allow_failed_imports=False)
data_root = '{{data_root}}/'
classes = {CLASSES}
model = dict(roi_head=dict(bbox_head=dict(num_classes='auto'),
                           mask_head=dict(num_classes='auto')),
             test_cfg=dict(rcnn=dict(score_thr=0.0)))  # predictions even from a young model
train_dataloader = dict(batch_size={BATCH}, dataset=dict(data_root=data_root,
                        metainfo=dict(classes=classes)))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root,
                      metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
# a 4-iteration model scores 0 at COCO's IoU 0.5:0.95; low thresholds give metrics to compare
val_evaluator = dict(ann_file=data_root + 'val.json', iou_thrs=[0.1, 0.3])
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters={ITERS}, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr={LR}, momentum=0.9, weight_decay=0.0001))
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
                        end={ITERS})]
auto_scale_lr = dict(base_batch_size={BATCH})
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval={ITERS}),
                     visualization=dict(type='DetVisualizationHook'))
custom_hooks = [dict(type='DistProbeHook')]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(timeout=120))  # seconds: a dead rank does not leave others waiting
load_from = '{{data_root}}/pretrained.pth'
finetune = dict(class_transfer=True, freeze=['backbone'],
                unfreeze=['backbone.layer4@iter{UNFREEZE_AT}'])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args, path_first: str = '', **env) -> str:
    """Run a tools/ script with the repo importable; its output, or a failure showing it.

    The script's processes share a new session, so a hung rank is killed with it."""
    path = os.pathsep.join(p for p in (path_first, osp.dirname(sys.executable),
                                       os.environ['PATH']) if p)
    # no visible GPU: the tools take the CPU (gloo) path on every machine
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1', 'PATH': path,
           'CUDA_VISIBLE_DEVICES': '', **env}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    assert proc.returncode == 0, f'{args} exited with {proc.returncode}:\n{out[-8000:]}'
    return out


def probes(work_dir: str, world_size: int) -> list:
    out = []
    for rank in range(world_size):
        with open(osp.join(work_dir, f'probe_rank{rank}.json')) as f:
            out.append(json.load(f))
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Data (8 train / 5 val images of 64 px), a 4-class checkpoint, the config file."""
    root = str(tmp_path_factory.mktemp('dist'))
    for split, n in (('train', 8), ('val', 5)):
        generate_shapes_dataset(root, CLASSES, num_images=n, image_size=64, split_name=split,
                                max_objects=3, progress=False)
    config = osp.join(root, 'cfg.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(data_root=root))
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    for head in ('bbox_head', 'mask_head'):
        model_cfg.roi_head[head].num_classes = len(SOURCE_CLASSES)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=SOURCE_CLASSES))),
               osp.join(root, 'pretrained.pth'))
    return root, config


@pytest.fixture(scope='module')
def trained(setup):
    """The 2-rank fine-tuning run: (work_dir, probes of rank 0 and 1, its output)."""
    root, config = setup
    work_dir = osp.join(root, 'work_train')  # root/train holds the images
    log = run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir,
                    '--auto-scale-lr'], PORT=str(free_port()))
    return work_dir, probes(work_dir, 2), log


@pytest.mark.slow
def test_ranks_read_different_samples(trained):
    _, (r0, r1), _ = trained
    assert [it['iter'] for it in r0['iters']] == list(range(ITERS))
    for it0, it1 in zip(r0['iters'], r1['iters']):
        assert len(it0['img_ids']) == len(it1['img_ids']) == BATCH
        assert not set(it0['img_ids']) & set(it1['img_ids'])
    # the first two iterations of both ranks are one pass over the 8 images
    seen = [i for r in (r0, r1) for it in r['iters'][:2] for i in it['img_ids']]
    assert sorted(seen) == list(range(1, 9))  # COCO ids start at 1


@pytest.mark.slow
def test_parameters_identical_across_ranks_after_every_step(trained):
    _, (r0, r1), _ = trained
    for it0, it1 in zip(r0['iters'], r1['iters']):
        assert it0['params_digest'] == it1['params_digest'], f'ranks differ at iter {it0["iter"]}'
    # layer4 is frozen until the unfreeze, trained after it (and synchronised: see above)
    layer4 = [it['layer4_digest'] for it in r0['iters']]
    assert layer4[:UNFREEZE_AT] == [layer4[0]] * UNFREEZE_AT
    assert len(set(layer4[UNFREEZE_AT - 1:])) == ITERS - UNFREEZE_AT + 1


@pytest.mark.slow
def test_frozen_parameters_stay_frozen_under_ddp(trained):
    _, (r0, r1), _ = trained
    for r in (r0, r1):
        assert r['wrapper'] == 'MMDistributedDataParallel'
        # MMEngine's and mmdet's defaults, as on GPUs
        assert r['find_unused_parameters'] is False and r['broadcast_buffers'] is False
        assert r['frozen'] and all(n.startswith('backbone.') for n in r['frozen'])
        assert not set(r['frozen']) & set(r['optimized'])
        # stem and layer1-3 never change; layer4 leaves the frozen set at the unfreeze
        assert {it['frozen_digest'] for it in r['iters'][UNFREEZE_AT:]} == \
            {r['iters'][UNFREEZE_AT]['frozen_digest']}
        assert {it['frozen_digest'] for it in r['iters'][:UNFREEZE_AT]} == {r['frozen_digest']}
        # every BatchNorm is frozen until then: eval mode, running statistics untouched
        assert {it['buffers_digest'] for it in r['iters'][:UNFREEZE_AT]} == \
            {r['buffers_digest']}
        before, after = r['iters'][UNFREEZE_AT - 1], r['iters'][UNFREEZE_AT]
        assert after['trainable'] > before['trainable']
        assert set(after['optimized']) - set(before['optimized']) == \
            {n for n in r['frozen'] if n.startswith('backbone.layer4.')}
    # and DDP raised no "parameters that were not used in producing loss": the run finished


def test_every_trainable_parameter_gets_a_gradient_without_positives(setup):
    """DDP with find_unused_parameters=False (mmdet's default) needs a gradient for every
    trainable parameter in every step, also when a rank's batch has no object at all (no
    positive RoI for the box regression and mask heads): the losses keep them in the graph."""
    cfg = Config.fromfile(setup[1])
    for head in ('bbox_head', 'mask_head'):
        cfg.model.roi_head[head].num_classes = len(CLASSES)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                           labels=torch.zeros(0, dtype=torch.long),
                                           masks=BitmapMasks(np.zeros((0, 64, 64), np.uint8),
                                                             64, 64))
        samples.append(sample)
    inputs = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in samples]
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.slow
def test_load_report_and_freezing_identical_on_every_rank(trained):
    work_dir, (r0, r1), _ = trained
    assert r0['load_report'] and r0['load_report'] == r1['load_report']
    assert 'transferred' in r0['load_report']
    for key in ('frozen', 'frozen_digest', 'optimized'):
        assert r0[key] == r1[key], key
    (log_dir,) = [d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d))]
    with open(osp.join(work_dir, log_dir, 'load_report.txt')) as f:
        assert f.read() == r0['load_report']


@pytest.mark.slow
def test_auto_scale_lr_uses_world_size_times_batch(trained):
    _, (r0, r1), _ = trained
    scaled = LR * (2 * BATCH) / BATCH  # total batch: 2 ranks x BATCH; base_batch_size BATCH
    for r in (r0, r1):
        assert r['world_size'] == 2
        last = r['iters'][-1]
        assert len(last['initial_lr']) > len(r['initial_lr'])  # the thawed group
        # every group, the thawed one included, starts from the scaled lr
        assert last['initial_lr'] == pytest.approx([scaled] * len(last['initial_lr']))
        assert len(set(last['lr'])) == 1


def evaluation(work_dir: str, world_size: int):
    """Metrics of every rank, and the predictions dumped by --out sorted by image id."""
    metrics = [r['metrics'][0] for r in probes(work_dir, world_size)]
    with open(osp.join(work_dir, 'preds.pkl'), 'rb') as f:
        preds = sorted(pickle.load(f), key=lambda p: p['img_id'])
    return metrics, preds


def assert_same_evaluation(got, expected) -> None:
    (metrics, preds), ((one_rank_metrics,), one_rank_preds) = got, expected
    for rank_metrics in metrics:
        assert rank_metrics == pytest.approx(one_rank_metrics, abs=1e-9)
    # every image exactly once: the sampler's padding sample (5 images, 2 ranks) is dropped
    assert [p['img_id'] for p in preds] == [p['img_id'] for p in one_rank_preds]
    for p, q in zip(preds, one_rank_preds):
        np.testing.assert_allclose(p['pred_instances']['bboxes'],
                                   q['pred_instances']['bboxes'], atol=1e-4)
        np.testing.assert_allclose(p['pred_instances']['scores'],
                                   q['pred_instances']['scores'], atol=1e-5)


@pytest.fixture(scope='module')
def one_rank(setup, trained):
    """tools/test.py on the trained checkpoint, one process: (checkpoint, evaluation)."""
    root, config = setup
    checkpoint = osp.join(trained[0], f'iter_{ITERS}.pth')
    work_dir = osp.join(root, 'test1')
    run_tool([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir,
              '--out', osp.join(work_dir, 'preds.pkl')])
    return checkpoint, evaluation(work_dir, 1)


@pytest.mark.slow
def test_one_rank_evaluation_is_not_trivial(one_rank):
    (metrics,), preds = one_rank[1]
    assert metrics['coco/bbox_mAP'] > 0 and 'coco/segm_mAP' in metrics
    assert [p['img_id'] for p in preds] == list(range(1, 6))  # COCO ids start at 1
    assert all(len(p['pred_instances']['scores']) for p in preds)


@pytest.mark.slow
def test_evaluation_on_two_ranks_equals_one_rank(setup, one_rank):
    root, config = setup
    checkpoint, expected = one_rank
    work_dir = osp.join(root, 'test2')
    run_tool(['bash', 'tools/dist_test.sh', config, checkpoint, '2', '--work-dir', work_dir,
              '--out', osp.join(work_dir, 'preds.pkl')], PORT=str(free_port()))
    assert_same_evaluation(evaluation(work_dir, 2), expected)


FAKE_SRUN = '''#!/usr/bin/env bash
# Slurm's srun for a test: records its options, starts --ntasks copies of the command
echo "$@" > "$FAKE_SRUN_LOG"
ntasks=1
while [ "$1" != "$PYTHON" ]; do
    case $1 in --ntasks=*) ntasks=${1#--ntasks=};; esac
    shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NODELIST=localhost "$@" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
'''


@pytest.mark.slow
def test_slurm_evaluation_on_two_tasks_equals_one_rank(setup, one_rank, tmp_path):
    root, config = setup
    checkpoint, expected = one_rank
    (tmp_path / 'srun').write_text(FAKE_SRUN)
    (tmp_path / 'srun').chmod(0o755)
    work_dir, srun_log = osp.join(root, 'slurm_test'), tmp_path / 'srun.log'
    run_tool(['bash', 'tools/slurm_test.sh', 'cpu', 'mmft-eval', config, checkpoint,
              '--work-dir', work_dir, '--out', osp.join(work_dir, 'preds.pkl')],
             path_first=str(tmp_path), GPUS='2', GPUS_PER_NODE='2', GRES='',
             PYTHON=sys.executable, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
             FAKE_SRUN_LOG=str(srun_log))
    assert srun_log.read_text().startswith(
        '-p cpu --job-name=mmft-eval --ntasks=2 --ntasks-per-node=2 --cpus-per-task=5 '
        '--kill-on-bad-exit=1 ')  # no --gres: GRES= is the CPU partition's setting
    assert_same_evaluation(evaluation(work_dir, 2), expected)


@pytest.fixture
def no_cuda(monkeypatch):
    """This process sees no GPU, as the CPU machines that the gloo path is for."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr('mmengine.device.utils.DEVICE', 'cpu')  # fixed when mmengine loads


def test_sync_bn_on_cpu_fails_early_with_a_clear_message(no_cuda):
    cfg = Config(dict(sync_bn='torch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with pytest.raises(ValueError, match="sync_bn='torch'.*GPU"):
        prepare_cpu_distributed(cfg, 'pytorch')
    assert not dist.is_initialized()


def test_cpu_ddp_keeps_mmengine_wrapper_defaults_and_top_level_keys(no_cuda, monkeypatch):
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)  # no process group needed
    cfg = Config(dict(find_unused_parameters=True, env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    prepare_cpu_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=True)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', static_graph=True),
                      env_cfg=dict()))
    prepare_cpu_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', static_graph=True,
                                         device_ids=None)


def test_sync_bn_converts_and_frozen_norms_stay_in_eval(setup, tmp_path, no_cuda, monkeypatch):
    """What sync_bn='torch' does on GPUs, on a 1-rank gloo group: every BatchNorm becomes a
    SyncBatchNorm (new modules), the frozen ones stay in eval mode, also after the DDP
    re-wrap of an unfreeze."""
    cfg = Config.fromfile(setup[1])
    cfg.merge_from_dict(dict(
        sync_bn='torch', launcher='pytorch', work_dir=str(tmp_path), load_from=None,
        model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None),
        finetune=dict(freeze=['backbone.bn1', 'backbone.layer1', 'backbone.layer2'],
                      unfreeze=['backbone.layer2@iter100'])))
    monkeypatch.setenv('LOCAL_RANK', '0')  # read by Runner.wrap_model, as under torchrun
    # DDP refuses SyncBatchNorm on CPU when it is built; skip that check to see the GPU case
    monkeypatch.setattr(DistributedDataParallel, '_passing_sync_batchnorm_handle',
                        lambda self, module: None)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0,
                            world_size=1)
    try:
        runner = build_runner(cfg)

        def eval_norms():
            runner.model.train()
            norms = {n: m for n, m in runner.unwrapped_model.named_modules()
                     if isinstance(m, _BatchNorm)}
            assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms.values())
            return {n for n, m in norms.items() if not m.training}

        frozen = ('backbone.bn1', 'backbone.layer1.', 'backbone.layer2.')
        before = eval_norms()
        assert before == {n for n, m in runner.unwrapped_model.named_modules()
                          if isinstance(m, _BatchNorm) and n.startswith(frozen)}
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        runner.apply_unfreeze_stage(0)
        assert eval_norms() == {n for n in before if not n.startswith('backbone.layer2.')}
    finally:
        dist.destroy_process_group()


def test_slurm_env_becomes_torch_env(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('LOCAL_RANK', '0')  # what train.py's --local_rank default leaves
    monkeypatch.setenv('MASTER_ADDR', 'node01')
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    _slurm_env_to_torch_env()
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['LOCAL_RANK']) == \
        ('5', '8', '1')
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == ('node01', '29500')
