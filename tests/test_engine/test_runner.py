"""FinetuneRunner end to end on a small Mask R-CNN: transfer, freezing, unfreezing, resume."""
import os.path as osp

import pytest
import torch

from mmft.engine import FinetuneRunner
from mmft.checkpoint import torch_load_safely
from mmft.finetune.optim_groups import optimizer_param_ids
from tests.tiny_runs import SOURCE_CLASSES, TARGET_CLASSES, make_shapes_data, tiny_config

MAPPING = {'box': 'square'}


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')))


@pytest.fixture(scope='module')
def source_ckpt(shapes, tmp_path_factory):
    """A 10-class "pretrained" model: 2 iterations on the source domain."""
    work_dir = str(tmp_path_factory.mktemp('source'))
    cfg = tiny_config(shapes['source'], work_dir, SOURCE_CLASSES, max_iters=2)
    FinetuneRunner.from_cfg(cfg).train()
    return osp.join(work_dir, 'iter_2.pth')


def _target_runner(shapes, source_ckpt, work_dir, **kwargs):
    finetune = dict(class_mapping=MAPPING, **kwargs.pop('finetune', {}))
    kwargs.setdefault('load_from', source_ckpt)
    cfg = tiny_config(shapes['target'], str(work_dir), TARGET_CLASSES, finetune=finetune,
                      **kwargs)
    return FinetuneRunner.from_cfg(cfg)


def test_load_from_transfers_rows_of_shared_classes(shapes, source_ckpt, tmp_path):
    runner = _target_runner(shapes, source_ckpt, tmp_path)
    model = runner.model
    init = {k: v.clone() for k, v in model.state_dict().items()}
    runner.load_checkpoint(source_ckpt)
    src = torch_load_safely(source_ckpt)['state_dict']
    out = model.state_dict()
    cls_w = 'roi_head.bbox_head.fc_cls.weight'
    assert out[cls_w].shape[0] == len(TARGET_CLASSES) + 1
    for new, old in (('circle', 'circle'), ('star', 'star'), ('box', 'square')):
        i, j = TARGET_CLASSES.index(new), SOURCE_CLASSES.index(old)
        assert torch.equal(out[cls_w][i], src[cls_w][j])
        reg = 'roi_head.bbox_head.fc_reg.weight'
        assert torch.equal(out[reg][4 * i:4 * i + 4], src[reg][4 * j:4 * j + 4])
        logits = 'roi_head.mask_head.conv_logits.weight'
        assert torch.equal(out[logits][i], src[logits][j])
    assert torch.equal(out[cls_w][-1], src[cls_w][len(SOURCE_CLASSES)])  # background: 10 -> 5
    pentagon = TARGET_CLASSES.index('pentagon')
    assert torch.equal(out[cls_w][pentagon], init[cls_w][pentagon])
    for key in ('backbone.layer1.0.conv1.weight', 'neck.fpn_convs.0.conv.weight',
                'rpn_head.rpn_cls.weight', 'roi_head.bbox_head.shared_fcs.0.weight'):
        assert torch.equal(out[key], src[key])
    report = runner.load_report
    assert len(report.transferred) == 6 and not report.skipped_suspicious
    # 4 of the 5 classes came from the checkpoint: the 6 class-row tensors count 4/5 each
    weights = [k for k in report.scope_keys if not k.endswith('num_batches_tracked')]
    assert report.restored_fraction == pytest.approx((len(weights) - 6 * 0.2) / len(weights))
    assert osp.isfile(osp.join(runner.log_dir, 'load_report.txt'))


def test_frozen_layers_stay_fixed_and_out_of_the_optimizer(shapes, source_ckpt, tmp_path):
    runner = _target_runner(shapes, source_ckpt, tmp_path, max_iters=3,
                            finetune=dict(freeze=['backbone.layer1']))
    runner.train()
    src = torch_load_safely(source_ckpt)['state_dict']
    out = runner.model.state_dict()
    for key in out:
        if key.startswith('backbone.layer1.'):  # weights and BN statistics alike
            assert torch.equal(out[key], src[key]), key
    assert not torch.equal(out['backbone.layer2.0.conv1.weight'],
                           src['backbone.layer2.0.conv1.weight'])
    in_optimizer = optimizer_param_ids(runner.optim_wrapper.optimizer)
    for name, param in runner.model.named_parameters():
        frozen = name.startswith('backbone.layer1.')
        assert param.requires_grad is not frozen
        assert (id(param) in in_optimizer) is not frozen
    assert not runner.model.backbone.layer1[0].bn1.training


@pytest.mark.parametrize('max_iters, thawed', [(2, False), (3, True)])
def test_unfreeze_at_iteration(shapes, source_ckpt, tmp_path, max_iters, thawed):
    runner = _target_runner(shapes, source_ckpt, tmp_path, max_iters=max_iters,
                            finetune=dict(freeze=['backbone.layer1'],
                                          unfreeze=['backbone.layer1@iter2']))
    runner.train()
    key = 'backbone.layer1.0.conv1.weight'
    changed = not torch.equal(runner.model.state_dict()[key],
                              torch_load_safely(source_ckpt)['state_dict'][key])
    assert changed is thawed
    param = runner.model.backbone.layer1[0].conv1.weight
    assert (id(param) in optimizer_param_ids(runner.optim_wrapper.optimizer)) is thawed
    if thawed:
        group = runner.optim_wrapper.optimizer.param_groups[-1]
        assert any(p is param for p in group['params'])
        assert group['initial_lr'] == pytest.approx(0.01)
        assert runner.model.backbone.layer1[0].bn1.training


@pytest.mark.slow
def test_resume_loads_the_checkpoint_untouched(shapes, source_ckpt, tmp_path):
    # exclude would drop the class layers from a pretrained checkpoint; on resume it must not
    kwargs = dict(max_iters=3, checkpoint_interval=1, finetune=dict(exclude=['mask_rcnn']))
    _target_runner(shapes, source_ckpt, tmp_path, **kwargs).train()
    ckpt = osp.join(tmp_path, 'iter_2.pth')
    runner = _target_runner(shapes, source_ckpt, tmp_path / 'resumed', resume=True,
                            **{**kwargs, 'load_from': ckpt})
    # what Runner.train() does before its loop
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    runner.load_or_resume()
    saved = torch_load_safely(ckpt)['state_dict']
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert runner.iter == 2
    assert not hasattr(runner, 'load_report')


def test_resume_auto_falls_back_to_load_from(shapes, source_ckpt, tmp_path):
    runner = _target_runner(shapes, source_ckpt, tmp_path, max_iters=1, resume='auto')
    runner.train()  # nothing to resume in a fresh work_dir: fine-tune from load_from
    assert runner.load_report.transferred


def test_head_num_classes_must_match_the_data(shapes, tmp_path):
    cfg = tiny_config(shapes['target'], str(tmp_path), TARGET_CLASSES)
    cfg.model.roi_head.bbox_head.num_classes = 10
    with pytest.raises(ValueError, match=r'bbox_head.num_classes=10 but the dataset has 5 '
                                         r"classes \['circle'"):
        FinetuneRunner.from_cfg(cfg)


def test_staged_recipe_keeps_per_module_lr_when_layers_thaw(shapes, source_ckpt, tmp_path,
                                                            repo_root):
    from mmengine.config import Config
    staged = Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes_staged.py'))
    runner = _target_runner(shapes, source_ckpt, tmp_path, finetune=staged.finetune,
                            optim_wrapper=dict(paramwise_cfg=staged.optim_wrapper.paramwise_cfg))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    optimizer = runner.optim_wrapper.optimizer
    base = optimizer.defaults['lr']

    def lr_of(param):
        return next(g['lr'] for g in optimizer.param_groups
                    if any(p is param for p in g['params']))

    model = runner.model
    assert id(model.neck.fpn_convs[0].conv.weight) not in optimizer_param_ids(optimizer)
    assert lr_of(model.roi_head.bbox_head.fc_cls.weight) == pytest.approx(base)
    runner.apply_unfreeze_stage(0)  # neck
    runner.apply_unfreeze_stage(1)  # backbone.layer3, backbone.layer4
    assert lr_of(model.neck.fpn_convs[0].conv.weight) == pytest.approx(0.5 * base)
    assert lr_of(model.backbone.layer4[0].conv1.weight) == pytest.approx(0.1 * base)
    assert id(model.backbone.layer1[0].conv1.weight) not in optimizer_param_ids(optimizer)


@pytest.mark.slow
def test_resume_after_an_unfreeze_stage(shapes, source_ckpt, tmp_path):
    kwargs = dict(max_iters=3, checkpoint_interval=1,
                  finetune=dict(freeze=['backbone.layer1', 'backbone.layer2'],
                                unfreeze=['backbone.layer2@iter2', 'backbone.layer1@iter1']))
    first = _target_runner(shapes, source_ckpt, tmp_path, **kwargs)
    first.train()
    assert first.unfrozen_stages == [1, 0]  # in the order they fired
    resumed = _target_runner(shapes, source_ckpt, tmp_path / 'resumed', resume=True,
                             **{**kwargs, 'max_iters': 4,
                                'load_from': osp.join(tmp_path, 'iter_3.pth')})
    resumed.train()  # the saved optimizer has 3 groups: they must exist before it loads
    assert resumed.unfrozen_stages == [1, 0] and resumed.iter == 4
    ids = optimizer_param_ids(resumed.optim_wrapper.optimizer)
    assert id(resumed.model.backbone.layer1[0].conv1.weight) in ids


def test_thawed_layers_follow_the_backbone_norm_eval_and_every_scheduler(
        shapes, source_ckpt, tmp_path):
    runner = _target_runner(
        shapes, source_ckpt, tmp_path,
        model=dict(backbone=dict(norm_eval=True)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=4, by_epoch=False)],
        finetune=dict(freeze=['backbone.layer4'], unfreeze=['backbone.layer4@iter1']))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    runner.model.train()
    runner.apply_unfreeze_stage(0)
    assert not runner.model.backbone.layer4[0].bn1.training  # norm_eval=True still holds
    scheduler = runner.param_schedulers[0]
    assert len(scheduler.base_values) == len(runner.optim_wrapper.optimizer.param_groups)


def test_unfreeze_patterns_must_name_frozen_parameters(shapes, source_ckpt, tmp_path):
    with pytest.raises(ValueError, match=r"finetune.unfreeze .* 'backbone.layr4' matches no"):
        _target_runner(shapes, source_ckpt, tmp_path,
                       finetune=dict(freeze=['backbone'], unfreeze=['backbone.layr4@iter5']))


def test_ema_hook_sees_the_fine_tuning_load(shapes, source_ckpt, tmp_path):
    runner = _target_runner(shapes, source_ckpt, tmp_path,
                            custom_hooks=[dict(type='EMAHook', momentum=0.001)])
    runner.call_hook('before_run')  # EMAHook builds its copy of the model here
    checkpoint = runner.load_checkpoint(source_ckpt)
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.module
    for key, value in runner.model.state_dict().items():
        assert torch.equal(ema.state_dict()[key], value), key
    assert checkpoint['meta']['dataset_meta']['classes'] == SOURCE_CLASSES
