"""VOC, LabelMe, Cityscapes and image-folder converters on tiny trees built here."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from tools.dataset_converters import cityscapes, images2coco, labelme2coco, voc2coco


def _image(path, h, w, value=128):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def _write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def _reasons(writer):
    return sorted(s['reason'] for s in writer.skipped)


# ------------------------------------------------------------------------------------ VOC
def _voc_xml(objects, w=40, h=32):
    objs = ''.join(
        f'<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>'
        f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>'
        for n, d, b in objects)
    return (f'<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>'
            f'{objs}</annotation>')


@pytest.fixture
def voc_tree(tmp_path):
    root = tmp_path / 'VOCdevkit'
    voc = root / 'VOC2007'
    xmls = {
        '000001': _voc_xml([('dog', 0, (5, 6, 20, 25)), ('person', 1, (1, 1, 10, 10))]),
        '000002': _voc_xml([('car', 0, (2, 3, 30, 31)), ('unicorn', 0, (1, 1, 5, 5)),
                            ('car', 0, (9, 9, 4, 20))]),
        '000003': _voc_xml([('dog', 0, (1, 1, 5, 5))]),  # its image is missing
        '000005': '<annotation><size>',  # truncated xml
    }
    for name, text in xmls.items():
        _write(str(voc / 'Annotations' / f'{name}.xml'), text)
    for name in ('000001', '000002', '000004', '000005'):  # 000004 has no xml
        _image(str(voc / 'JPEGImages' / f'{name}.jpg'), 32, 40)
    _write(str(voc / 'ImageSets' / 'Main' / 'trainval.txt'),
           '000001\n000002\n000003\n000004\n000005\n')
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
    reasons = _reasons(writer)
    assert reasons[:4] == ['empty box', 'missing annotation xml', 'missing image',
                           "unknown label 'unicorn'"]
    assert len(reasons) == 5 and reasons[4].startswith('unreadable xml')
    assert "unknown label 'unicorn'" in writer.summary()


def test_voc_cli_writes_available_splits(voc_tree, tmp_path, capsys):
    out_dir = str(tmp_path / 'ann')
    voc2coco.main([voc_tree, '-o', out_dir, '--no-progress'])
    assert os.listdir(out_dir) == ['voc07_trainval.json']
    out = capsys.readouterr().out
    assert 'voc07_train: no image list, skipped' in out
    assert '2 images, 3 instances, 5 skipped items' in out
    with pytest.raises(FileNotFoundError, match='image list'):
        voc2coco.voc_to_coco(voc_tree, 'test', ['2007'], progress=False)
    with pytest.raises(FileNotFoundError, match='devkit_path'):
        voc2coco.voc_to_coco(str(tmp_path / 'nowhere'), 'trainval', progress=False)


# ------------------------------------------------------------------------------------ LabelMe
def _labelme(image_path, shapes, h=30, w=40):
    return json.dumps(dict(version='5.0.1', imagePath=image_path, imageHeight=h, imageWidth=w,
                           imageData=None, shapes=shapes))


def _shape(label, points, shape_type='polygon', group_id=None):
    return dict(label=label, points=points, shape_type=shape_type, group_id=group_id, flags={})


@pytest.fixture
def labelme_tree(tmp_path):
    root = tmp_path / 'labelme'
    _image(str(root / 'a.png'), 30, 40)
    _image(str(root / 'sub' / 'b.png'), 30, 40)
    _write(str(root / 'a.json'), _labelme('a.png', [
        _shape('cat', [[2, 2], [12, 2], [12, 8], [2, 8]]),           # 10 x 6
        _shape('dog', [[30, 20], [20, 10]], 'rectangle'),            # 10 x 10
        _shape('cat', [[1, 1], [5, 5]]),                             # 2-point polygon
        _shape('cat', [[1, 1], [5, 5]], 'line'),                     # no area
        _shape('zebra', [[0, 0], [4, 0], [4, 4]]),                   # not in --classes
    ]))
    _write(str(root / 'sub' / 'b.json'), _labelme('b.png', [       # one dog in two parts
        _shape('dog', [[0, 0], [4, 0], [4, 5], [0, 5]], group_id=1),
        _shape('dog', [[10, 10], [16, 10], [16, 12], [10, 12]], group_id=1),
    ]))
    _write(str(root / 'c.json'), _labelme('missing.png', []))
    _write(str(root / 'd.json'), '{not json')
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
    reasons = _reasons(writer)
    assert 'polygon with 2 points (needs >= 3)' in reasons
    assert "unsupported shape_type 'line'" in reasons
    assert "unknown label 'zebra'" in reasons
    assert any(r.startswith('missing image') for r in reasons)
    assert any(r.startswith('unreadable LabelMe json') for r in reasons)
    assert len(reasons) == 5


def test_labelme_collects_classes_and_cli(labelme_tree, tmp_path, capsys):
    writer = labelme2coco.labelme_to_coco(labelme_tree, progress=False)
    assert writer.classes == ['cat', 'dog', 'zebra']
    assert writer.instances_per_class()['zebra'] == 1
    out = str(tmp_path / 'cli.json')
    labelme2coco.main([labelme_tree, out, '--classes', str(tmp_path / 'classes.txt'),
                       '--no-progress'])
    assert len(COCO(out).anns) == 3
    assert '2 images, 3 instances, 5 skipped items' in capsys.readouterr().out


# ------------------------------------------------------------------------------------ Cityscapes
@pytest.fixture
def cityscapes_tree(tmp_path):
    root = tmp_path / 'cityscapes'
    stem = 'aachen/aachen_000000_000019'
    _image(str(root / 'leftImg8bit' / 'train' / f'{stem}_leftImg8bit.png'), 32, 64)
    _image(str(root / 'leftImg8bit' / 'train' / 'bonn/bonn_000001_000019_leftImg8bit.png'),
           32, 64)  # its instanceIds png is missing
    ids = np.full((32, 64), 7, np.uint16)  # road
    ids[2:10, 3:13] = 26000                # car #0: 8 x 10
    ids[20:30, 40:44] = 26001              # car #1: 10 x 4
    ids[12:20, 20:25] = 24000              # person: 8 x 5
    ids[0:2, 50:64] = 24                   # a crowd of persons: 2 x 14
    ids[25:30, 0:6] = 29000                # caravan: ignored in evaluation, dropped
    ids[30:32, 60:64] = 500                # not a Cityscapes label
    inst_file = root / 'gtFine' / 'train' / f'{stem}_gtFine_instanceIds.png'
    os.makedirs(inst_file.parent)
    assert cv2.imwrite(str(inst_file), ids)
    return str(root)


def test_cityscapes_converts_instance_ids(cityscapes_tree, tmp_path):
    root = cityscapes_tree
    out = str(tmp_path / 'cs.json')
    writer = cityscapes.cityscapes_to_coco(osp.join(root, 'leftImg8bit', 'train'),
                                           osp.join(root, 'gtFine', 'train'), out,
                                           progress=False)
    coco = COCO(out)
    assert [(c['id'], c['name']) for c in coco.loadCats(sorted(coco.cats))] == [
        (24, 'person'), (25, 'rider'), (26, 'car'), (27, 'truck'), (28, 'bus'), (31, 'train'),
        (32, 'motorcycle'), (33, 'bicycle')]
    (img, ) = coco.imgs.values()
    assert img['file_name'] == 'aachen/aachen_000000_000019_leftImg8bit.png'
    assert img['segm_file'] == 'aachen/aachen_000000_000019_gtFine_labelIds.png'
    assert (img['height'], img['width']) == (32, 64)
    got = sorted((a['category_id'], a['iscrowd'], a['bbox'], a['area'])
                 for a in coco.anns.values())
    assert got == [(24, 0, [20, 12, 5, 8], 40), (24, 1, [50, 0, 14, 2], 28),
                   (26, 0, [3, 2, 10, 8], 80), (26, 0, [40, 20, 4, 10], 40)]
    for ann in coco.anns.values():
        assert coco.annToMask(ann).sum() == ann['area']
    assert writer.instances_per_class(iscrowd=0) == dict(
        person=1, rider=0, car=2, truck=0, bus=0, train=0, motorcycle=0, bicycle=0)
    assert len(writer.skipped) == 2
    assert any(r.startswith('missing annotation: neither') for r in _reasons(writer))
    assert 'label id 500 is not a Cityscapes instance class' in _reasons(writer)


def test_cityscapes_cli_names_files_like_mmdet(cityscapes_tree, tmp_path, capsys):
    out_dir = str(tmp_path / 'ann')
    cityscapes.main([cityscapes_tree, '-o', out_dir, '--no-progress'])
    assert os.listdir(out_dir) == ['instancesonly_filtered_gtFine_train.json']
    out = capsys.readouterr().out
    assert 'val:' in out and 'skipped' in out
    assert '1 images, 4 instances, 2 skipped items' in out
    with pytest.raises(FileNotFoundError, match='gt_dir'):
        cityscapes.cityscapes_to_coco(osp.join(cityscapes_tree, 'leftImg8bit', 'train'),
                                      str(tmp_path / 'nowhere'), progress=False)


def test_cityscapes_draws_ids_from_polygons_json(tmp_path):
    pytest.importorskip('cityscapesscripts')
    img_dir, gt_dir = tmp_path / 'leftImg8bit' / 'val', tmp_path / 'gtFine' / 'val'
    _image(str(img_dir / 'koeln' / 'koeln_000000_000019_leftImg8bit.png'), 32, 48)
    objects = [
        dict(label='road', polygon=[[0, 0], [47, 0], [47, 31], [0, 31]]),
        dict(label='car', polygon=[[2, 2], [11, 2], [11, 9], [2, 9]]),
        dict(label='persongroup', polygon=[[30, 20], [39, 20], [39, 24], [30, 24]]),
        dict(label='car', polygon=[[40, 2], [45, 2], [45, 6], [40, 6]], deleted=1),
        dict(label='spaceship', polygon=[[20, 20], [25, 20], [25, 25]]),
        dict(label='car', polygon=[[1, 1], [5, 5]]),
    ]
    _write(str(gt_dir / 'koeln' / 'koeln_000000_000019_gtFine_polygons.json'),
           json.dumps(dict(imgHeight=32, imgWidth=48, objects=objects)))
    writer = cityscapes.cityscapes_to_coco(str(img_dir), str(gt_dir), progress=False)
    got = sorted((a['category_id'], a['iscrowd'], a['bbox'], a['area'])
                 for a in writer.annotations)
    # PIL fills polygons including their outline: corners 2..11 are 10 pixels
    assert got == [(24, 1, [30, 20, 10, 5], 50), (26, 0, [2, 2, 10, 8], 80)]
    assert _reasons(writer) == ['polygon with 2 points (needs >= 3)', "unknown label 'spaceship'"]


def test_cityscapes_label_table_matches_cityscapesscripts():
    labels = pytest.importorskip('cityscapesscripts.helpers.labels')
    evaluated = {l.id: l.name for l in labels.labels if l.hasInstances and not l.ignoreInEval}
    ignored = {l.id: l.name for l in labels.labels if l.hasInstances and l.ignoreInEval}
    assert evaluated == cityscapes.CITYSCAPES_INSTANCE_LABELS
    assert ignored == cityscapes.CITYSCAPES_IGNORED_INSTANCE_LABELS


# ------------------------------------------------------------------------------------ images
def test_images_to_coco_lists_readable_images(tmp_path, capsys):
    img_dir = tmp_path / 'demo' / 'images'
    _image(str(img_dir / 'a.png'), 20, 30)
    _image(str(img_dir / 'nested' / 'b.png'), 16, 8)
    _image(str(img_dir / 'c.jpg'), 10, 10)
    _write(str(img_dir / 'broken.png'), 'not a png')
    _write(str(img_dir / 'notes.txt'), 'ignored')
    writer = images2coco.images_to_coco(str(img_dir), ['cat'], exclude_extensions=['jpg'],
                                        progress=False)
    assert [(i['file_name'], i['height'], i['width']) for i in writer.images] == [
        ('a.png', 20, 30), ('nested/b.png', 16, 8)]
    assert writer.skipped == [dict(item='broken.png', reason='unreadable image '
                                   '(UnidentifiedImageError)')]
    _write(str(tmp_path / 'classes.txt'), 'cat\ndog\n')
    images2coco.main([str(img_dir), str(tmp_path / 'classes.txt'), 'test.json',
                      '--no-progress'])
    coco = COCO(str(tmp_path / 'demo' / 'annotations' / 'test.json'))
    assert len(coco.imgs) == 3 and len(coco.anns) == 0
    assert [c['name'] for c in coco.cats.values()] == ['cat', 'dog']
    assert '3 images, 0 instances, 1 skipped items' in capsys.readouterr().out
