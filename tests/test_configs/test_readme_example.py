"""The config that README.md shows for "fine-tune on your own data" loads and reads data."""
import json
import os
import os.path as osp
import re
import textwrap

from mmengine.config import Config

from mmft.datasets.synthetic import generate_shapes_dataset
from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.registry import DATASETS


def _readme_config(repo_root: str, folder) -> str:
    with open(osp.join(repo_root, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    block = re.search(r'```python\n\s*(# configs/my_project.py\n.*?)```', readme, re.S)
    assert block, 'README.md no longer shows configs/my_project.py'
    text = textwrap.dedent('   ' + block.group(1))
    # the README's config sits in configs/; this copy lives in a temporary folder
    text = text.replace("'./finetune/", "'" + osp.join(repo_root, 'configs', 'finetune') + '/')
    path = folder / 'my_project.py'
    path.write_text(text)
    return str(path)


def _my_data(root, classes):
    """A COCO export laid out as the README says: my_data/{train,val}.json, my_data/images/."""
    shapes = ('circle', 'triangle', 'star')
    for split in ('train', 'val'):
        generate_shapes_dataset(str(root), classes=shapes, num_images=3, image_size=64,
                                split_name='images', progress=False)
        with open(root / 'images.json') as f:
            coco = json.load(f)
        for category in coco['categories']:
            category['name'] = classes[shapes.index(category['name'])]
        with open(root / f'{split}.json', 'w') as f:
            json.dump(coco, f)
    os.remove(root / 'images.json')


def test_readme_config_resolves_and_reads_the_data(repo_root, tmp_path):
    cfg = Config.fromfile(_readme_config(repo_root, tmp_path))
    classes = ('pedestrian', 'car', 'forklift')
    assert resolve_num_classes(cfg) == classes
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    assert cfg.model.roi_head.mask_head.num_classes == 3
    assert cfg.val_evaluator == dict(type='CocoMetric', ann_file='my_data/val.json',
                                     metric=['bbox', 'segm'])
    assert FinetuneConfig.from_cfg(cfg.finetune).class_mapping == {'pedestrian': 'person'}

    _my_data(tmp_path / 'my_data', classes)
    for loader in ('train_dataloader', 'val_dataloader'):
        dataset_cfg = cfg[loader].dataset
        dataset_cfg.data_root = str(tmp_path / 'my_data') + '/'
        dataset = DATASETS.build(dataset_cfg)
        assert dataset.metainfo['classes'] == classes and len(dataset) == 3
        sample = dataset[0]['data_samples']
        assert len(sample.gt_instances) > 0 and max(sample.gt_instances.labels) < 3
