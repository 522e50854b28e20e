"""Small data trees for the dataset tests, written by hand (images <= 128 px)."""
import json
import os
import os.path as osp

import cv2
import numpy as np

from tools.dataset_converters.cityscapes import cityscapes_to_coco


def write_image(path, height, width, value=None, seed=0):
    """A random (or constant) BGR PNG/JPEG; returns the pixels written."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if value is None else \
        np.full((height, width, 3), value, np.uint8)
    assert cv2.imwrite(str(path), img)
    return img


def write_coco(path, images, annotations, categories):
    """A COCO json; ``images`` are (id, file_name, height, width) tuples."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    content = dict(images=[dict(id=i, file_name=f, height=h, width=w) for i, f, h, w in images],
                   annotations=[dict(dict(id=k + 1, iscrowd=0, area=1.0), **a)
                                for k, a in enumerate(annotations)],
                   categories=[dict(id=i, name=n) for i, n in categories])
    with open(path, 'w') as f:
        json.dump(content, f)
    return str(path)


def rect_polygon(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def voc_xml(objects, w=48, h=32, size=True):
    objs = ''.join(
        f'<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>'
        f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>'
        for n, d, b in objects)
    size_tag = f'<size><width>{w}</width><height>{h}</height></size>' if size else ''
    return f'<annotation>{size_tag}{objs}</annotation>'


def make_voc(root, year, xmls, ids=None):
    """VOC{year}/ with Annotations, JPEGImages (48x32) and ImageSets/Main/trainval.txt."""
    voc = osp.join(root, f'VOC{year}')
    for name, text in xmls.items():
        os.makedirs(osp.join(voc, 'Annotations'), exist_ok=True)
        with open(osp.join(voc, 'Annotations', f'{name}.xml'), 'w') as f:
            f.write(text)
        write_image(osp.join(voc, 'JPEGImages', f'{name}.jpg'), 32, 48)
    os.makedirs(osp.join(voc, 'ImageSets', 'Main'), exist_ok=True)
    with open(osp.join(voc, 'ImageSets', 'Main', 'trainval.txt'), 'w') as f:
        f.write(''.join(f'{i}\n' for i in (ids or xmls)))
    return str(root)


def _city_image(root, split, stem, ids):
    write_image(osp.join(root, 'leftImg8bit', split, 'aachen', f'{stem}_leftImg8bit.png'),
                *ids.shape)
    gt_dir = osp.join(root, 'gtFine', split, 'aachen')
    os.makedirs(gt_dir, exist_ok=True)
    assert cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_instanceIds.png'), ids.astype(np.uint16))


def make_cityscapes(root):
    """leftImg8bit/train, gtFine/train (2 images, one with only a crowd region) and the json
    that tools/dataset_converters/cityscapes.py writes for them."""
    root = str(root)
    ids = np.zeros((48, 96), np.int32)
    ids[4:20, 8:30] = 26000  # car 0
    ids[24:44, 40:50] = 24001  # person 1
    ids[30:40, 70:90] = 25  # a crowd of riders
    _city_image(root, 'train', 'aachen_000000_000019', ids)
    crowd_only = np.zeros((48, 96), np.int32)
    crowd_only[5:25, 5:25] = 24
    _city_image(root, 'train', 'aachen_000001_000019', crowd_only)
    cityscapes_to_coco(osp.join(root, 'leftImg8bit', 'train'), osp.join(root, 'gtFine', 'train'),
                       osp.join(root, 'annotations', 'instancesonly_filtered_gtFine_train.json'),
                       progress=False)
    return root
