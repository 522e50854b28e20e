"""A short shapes run of a small RTMDet: the loss falls and bbox mAP > 0.

RTMDet's losses start near zero (QFL's targets and the box loss's weights are the IoUs of
still-degenerate boxes, and their normaliser is clamped at 1) and peak within ~15
iterations, so the fall is measured from that peak on."""
import numpy as np
import pytest
from mmengine.config import ConfigDict

from mmft.engine import FinetuneRunner
from tests.test_models.test_detectors.test_rtmdet import tiny_rtmdet
from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, short_run_config, tiny_config


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=16)


@pytest.mark.slow
def test_short_shapes_run_learns(shapes, tmp_path):
    max_iters = 80
    cfg = short_run_config(
        shapes['source'], str(tmp_path), tiny_rtmdet(len(SOURCE_CLASSES)), max_iters,
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.05),
             paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True)),
        transforms=[dict(type='YOLOXHSVRandomAug'), dict(type='RandomFlip', prob=0.5)])
    cfg.custom_hooks = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
                             update_buffers=True, priority=49)]
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    loss = np.array(runner.message_hub.get_scalar('train/loss').data[0])
    loss_bbox = np.array(runner.message_hub.get_scalar('train/loss_bbox').data[0])
    metrics = runner.val_loop.run()
    assert np.isfinite(loss).all()
    # the GIoU loss of the positives (weighted and normalised by their IoUs) falls from its
    # peak as the boxes fit (measured: 1.27 at iterations 15-25, 0.90 over the last 10)
    assert loss_bbox[-10:].mean() < 0.85 * loss_bbox[15:25].mean()
    # not the total loss: QualityFocalLoss's targets are the boxes' IoUs, so the class loss
    # grows as the boxes fit (measured on one CPU: total 1.72 at 15-25 and 1.99 over the
    # last 10, the class loss 0.50 and 1.06, while the GIoU loss fell)
    assert metrics['coco/bbox_mAP'] > 0


@pytest.mark.slow
def test_ema_checkpoint_fine_tunes_from_the_ema_weights(shapes, tmp_path):
    """MMEngine's EMAHook saves the averaged weights as ``state_dict`` (the raw ones as
    ``ema_state_dict``); a fine-tuning run from that file starts from the averaged weights,
    and its own EMA model starts from what was loaded (class rows transferred)."""
    import torch

    from mmft.checkpoint import torch_load_safely
    from mmft.datasets.synthetic import TARGET_CLASSES

    ema = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
                update_buffers=True, priority=49)]

    def config(work_dir, classes, root, iters, **extra):
        cfg = tiny_config(root, str(work_dir), classes, max_iters=iters, batch_size=2, **extra)
        cfg.model = ConfigDict(tiny_rtmdet(len(classes)))
        cfg.train_dataloader.dataset.pipeline = [
            dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')]
        cfg.custom_hooks = ema
        return cfg

    src_cfg = config(tmp_path / 'src', SOURCE_CLASSES, shapes['source'], 3)
    FinetuneRunner.from_cfg(src_cfg).train()
    ckpt = torch_load_safely(str(tmp_path / 'src' / 'iter_3.pth'), map_location='cpu')
    averaged, raw = ckpt['state_dict'], ckpt['ema_state_dict']
    key = 'bbox_head.rtm_reg.0.weight'
    assert not torch.equal(averaged[key], raw['module.' + key])

    tgt_cfg = config(tmp_path / 'tgt', TARGET_CLASSES, shapes['target'], 1,
                     load_from=str(tmp_path / 'src' / 'iter_3.pth'),
                     finetune=dict(checkpoint_type='detection', class_transfer=True))
    runner = FinetuneRunner.from_cfg(tgt_cfg)
    hook = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook')
    hook.before_run(runner)  # builds the EMA model, as train() does before loading
    runner.load_or_resume()  # the fine-tuning load, then the hooks' after_load_checkpoint
    model = runner.model.state_dict()
    assert torch.equal(model[key], averaged[key])
    # the report says which weights were used
    assert runner.load_report.ema_weights
    assert 'the EMA (averaged) weights' in runner.load_report.summary()
    ema_model = hook.ema_model.module.state_dict()
    assert torch.equal(ema_model[key], averaged[key])
    # circle is class 0 in both class lists: its row came across on every level
    assert torch.equal(ema_model['bbox_head.rtm_cls.1.weight'][0],
                       averaged['bbox_head.rtm_cls.1.weight'][0])


def test_ema_model_follows_the_unfreezing_stages(shapes, tmp_path):
    """The EMA model averages every parameter, trainable or not: a frozen backbone's average
    stays the loaded weights until its stage thaws it, then follows its training."""
    import torch
    from mmengine.hooks import Hook

    cfg = tiny_config(shapes['source'], str(tmp_path), SOURCE_CLASSES, max_iters=5,
                      batch_size=2,
                      finetune=dict(freeze=['backbone'],
                                    unfreeze=[dict(patterns=['backbone'], iter=2)]))
    cfg.model = ConfigDict(tiny_rtmdet(len(SOURCE_CLASSES)))
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs')]
    # a fast average (momentum 0.5 from the first step), so that a few steps show
    cfg.custom_hooks = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.5,
                             gamma=1, update_buffers=True, priority=49)]
    key = 'backbone.stem.0.conv.weight'
    seen = []

    class Record(Hook):
        def before_train(self, runner):  # after the weights' init and load_from
            seen.append(runner.model.state_dict()[key].clone())

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook')
            seen.append((runner.model.state_dict()[key].clone(),
                         ema.ema_model.module.state_dict()[key].clone()))

    runner = FinetuneRunner.from_cfg(cfg)
    runner.register_hook(Record(), priority='LOWEST')
    runner.train()
    start, seen = seen[0], seen[1:]
    assert len(seen) == 5
    for model, ema in seen[:2]:  # iterations 0 and 1: frozen, and so is its average
        assert torch.equal(model, start) and torch.equal(ema, start)
    for model, ema in seen[3:]:  # thawed at iteration 2: both move
        assert not torch.equal(model, start) and not torch.equal(ema, start)
    # the average lags the weights: it lies between where they were and where they are
    model, ema = seen[-1]
    assert (ema - start).abs().sum() < (model - start).abs().sum()
