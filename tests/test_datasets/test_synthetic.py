"""The synthetic shapes generator: COCO validity, geometry of the annotations, determinism."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmft.datasets.synthetic import (SHAPES_SYNONYMS, SOURCE_CLASSES, TARGET_CLASSES,
                                     generate_shapes_benchmark, generate_shapes_dataset)

SIZE = 64


def _generate(out_dir, seed=0, **kwargs):
    kwargs.setdefault('num_images', 6)
    return generate_shapes_dataset(str(out_dir), image_size=SIZE, seed=seed, progress=False,
                                   **kwargs)


def _tree_bytes(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope='module')
def source_train(tmp_path_factory):
    out = tmp_path_factory.mktemp('shapes')
    return _generate(out, num_images=10), str(out)


def test_output_loads_with_pycocotools(source_train):
    ann_file, out_dir = source_train
    assert ann_file == osp.join(out_dir, 'train.json')
    coco = COCO(ann_file)
    assert [coco.cats[i]['name'] for i in sorted(coco.cats)] == list(SOURCE_CLASSES)
    assert sorted(coco.imgs) == list(range(1, 11))
    # 1..4 objects attempted per image; occlusion rejection may drop an object, never all
    per_image = [len(coco.getAnnIds(imgIds=[i])) for i in coco.imgs]
    assert min(per_image) >= 1 and max(per_image) <= 4
    for img in coco.imgs.values():
        pixels = cv2.imread(osp.join(out_dir, 'train', img['file_name']), cv2.IMREAD_UNCHANGED)
        assert pixels is not None and pixels.shape == (SIZE, SIZE, 3)
        assert (img['height'], img['width']) == (SIZE, SIZE)


def test_boxes_inside_image_and_tight_around_visible_masks(source_train):
    coco = COCO(source_train[0])
    kinds = set()
    for img_id in coco.imgs:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        cover = np.zeros((SIZE, SIZE), np.int64)
        for ann in anns:
            assert ann['iscrowd'] == 0
            kinds.add(type(ann['segmentation']).__name__)
            mask = coco.annToMask(ann)
            cover += mask
            assert mask.sum() == ann['area'] > 0
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and x + w <= SIZE and y + h <= SIZE
            ys, xs = np.nonzero(mask)
            assert [x, y, w, h] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                    ys.max() - ys.min() + 1]
        # visible regions after occlusion never overlap
        assert cover.max() <= 1
    assert 'list' in kinds  # polygons for regions without holes


def test_objects_occlude_each_other(tmp_path):
    coco = COCO(_generate(tmp_path, num_images=12, min_objects=3, max_objects=4))
    touching = 0
    for img_id in coco.imgs:
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))]
        grown = [cv2.dilate(m, np.ones((3, 3), np.uint8)) for m in masks]
        touching += sum(bool((grown[i] & masks[j]).any())
                        for i in range(len(masks)) for j in range(i + 1, len(masks)))
    # disjoint visible regions that touch: one object is partly hidden behind another
    assert touching >= 8


def test_rings_have_holes_and_use_rle(tmp_path):
    coco = COCO(_generate(tmp_path, classes=('ring', ), num_images=4, max_objects=1))
    for ann in coco.anns.values():
        assert isinstance(ann['segmentation'], dict)
        mask = coco.annToMask(ann)
        x, y, w, h = (int(v) for v in ann['bbox'])
        # the centre of a lone ring is background
        assert mask[y + h // 2, x + w // 2] == 0


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path):
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        _generate(tmp_path / name, seed=seed, num_images=4)
    a, b, c = (_tree_bytes(tmp_path / n) for n in 'abc')
    assert sorted(a) == ['train.json'] + [f'train/{i:06d}.png' for i in range(4)]
    assert a == b
    assert a['train.json'] != c['train.json']
    assert all(a[k] != c[k] for k in a if k.endswith('.png'))


def test_target_classes_overlap_source_as_specified():
    assert len(SOURCE_CLASSES) == 10 and len(set(SOURCE_CLASSES)) == 10
    assert len(TARGET_CLASSES) == 5
    shared = [c for c in TARGET_CLASSES if c in SOURCE_CLASSES]
    assert shared == ['circle', 'triangle', 'star']
    renamed = [c for c in TARGET_CLASSES if c in SHAPES_SYNONYMS]
    assert renamed == ['box'] and SHAPES_SYNONYMS['box'] == 'square' in SOURCE_CLASSES
    new = [c for c in TARGET_CLASSES if c not in SOURCE_CLASSES and c not in SHAPES_SYNONYMS]
    assert new == ['pentagon']


def test_benchmark_layout_and_domains(tmp_path):
    paths = generate_shapes_benchmark(str(tmp_path), num_train=3, num_val=2, image_size=SIZE,
                                      seed=0, target_num_train=2, progress=False)
    counts = {(d, s): len(COCO(p).imgs) for d, split in paths.items() for s, p in split.items()}
    assert counts == {('source', 'train'): 3, ('source', 'val'): 2, ('target', 'train'): 2,
                      ('target', 'val'): 2}
    for domain, classes in (('source', SOURCE_CLASSES), ('target', TARGET_CLASSES)):
        with open(paths[domain]['train']) as f:
            data = json.load(f)
        assert [c['name'] for c in data['categories']] == list(classes)
        assert data['info']['domain'] == domain
        assert data['info']['shapes'].get('box', 'square') == 'square'
    read = lambda d, s: open(tmp_path / d / s / '000000.png', 'rb').read()  # noqa
    # splits and domains are drawn from different streams
    assert read('source', 'train') != read('source', 'val')
    assert read('source', 'train') != read('target', 'train')


def test_domains_look_different(tmp_path):
    """The target domain is darker and less saturated on average (a real domain shift)."""
    stats = {}
    for domain in ('source', 'target'):
        _generate(tmp_path / domain, domain=domain, num_images=12,
                  classes=TARGET_CLASSES if domain == 'target' else SOURCE_CLASSES)
        imgs = [cv2.imread(str(p)) for p in sorted((tmp_path / domain / 'train').iterdir())]
        hsv = np.stack([cv2.cvtColor(i, cv2.COLOR_BGR2HSV) for i in imgs]).astype(np.float64)
        stats[domain] = hsv[..., 1].mean(), hsv[..., 2].mean()
    assert stats['target'][0] < stats['source'][0]
    assert stats['target'][1] < stats['source'][1]


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="'blob'"):
        _generate(tmp_path, classes=('circle', 'blob'))
    with pytest.raises(ValueError, match='domain'):
        _generate(tmp_path, domain='other')
    with pytest.raises(ValueError, match='min_objects'):
        _generate(tmp_path, min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match='image_size'):
        generate_shapes_dataset(str(tmp_path), image_size=16, progress=False)


def test_cli_prints_summary(tmp_path, capsys):
    from tools.misc import generate_shapes
    paths = generate_shapes.main(['--out', str(tmp_path), '--num-train', '2', '--num-val', '1',
                                  '--image-size', str(SIZE), '--seed', '1', '--no-progress'])
    out = capsys.readouterr().out
    assert osp.isfile(paths['target']['val'])
    assert f'{paths["source"]["train"]}: 2 images' in out
    assert f'{paths["target"]["val"]}: 1 images' in out
    assert 'pentagon' in out and 'heart' in out
