"""A tiny LVIS v1 tree: COCO-style train2017/ images and an LVIS json (coco_url, federated
fields, category frequencies), with three categories under non-consecutive ids."""
import json
import os
import os.path as osp

from tests.test_datasets.dataset_trees import rect_polygon, write_image

# name, id, frequency (r)are / (c)ommon / (f)requent
CATEGORIES = [('apple', 12, 'f'), ('banana', 3, 'c'), ('cat', 7, 'r')]
CLASSES = tuple(n for n, _, _ in CATEGORIES)
H, W = 48, 64


def make_lvis(root):
    """Three images; returns (data_root, ann_file relative path)."""
    images = [
        dict(id=1, height=H, width=W, coco_url='http://images.cocodataset.org/train2017/a.jpg',
             neg_category_ids=[7], not_exhaustive_category_ids=[]),
        dict(id=2, height=H, width=W, coco_url='http://images.cocodataset.org/val2017/b.jpg',
             neg_category_ids=[], not_exhaustive_category_ids=[12]),
        dict(id=3, height=H, width=W, coco_url='http://images.cocodataset.org/train2017/c.jpg',
             neg_category_ids=[3, 12], not_exhaustive_category_ids=[]),
    ]
    boxes = [(1, 12, [4, 4, 20, 20]), (1, 3, [30, 8, 60, 40]), (2, 12, [10, 10, 40, 30]),
             (2, 7, [40, 20, 60, 44]), (3, 7, [5, 5, 30, 40])]
    anns = []
    for k, (img_id, cat, (x1, y1, x2, y2)) in enumerate(boxes):
        anns.append(dict(id=k + 1, image_id=img_id, category_id=cat,
                         bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                         segmentation=rect_polygon(x1, y1, x2, y2)))
    cats = [dict(id=i, name=n, frequency=f, synset=f'{n}.n.01', image_count=1,
                 instance_count=1) for n, i, f in CATEGORIES]
    for img in images:
        rel = img['coco_url'].split('.org/')[1]
        write_image(osp.join(root, rel), H, W, seed=img['id'])
    ann_file = osp.join(root, 'annotations', 'lvis_v1_val.json')
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return str(root), 'annotations/lvis_v1_val.json'
