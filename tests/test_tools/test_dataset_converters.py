"""VOC, LabelMe, Cityscapes and image-folder converters on tiny trees built here.

Each converted json is read back with pycocotools, and the VOC, LabelMe and Cityscapes ones
train the tests' tiny Mask R-CNN (tests/tiny_runs.py) for 2 iterations through mmft's Runner.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cityscapes_labels  # the cityscapes extra
from mmengine.config import Config
from pycocotools.coco import COCO

from mmft.utils.cli import build_runner
from tests.test_datasets.dataset_trees import voc_xml, write_image
from tests.tiny_runs import REPO_ROOT, tiny_config
from tools.dataset_converters import cityscapes, images2coco, labelme2coco, voc2coco


def _write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def _train_two_iters(work_dir, **dataset):
    """Train 2 iterations on ``dataset`` (a dataset config); return the built dataset."""
    name = f'convert_{osp.basename(work_dir)}'  # MMEngine keeps loggers/visualizers by name
    cfg = tiny_config(dataset['data_root'], str(work_dir), dataset['metainfo']['classes'],
                      max_iters=2, experiment_name=name, visualizer=dict(name=name),
                      train_dataloader=dict(
                          # no epoch end inside the run: MMEngine pauses 2 s there
                          sampler=dict(type='InfiniteSampler', shuffle=True),
                          dataset=dict(dataset, filter_cfg=dict(filter_empty_gt=True))))
    runner = build_runner(cfg)
    runner.train()
    losses = {k: float(v.current()) for k, v in runner.message_hub.log_scalars.items()}
    assert runner.iter == 2
    assert np.isfinite(losses['train/loss']) and losses['train/loss_mask'] > 0
    return runner.train_dataloader.dataset


@pytest.mark.parametrize('convert, fix', [
    (lambda p: voc2coco.voc_to_coco(p, 'trainval', progress=False),
     'pass the folder that holds VOC2007/ or VOC2012/'),
    (lambda p: labelme2coco.labelme_to_coco(p, progress=False),
     'pass the folder that holds the LabelMe *.json files'),
    (lambda p: cityscapes.cityscapes_to_coco(p, p, progress=False),
     'expected e.g. cityscapes/leftImg8bit/train'),
    (lambda p: images2coco.images_to_coco(p, ['cat'], progress=False),
     'pass the folder that holds the images'),
], ids=['voc', 'labelme', 'cityscapes', 'images'])
def test_missing_input_folder_error_names_it_and_the_fix(tmp_path, convert, fix):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as error:
        convert(missing)
    assert repr(missing) in str(error.value) and fix in str(error.value)


# ------------------------------------------------------------------------------------ VOC
@pytest.fixture
def voc_tree(tmp_path):
    root = tmp_path / 'VOCdevkit'
    voc = root / 'VOC2007'
    xmls = {
        '000001': voc_xml([('dog', 0, (5, 6, 20, 25)), ('person', 1, (1, 1, 10, 10))], w=40),
        '000002': voc_xml([('car', 0, (2, 3, 30, 31)), ('unicorn', 0, (1, 1, 5, 5)),
                           ('car', 0, (9, 9, 4, 20))], w=40),
        '000003': voc_xml([('dog', 0, (1, 1, 5, 5))], w=40),  # its image is missing
        '000005': '<annotation><size>',  # truncated xml
    }
    for name, text in xmls.items():
        _write(str(voc / 'Annotations' / f'{name}.xml'), text)
    for name in ('000001', '000002', '000004', '000005'):  # 000004 has no xml
        write_image(str(voc / 'JPEGImages' / f'{name}.jpg'), 32, 40)
    _write(str(voc / 'ImageSets' / 'Main' / 'trainval.txt'),
           '000001\n000002\n000003\n000004\n000005\n000001\n')
    return str(root)


def test_voc_converts_keeps_difficult_as_crowd_and_reports_skips(voc_tree, tmp_path):
    out = str(tmp_path / 'voc.json')
    writer = voc2coco.voc_to_coco(voc_tree, 'trainval', ['2007'], out, progress=False)
    coco = COCO(out)
    assert [c['name'] for c in coco.loadCats(sorted(coco.cats))] == list(voc2coco.VOC_CLASSES)
    assert [coco.imgs[i]['file_name'] for i in sorted(coco.imgs)] == [
        'VOC2007/JPEGImages/000001.jpg', 'VOC2007/JPEGImages/000002.jpg']
    assert writer.instances_per_class() == dict(dict.fromkeys(voc2coco.VOC_CLASSES, 0), dog=1,
                                                person=1, car=1)
    by_cat = {coco.cats[a['category_id']]['name']: a for a in coco.anns.values()}
    # 1-based VOC corners -> 0-based COCO xywh, as mmdet's converter
    assert by_cat['dog']['bbox'] == [4.0, 5.0, 15.0, 19.0]
    assert by_cat['dog']['area'] == 15 * 19 and by_cat['dog']['iscrowd'] == 0
    assert by_cat['person']['iscrowd'] == 1  # difficult
    assert by_cat['dog']['category_id'] == voc2coco.VOC_CLASSES.index('dog') + 1
    for ann in coco.anns.values():
        assert coco.annToMask(ann).sum() > 0
    # each broken item is named, with what is wrong and how to fix it
    voc = osp.join(voc_tree, 'VOC2007')
    fix_list = 'add the file, or remove the id from the image list'
    skipped = {s['item']: s['reason'] for s in writer.skipped}
    unreadable = skipped.pop(osp.join(voc, 'Annotations', '000005.xml'))
    assert unreadable.startswith('unreadable xml (') and unreadable.endswith(
        'fix the file, or remove the id from the image list')
    assert skipped == {
        osp.join(voc, 'Annotations', '000002.xml object 1'):
            "unknown label 'unicorn'; fix the <name>, or list the class with --classes",
        osp.join(voc, 'Annotations', '000002.xml object 2'):
            'empty box (xmax <= xmin or ymax <= ymin); fix the <bndbox>',
        osp.join(voc, 'JPEGImages', '000003.jpg'): f'missing image; {fix_list}',
        osp.join(voc, 'Annotations', '000004.xml'): f'missing annotation xml; {fix_list}',
        osp.join(voc, 'ImageSets', 'Main', 'trainval.txt id 000001'):
            'id listed twice; remove the repeat',
    }
    assert "unknown label 'unicorn'; fix the <name>" in writer.summary()


def test_voc_cli_writes_mmdet_names_and_the_json_trains(voc_tree, tmp_path, capsys):
    out_dir = osp.join(voc_tree, 'annotations')
    voc2coco.main([voc_tree, '-o', out_dir, '--no-progress'])
    assert os.listdir(out_dir) == ['voc07_trainval.json']
    out = capsys.readouterr().out
    assert 'voc07_train: no image list, skipped' in out
    assert '2 images, 3 instances, 6 skipped items' in out
    dataset = _train_two_iters(
        tmp_path / 'voc', type='CocoDataset', data_root=voc_tree,
        ann_file='annotations/voc07_trainval.json', data_prefix=dict(img=''),
        metainfo=dict(classes=voc2coco.VOC_CLASSES))
    assert len(dataset) == 2 and not dataset.skipped
    with pytest.raises(FileNotFoundError, match=r"image list .*test\.txt' does not exist; "
                       r"check the year \(2007\) and split \('test'\)"):
        voc2coco.voc_to_coco(voc_tree, 'test', ['2007'], progress=False)
    with pytest.raises(SystemExit, match='contains neither VOC2007/ nor VOC2012/; pass the '
                       'VOCdevkit folder'):
        voc2coco.main([str(tmp_path), '--no-progress'])


def test_voc_cli_takes_a_class_list(voc_tree, tmp_path, capsys):
    _write(str(tmp_path / 'classes.txt'), 'unicorn\n\ndog\n')
    voc2coco.main([voc_tree, '-o', str(tmp_path / 'ann'), '--classes',
                   str(tmp_path / 'classes.txt'), '--no-progress'])
    coco = COCO(str(tmp_path / 'ann' / 'voc07_trainval.json'))
    assert [(c['id'], c['name']) for c in coco.cats.values()] == [(1, 'unicorn'), (2, 'dog')]
    assert sorted(coco.cats[a['category_id']]['name'] for a in coco.anns.values()) == [
        'dog', 'unicorn']
    assert "unknown label 'car'" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ LabelMe
def _labelme(image_path, shapes, h=30, w=40):
    return json.dumps(dict(version='5.0.1', imagePath=image_path, imageHeight=h, imageWidth=w,
                           imageData=None, shapes=shapes))


def _shape(label, points, shape_type='polygon', group_id=None):
    return dict(label=label, points=points, shape_type=shape_type, group_id=group_id, flags={})


@pytest.fixture
def labelme_tree(tmp_path):
    root = tmp_path / 'labelme'
    write_image(str(root / 'a.png'), 30, 40)
    write_image(str(root / 'sub' / 'b.png'), 30, 40)
    _write(str(root / 'a.json'), _labelme('a.png', [
        _shape('cat', [[2, 2], [12, 2], [12, 8], [2, 8]]),           # 10 x 6
        _shape('dog', [[30, 20], [20, 10]], 'rectangle'),            # 10 x 10
        _shape('cat', [[1, 1], [5, 5]]),                             # 2-point polygon
        _shape('cat', [[1, 1], [5, 5]], 'line'),                     # no area
        _shape('zebra', [[0, 0], [4, 0], [4, 4]]),                   # not in --classes
    ]))
    # one dog in two parts; imagePath as LabelMe writes it on Windows
    _write(str(root / 'sub' / 'b.json'), _labelme('..\\sub\\b.png', [
        _shape('dog', [[0, 0], [4, 0], [4, 5], [0, 5]], group_id=1),
        _shape('dog', [[10, 10], [16, 10], [16, 12], [10, 12]], group_id=1),
        'not a shape',
    ]))
    _write(str(root / 'c.json'), _labelme('missing.png', []))
    _write(str(root / 'd.json'), '{not json')
    _write(str(root / 'e.json'), '[1, 2]')  # json, but not LabelMe's
    _write(str(tmp_path / 'classes.txt'), 'cat\ndog\n')
    return str(root)


def test_labelme_converts_and_reports_skips(labelme_tree, tmp_path):
    out = str(tmp_path / 'labelme.json')
    writer = labelme2coco.labelme_to_coco(labelme_tree, out, ['cat', 'dog'], progress=False)
    coco = COCO(out)
    assert sorted(img['file_name'] for img in coco.imgs.values()) == ['a.png', 'sub/b.png']
    assert writer.instances_per_class() == {'cat': 1, 'dog': 2}
    anns = sorted(coco.anns.values(), key=lambda a: a['id'])
    assert [coco.cats[a['category_id']]['name'] for a in anns] == ['cat', 'dog', 'dog']
    assert [a['bbox'] for a in anns] == [[2, 2, 10, 6], [20, 10, 10, 10], [0, 0, 16, 12]]
    assert [a['area'] for a in anns] == [60, 100, 4 * 5 + 6 * 2]
    assert len(anns[2]['segmentation']) == 2
    for ann in anns:
        assert coco.annToMask(ann).sum() == ann['area']
    skipped = {s['item'].replace(labelme_tree + os.sep, ''): s['reason'] for s in writer.skipped}
    assert skipped.pop('d.json').startswith('unreadable LabelMe json (JSONDecodeError: ')
    assert skipped.pop('e.json').startswith('unreadable LabelMe json (TypeError: ')
    assert skipped == {
        'a.json shape 2': 'polygon with 2 points (needs >= 3); redraw it',
        'a.json shape 3': "unsupported shape_type 'line' (no area); draw a polygon, rectangle "
                          'or circle',
        'a.json shape 4': "unknown label 'zebra'; fix the label, or add it to --classes",
        'sub/b.json shape 2': 'shape is not a json object; fix the file',
        'c.json': f'missing image {osp.join(labelme_tree, "missing.png")}; put it there or fix '
                  '"imagePath"',
    }


def test_labelme_collects_classes_cli_and_the_json_trains(labelme_tree, tmp_path, capsys):
    writer = labelme2coco.labelme_to_coco(labelme_tree, progress=False)
    assert writer.classes == ['cat', 'dog', 'zebra']
    assert writer.instances_per_class()['zebra'] == 1
    out = str(tmp_path / 'cli.json')
    labelme2coco.main([labelme_tree, out, '--classes', str(tmp_path / 'classes.txt'),
                       '--no-progress'])
    assert len(COCO(out).anns) == 3
    printed = capsys.readouterr().out
    assert '2 images, 3 instances, 7 skipped items' in printed
    assert osp.join(labelme_tree, 'a.json') + " shape 4: unknown label 'zebra'" in printed
    dataset = _train_two_iters(tmp_path / 'labelme', type='CocoDataset', data_root=labelme_tree,
                               ann_file=out, data_prefix=dict(img=''),
                               metainfo=dict(classes=('cat', 'dog')))
    assert len(dataset) == 2 and not dataset.skipped


# ------------------------------------------------------------------------------------ Cityscapes
CITY_STEMS = ('aachen/aachen_000000_000019', 'bochum/bochum_000000_000019',
              'bonn/bonn_000001_000019')


@pytest.fixture
def cityscapes_tree(tmp_path):
    """leftImg8bit/train and gtFine/train: aachen with the instanceIds png that Cityscapes
    ships, bochum with only a polygons json (drawn with cityscapesscripts), bonn with neither."""
    root = tmp_path / 'cityscapes'
    img_dir, gt_dir = root / 'leftImg8bit' / 'train', root / 'gtFine' / 'train'
    for stem, width in zip(CITY_STEMS, (64, 48, 64)):
        write_image(str(img_dir / f'{stem}_leftImg8bit.png'), 32, width)
    ids = np.full((32, 64), 7, np.uint16)  # road
    ids[2:10, 3:13] = 26000                # car #0: 8 x 10
    ids[20:30, 40:44] = 26001              # car #1: 10 x 4
    ids[12:20, 20:25] = 24000              # person: 8 x 5
    ids[0:2, 50:64] = 24                   # a crowd of persons: 2 x 14
    ids[25:30, 0:6] = 29000                # caravan: ignored in evaluation, dropped
    ids[30:32, 60:64] = 500                # not a Cityscapes label
    inst_file = gt_dir / f'{CITY_STEMS[0]}_gtFine_instanceIds.png'
    os.makedirs(inst_file.parent)
    assert cv2.imwrite(str(inst_file), ids)  # 16-bit, as Cityscapes' own files
    objects = [
        dict(label='road', polygon=[[0, 0], [47, 0], [47, 31], [0, 31]]),
        dict(label='car', polygon=[[2, 2], [11, 2], [11, 9], [2, 9]]),
        dict(label='persongroup', polygon=[[30, 20], [39, 20], [39, 24], [30, 24]]),
        dict(label='car', polygon=[[40, 2], [45, 2], [45, 6], [40, 6]], deleted=1),
        dict(label='spaceship', polygon=[[20, 20], [25, 20], [25, 25]]),
        dict(label='car', polygon=[[1, 1], [5, 5]]),
    ]
    _write(str(gt_dir / f'{CITY_STEMS[1]}_gtFine_polygons.json'),
           json.dumps(dict(imgHeight=32, imgWidth=48, objects=objects)))
    return str(root)


def test_cityscapes_converts_instance_ids_and_polygons(cityscapes_tree, tmp_path):
    img_dir, gt_dir = (osp.join(cityscapes_tree, d, 'train') for d in ('leftImg8bit', 'gtFine'))
    out = str(tmp_path / 'cs.json')
    writer = cityscapes.cityscapes_to_coco(img_dir, gt_dir, out, progress=False)
    coco = COCO(out)
    # mmdet's categories: the 8 evaluated instance classes, Cityscapes label ids as ids
    assert [(c['id'], c['name']) for c in coco.loadCats(sorted(coco.cats))] == [
        (24, 'person'), (25, 'rider'), (26, 'car'), (27, 'truck'), (28, 'bus'), (31, 'train'),
        (32, 'motorcycle'), (33, 'bicycle')]
    assert [(i['file_name'], i['segm_file'], i['height'], i['width'])
            for i in coco.loadImgs(sorted(coco.imgs))] == [
        (f'{s}_leftImg8bit.png', f'{s}_gtFine_labelIds.png', 32, w)
        for s, w in zip(CITY_STEMS[:2], (64, 48))]
    got = [sorted((a['category_id'], a['iscrowd'], a['bbox'], a['area'])
                  for a in coco.imgToAnns[img_id]) for img_id in sorted(coco.imgs)]
    assert got == [
        # instanceIds: a value < 1000 is a crowd region, the caravan is left out
        [(24, 0, [20, 12, 5, 8], 40), (24, 1, [50, 0, 14, 2], 28),
         (26, 0, [3, 2, 10, 8], 80), (26, 0, [40, 20, 4, 10], 40)],
        # polygons: a *group label is a crowd, a deleted object is left out; PIL fills
        # polygons including their outline, so corners 2..11 are 10 pixels
        [(24, 1, [30, 20, 10, 5], 50), (26, 0, [2, 2, 10, 8], 80)]]
    for ann in coco.anns.values():
        assert coco.annToMask(ann).sum() == ann['area']
    assert writer.instances_per_class(iscrowd=0) == dict(
        person=1, rider=0, car=3, truck=0, bus=0, train=0, motorcycle=0, bicycle=0)
    poly_file = osp.join(gt_dir, f'{CITY_STEMS[1]}_gtFine_polygons.json')
    skipped = {s['item']: s['reason'] for s in writer.skipped}
    assert skipped.pop(osp.join(img_dir, f'{CITY_STEMS[2]}_leftImg8bit.png')).startswith(
        'missing annotation: neither')
    assert skipped == {
        osp.join(gt_dir, f'{CITY_STEMS[0]}_gtFine_instanceIds.png value 500'):
            'label id 500 is not a Cityscapes instance class; check that the png is a gtFine '
            'instanceIds image',
        f'{poly_file} object 4':
            "unknown label 'spaceship'; use a name from cityscapesscripts.helpers.labels",
        f'{poly_file} object 5': 'polygon with 2 points (needs >= 3); redraw it',
    }
    parallel = cityscapes.cityscapes_to_coco(img_dir, gt_dir, nproc=2, progress=False)
    assert parallel.to_dict() == writer.to_dict() and parallel.skipped == writer.skipped


def test_cityscapes_cli_output_fits_the_base_config_and_trains(cityscapes_tree, tmp_path,
                                                               capsys):
    out_dir = osp.join(cityscapes_tree, 'annotations')
    cityscapes.main([cityscapes_tree, '-o', out_dir, '--no-progress'])
    assert os.listdir(out_dir) == ['instancesonly_filtered_gtFine_train.json']
    out = capsys.readouterr().out
    assert 'val: ' in out and 'does not exist, skipped' in out
    assert '2 images, 6 instances, 4 skipped items' in out
    # the paths of configs/_base_/datasets/cityscapes_instance.py, under this tree
    base = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/datasets/cityscapes_instance.py'))
    train_set = base.train_dataloader.dataset.dataset
    dataset = _train_two_iters(tmp_path / 'cityscapes', type=train_set.type,
                               data_root=cityscapes_tree, ann_file=train_set.ann_file,
                               data_prefix=train_set.data_prefix,
                               metainfo=dict(classes=cityscapes.CITYSCAPES_CLASSES))
    assert type(dataset).__name__ == 'CityscapesDataset'
    assert len(dataset) == 2 and not dataset.skipped
    with pytest.raises(SystemExit, match="has no train/, val/ or test/ folder; pass the folder "
                       'that holds leftImg8bit/ and gtFine/'):
        cityscapes.main([str(tmp_path / 'empty'), '--no-progress'])


def test_cityscapes_skips_unreadable_annotation_files(tmp_path):
    img_dir, gt_dir = tmp_path / 'leftImg8bit' / 'val', tmp_path / 'gtFine' / 'val'
    for city in ('aachen', 'bonn'):
        write_image(str(img_dir / city / f'{city}_000000_000019_leftImg8bit.png'), 16, 16)
    _write(str(gt_dir / 'aachen' / 'aachen_000000_000019_gtFine_instanceIds.png'), 'not a png')
    _write(str(gt_dir / 'bonn' / 'bonn_000000_000019_gtFine_polygons.json'), '{"imgHeight": 16')
    writer = cityscapes.cityscapes_to_coco(str(img_dir), str(gt_dir), progress=False)
    assert writer.images == []
    reasons = {osp.basename(s['item']): s['reason'] for s in writer.skipped}
    fix = 'restore the file from gtFine_trainvaltest.zip'
    assert reasons['aachen_000000_000019_gtFine_instanceIds.png'] == (
        f'unreadable instance ids png (expected one 16-bit channel); {fix}')
    polygons = reasons['bonn_000000_000019_gtFine_polygons.json']
    assert polygons.startswith('unreadable polygons json (JSONDecodeError: ')
    assert polygons.endswith(fix)


def test_cityscapes_label_table_matches_cityscapesscripts():
    labels = cityscapes_labels
    evaluated = {l.id: l.name for l in labels.labels if l.hasInstances and not l.ignoreInEval}
    ignored = {l.id: l.name for l in labels.labels if l.hasInstances and l.ignoreInEval}
    assert evaluated == cityscapes.CITYSCAPES_INSTANCE_LABELS
    assert ignored == cityscapes.CITYSCAPES_IGNORED_INSTANCE_LABELS


# ------------------------------------------------------------------------------------ images
def test_images_to_coco_lists_readable_images(tmp_path, capsys):
    img_dir = tmp_path / 'demo' / 'images'
    write_image(str(img_dir / 'a.png'), 20, 30)
    write_image(str(img_dir / 'nested' / 'b.png'), 16, 8)
    write_image(str(img_dir / 'c.jpg'), 10, 10)
    _write(str(img_dir / 'broken.png'), 'not a png')
    _write(str(img_dir / 'notes.txt'), 'ignored')
    writer = images2coco.images_to_coco(str(img_dir), ['cat'], exclude_extensions=['jpg'],
                                        progress=False)
    assert [(i['file_name'], i['height'], i['width']) for i in writer.images] == [
        ('a.png', 20, 30), ('nested/b.png', 16, 8)]
    assert writer.skipped == [dict(item=str(img_dir / 'broken.png'), reason='unreadable '
                                   'image (UnidentifiedImageError); replace or remove it')]
    _write(str(tmp_path / 'classes.txt'), 'cat\ndog\n')
    images2coco.main([str(img_dir), str(tmp_path / 'classes.txt'), 'test.json',
                      '--no-progress'])
    coco = COCO(str(tmp_path / 'demo' / 'annotations' / 'test.json'))
    assert len(coco.imgs) == 3 and len(coco.anns) == 0
    assert [c['name'] for c in coco.cats.values()] == ['cat', 'dog']
    assert '3 images, 0 instances, 1 skipped items' in capsys.readouterr().out
