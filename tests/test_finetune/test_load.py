"""The fine-tuning load: what fits loads bit for bit, the rest is skipped and reported."""
import pytest
import torch

from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.finetune.report import BUCKETS

OLD = ('person', 'car', 'bus', 'dog')
NEW = ('car', 'rider', 'unicorn')


def _save(tmp_path, model, classes=OLD, name='src.pth', prefix=''):
    path = tmp_path / name
    state = {prefix + k: v for k, v in model.state_dict().items()}
    meta = {'dataset_meta': {'classes': classes}} if classes else {}
    torch.save({'state_dict': state, 'meta': meta}, path)
    return str(path)


def _every_key_in_one_bucket(report, model, source):
    keys = set(model.state_dict()) | set(source)
    for key in keys:
        report.bucket_of(key)  # raises unless exactly one
    assert sum(len(getattr(report, b)) for b in BUCKETS) == len(keys)


def test_new_num_classes_skips_heads_and_keeps_the_rest_identical(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(NEW), seed=2)
    path = _save(tmp_path, source, classes=None)
    report = load_pretrained(target, path, FinetuneConfig(), new_classes=NEW)
    src = source.state_dict()
    for key, value in target.state_dict().items():
        if 'fc_cls' in key or 'fc_reg' in key or 'conv_logits' in key:
            assert not torch.equal(value, src[key][:value.shape[0]])
        else:
            assert torch.equal(value, src[key]), key
    assert sorted(report.skipped_expected) == sorted(
        f'roi_head.{k}' for k in ['bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias',
                                  'bbox_head.fc_reg.weight', 'bbox_head.fc_reg.bias',
                                  'mask_head.conv_logits.weight', 'mask_head.conv_logits.bias'])
    assert report.skipped_suspicious == [] and report.transferred == []
    assert 'source_classes' in report.reasons['roi_head.bbox_head.fc_cls.weight']
    _every_key_in_one_bucket(report, target, src)
    table = report.table()
    assert 'roi_head.bbox_head' in table and 'roi_head.mask_head' in table and 'backbone' in table


def test_class_aware_transfer_copies_shared_rows(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(NEW), seed=2)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), NEW)
    src, out = source.state_dict(), target.state_dict()
    cls_w, reg_w = 'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_reg.weight'
    assert torch.equal(out[cls_w][0], src[cls_w][1])  # car <- car
    assert torch.equal(out[cls_w][1], src[cls_w][0])  # rider <- person (synonym)
    assert torch.equal(out[cls_w][2], init[cls_w][2])  # unicorn is new
    assert torch.equal(out[cls_w][3], src[cls_w][4])  # background: row 4 -> row 3
    assert torch.equal(out[reg_w][0:4], src[reg_w][4:8])
    assert torch.equal(out[reg_w][8:12], init[reg_w][8:12])
    logits = 'roi_head.mask_head.conv_logits.weight'
    assert torch.equal(out[logits][1], src[logits][0])
    assert len(report.transferred) == 6 and report.skipped_expected == []
    assert [m.how for m in report.class_matches] == ['name', 'synonym', 'new']
    assert 'rider' in report.class_table() and 'person' in report.class_table()
    _every_key_in_one_bucket(report, target, src)


def test_incremental_classes_keep_every_old_row(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(OLD) + 1, seed=2)
    load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), OLD + ('unicorn',))
    w = 'roi_head.bbox_head.fc_cls.weight'
    assert torch.equal(target.state_dict()[w][:4], source.state_dict()[w][:4])
    assert torch.equal(target.state_dict()[w][5], source.state_dict()[w][4])


def test_exclude_patterns_and_presets(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(OLD), seed=2)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    cfg = FinetuneConfig.from_cfg(dict(exclude=['mask_rcnn', 'neck']))
    report = load_pretrained(target, _save(tmp_path, source), cfg, OLD)
    out = target.state_dict()
    for key in ('roi_head.bbox_head.fc_cls.weight', 'roi_head.mask_head.conv_logits.bias',
                'neck.weight'):
        assert torch.equal(out[key], init[key]) and key in report.excluded
    assert torch.equal(out['backbone.conv1.weight'], source.state_dict()['backbone.conv1.weight'])


def test_classification_checkpoint_restores_the_backbone_only(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(NEW), seed=2)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    imagenet = {k[len('backbone.'):]: v for k, v in source.state_dict().items()
                if k.startswith('backbone.')}
    imagenet['fc.weight'] = torch.randn(10, 8)  # the classifier has no place in a detector
    path = tmp_path / 'imagenet.pth'
    torch.save(imagenet, path)
    report = load_pretrained(target, str(path), FinetuneConfig(), NEW)
    assert report.checkpoint_type == 'classification'  # recognised from its keys
    out = target.state_dict()
    assert torch.equal(out['backbone.bn1.running_var'], imagenet['bn1.running_var'])
    assert torch.equal(out['neck.weight'], init['neck.weight'])
    assert report.unexpected == ['fc.weight']  # under the file's own name
    assert report.restored_fraction == 1.0  # the whole backbone, the scope of such a file
    # a detection checkpoint read as 'classification' gives its backbone only
    target2 = make_detector(len(OLD), seed=3)
    cfg = FinetuneConfig(checkpoint_type='classification')
    report = load_pretrained(target2, _save(tmp_path, source), cfg, OLD)
    assert 'neck.weight' in report.excluded and 'neck.weight' not in report.loaded
    assert torch.equal(target2.state_dict()['backbone.layer1.weight'],
                       source.state_dict()['backbone.layer1.weight'])


def test_suspicious_mismatch_strict_backbone_and_min_loaded(tmp_path, make_detector):
    source = make_detector(len(OLD), width=8, seed=1)
    wider = make_detector(len(OLD), width=16, seed=2)
    path = _save(tmp_path, source)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(RuntimeError, match=r'only 0.0% of the backbone weights were restored .*'
                                           r'min_backbone_loaded=0.5, the default'):
        load_pretrained(wider, path, FinetuneConfig(), OLD)
    # a refused load changes nothing
    assert all(torch.equal(v, before[k]) for k, v in wider.state_dict().items())
    report = load_pretrained(wider, path, FinetuneConfig(min_backbone_loaded=0), OLD)
    assert 'backbone.conv1.weight' in report.skipped_suspicious
    assert report.shapes['backbone.conv1.weight'] == ((8, 3, 3, 3), (16, 3, 3, 3))
    assert 'SUSPICIOUS' in report.summary()
    strict_error = r"strict_backbone=True .*\['backbone.conv1.weight \[8, 3, 3, 3\] -> "
    with pytest.raises(RuntimeError, match=strict_error):
        load_pretrained(wider, path, FinetuneConfig(strict_backbone=True), OLD)
    with pytest.raises(RuntimeError, match=r'only 2\d.\d% of the model weights .*min_loaded=0.9'):
        load_pretrained(wider, path, FinetuneConfig(min_loaded=0.9, min_backbone_loaded=0), OLD)


def test_full_text_lists_every_key(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(NEW), seed=2)
    report = load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), NEW)
    text = report.full_text()
    for key in target.state_dict():
        assert key in text


def test_softmax_checkpoint_feeds_a_sigmoid_head(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)  # fc_cls: 4 classes + background
    target = make_detector(len(NEW), seed=2)
    target.roi_head.bbox_head.fc_cls = torch.nn.Linear(8, len(NEW))  # sigmoid: no background
    init = target.state_dict()['roi_head.bbox_head.fc_cls.weight'].clone()
    report = load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), NEW)
    out = target.state_dict()['roi_head.bbox_head.fc_cls.weight']
    src = source.state_dict()['roi_head.bbox_head.fc_cls.weight']
    assert 'roi_head.bbox_head.fc_cls.weight' in report.transferred
    assert torch.equal(out[0], src[1]) and torch.equal(out[1], src[0])  # car, rider <- person
    assert torch.equal(out[2], init[2])  # unicorn: new


def test_exclude_typo_is_an_error(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(len(OLD), seed=2)
    with pytest.raises(ValueError, match=r"finetune.exclude 'roi_head.bbox_head.fc_clss' "
                                         'matches no name'):
        load_pretrained(target, _save(tmp_path, source),
                        FinetuneConfig(exclude=['roi_head.bbox_head.fc_clss']), OLD)


def test_min_loaded_does_not_count_what_was_excluded_on_purpose(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(len(OLD), seed=2)
    report = load_pretrained(target, _save(tmp_path, source),
                             FinetuneConfig(exclude=['roi_head'], min_loaded=1.0), OLD)
    assert report.restored_fraction == 1.0 and 'roi_head.bbox_head.fc_cls.weight' in \
        report.excluded


def test_a_classifier_with_backbone_prefix_and_its_own_head(tmp_path, make_detector):
    """mmpretrain-style: ``backbone.*`` plus ``head.fc.*``: restores the backbone only."""
    source, target = make_detector(len(OLD), seed=1), make_detector(len(NEW), seed=2)
    state = {k: v for k, v in source.state_dict().items() if k.startswith('backbone.')}
    state['head.fc.weight'] = torch.randn(10, 8)
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    report = load_pretrained(target, str(path), FinetuneConfig(min_loaded=0.9), NEW)
    assert report.checkpoint_type == 'classification'
    assert report.excluded == ['head.fc.weight'] and report.restored_fraction == 1.0


def test_no_class_matched_counts_against_min_loaded(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(3, seed=2)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    unrelated = ('apple', 'pear', 'plum')
    report = load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), unrelated)
    cls_w = 'roi_head.bbox_head.fc_cls.weight'
    assert report.no_class_matched and report.transferred == []
    assert cls_w in report.skipped_expected and 'no dataset class matched' in report.reasons[cls_w]
    assert torch.equal(target.state_dict()[cls_w], init[cls_w])
    assert 'NO CLASS MATCHED' in report.summary()
    assert report.restored_fraction < 1.0
    with pytest.raises(RuntimeError, match='of the model weights in scope were restored'):
        load_pretrained(make_detector(3, seed=2), _save(tmp_path, source),
                        FinetuneConfig(min_loaded=0.95), unrelated)


def test_transferred_tensors_count_by_their_share_of_matched_classes(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(len(NEW), seed=2)
    report = load_pretrained(target, _save(tmp_path, source), FinetuneConfig(), NEW)
    assert report.transferred_share['roi_head.bbox_head.fc_cls.weight'] == pytest.approx(2 / 3)
    weights = [k for k in report.scope_keys if not k.endswith('num_batches_tracked')]
    expected = (len(weights) - 6 + 6 * 2 / 3) / len(weights)
    assert report.restored_fraction == pytest.approx(expected)


def test_num_batches_tracked_is_not_a_restored_weight(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(len(OLD), seed=2)
    state = {k: v for k, v in source.state_dict().items() if k.endswith('num_batches_tracked')}
    path = tmp_path / 'buffers.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    with pytest.raises(RuntimeError, match='no weight of the model was restored'):
        load_pretrained(target, str(path), FinetuneConfig(), OLD)


def test_class_transfer_off_reinitialises_rows_of_other_classes(tmp_path, make_detector):
    source = make_detector(len(OLD), seed=1)
    target = make_detector(len(OLD), seed=2)  # same count, other names
    init = {k: v.clone() for k, v in target.state_dict().items()}
    other = ('a', 'b', 'c', 'd')
    report = load_pretrained(target, _save(tmp_path, source),
                             FinetuneConfig(class_transfer=False), other)
    cls_w = 'roi_head.bbox_head.fc_cls.weight'
    assert torch.equal(target.state_dict()[cls_w], init[cls_w])
    assert cls_w in report.skipped_expected


def test_mmdetection_2x_class_names_are_read(tmp_path, make_detector):
    source, target = make_detector(len(OLD), seed=1), make_detector(len(NEW), seed=2)
    path = tmp_path / 'v2.pth'
    torch.save({'state_dict': source.state_dict(), 'meta': {'CLASSES': OLD}}, path)
    report = load_pretrained(target, str(path), FinetuneConfig(), NEW)
    assert report.source_classes == OLD and len(report.transferred) == 6
