"""tools/misc/incremental_demo.py (run_demo.py --incremental): data, runs and the table."""
import json

from tools.misc import incremental_demo as demo
from tools.misc import run_demo


def test_data_labels_only_the_new_classes_in_train_new(tmp_path):
    root = str(tmp_path / 'inc')
    demo.prepare_data(root, num_train=20, num_val=2, image_size=64, seed=0)
    full = json.loads((tmp_path / 'inc' / 'train.json').read_text())
    new = json.loads((tmp_path / 'inc' / 'train_new.json').read_text())
    assert [c['name'] for c in new['categories']] == list(demo.NEW_CLASSES)
    names = {c['id']: c['name'] for c in full['categories']}
    assert len(names) == 12 and new['images'] == full['images']
    kept = [a for a in full['annotations'] if names[a['category_id']] in demo.NEW_CLASSES]
    assert new['annotations'] == kept and 0 < len(kept) < len(full['annotations'])


def test_runs_differ_only_in_the_teacher_and_the_labels():
    runs = demo.incremental_runs(run_demo.Run, 'pre.pth', '/d', {}, 'pretrain')
    plain, inc, joint = (r.options for r in runs)
    assert plain['finetune.incremental.pseudo_labels'] is False
    assert plain['finetune.incremental.distill'] is False
    assert 'finetune.incremental.pseudo_labels' not in inc
    assert joint['finetune.incremental'] is False
    assert joint['train_dataloader.dataset.ann_file'] == 'train.json'
    assert all(o['load_from'] == 'pre.pth' for o in (plain, inc, joint))


def test_table_shares_of_pretrained_and_plain():
    def m(old, new):
        h = 2 * old * new / (old + new)
        return {f'{k}_{g}_mAP': v for k in ('bbox', 'segm')
                for g, v in (('old', old), ('new', new), ('hmean', h))}
    pretrained = {'bbox_old_mAP': 0.8, 'segm_old_mAP': 0.8}
    table, numbers = demo.results_table(
        pretrained, {'inc_plain': m(0.2, 0.5), 'inc_incremental': m(0.76, 0.48)},
        {'inc_plain': 'plain', 'inc_incremental': 'incremental'})
    assert '| incremental | bbox | 0.760 | 95% | 0.480 | 96% | 0.588 |' in table
    assert '| plain | bbox | 0.200 | 25% | 0.500 | 100% |' in table
    assert numbers['pretrained'] == pretrained


def test_recipe_config_counts_old_and_new_classes():
    from mmengine.config import Config

    from mmft.finetune.incremental import apply_incremental
    cfg = Config.fromfile(demo.CONFIG)
    cfg.finetune.source_classes = demo.UNION[:10]  # what the pretrained checkpoint carries
    assert apply_incremental(cfg) == demo.UNION
    assert cfg.model.roi_head.bbox_head.num_classes == 12
    assert cfg.model.roi_head.mask_head.num_classes == 12
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == demo.NEW_CLASSES
    assert tuple(cfg.val_evaluator.old_classes) == demo.UNION[:10]
