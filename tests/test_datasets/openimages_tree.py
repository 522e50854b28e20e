"""A tiny Open Images tree: two images, four classes in a two-level hierarchy, a group-of box
and a verified-absent image-level label."""
import json
import os
import os.path as osp
import pickle

from tests.test_datasets.dataset_trees import write_image

H, W = 50, 100
# label order = class order: Animal 0, Cat 1, Dog 2, Vehicle 3
LABELS = [('/m/a', 'Animal'), ('/m/c', 'Cat'), ('/m/d', 'Dog'), ('/m/v', 'Vehicle')]
HIERARCHY = {'LabelName': '/m/0bl9f', 'Subcategory': [
    {'LabelName': '/m/a', 'Subcategory': [{'LabelName': '/m/c'}, {'LabelName': '/m/d'}]},
    {'LabelName': '/m/v'}]}
# ImageID, LabelName, (x1, y1, x2, y2) in pixels, IsGroupOf
BOXES = [('img1', '/m/c', (10, 10, 30, 40), 0),
         ('img1', '/m/d', (50, 0, 100, 50), 1),  # a group of dogs
         ('img2', '/m/v', (20, 10, 80, 40), 0)]


def make_openimages(root):
    """Write the tree; returns the dataset kwargs."""
    ann = osp.join(root, 'annotations')
    os.makedirs(ann, exist_ok=True)
    with open(osp.join(ann, 'boxes.csv'), 'w') as f:
        f.write('ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,'
                'IsTruncated,IsGroupOf,IsDepiction,IsInside\n')
        for img_id, mid, (x1, y1, x2, y2), group in BOXES:
            f.write(f'{img_id},xclick,{mid},1,{x1 / W},{x2 / W},{y1 / H},{y2 / H},'
                    f'0,0,{group},0,0\n')
    with open(osp.join(ann, 'classes.csv'), 'w') as f:
        f.write(''.join(f'{mid},{name}\n' for mid, name in LABELS))
    with open(osp.join(ann, 'hierarchy.json'), 'w') as f:
        json.dump(HIERARCHY, f)
    with open(osp.join(ann, 'metas.pkl'), 'wb') as f:
        pickle.dump([dict(filename=f'val/{i}.jpg', ori_shape=(H, W, 3))
                     for i in ('img1', 'img2')], f)
    with open(osp.join(ann, 'image_labels.csv'), 'w') as f:
        f.write('ImageID,Source,LabelName,Confidence\n'
                'img2,verification,/m/c,0\nimg2,verification,/m/x,1\n')
    for i in ('img1', 'img2'):
        write_image(osp.join(root, 'val', f'{i}.jpg'), H, W)
    return dict(data_root=str(root), ann_file='annotations/boxes.csv',
                label_file='annotations/classes.csv', meta_file='annotations/metas.pkl',
                hierarchy_file='annotations/hierarchy.json',
                image_level_ann_file='annotations/image_labels.csv', data_prefix=dict(img='val/'))
