"""WIDERFaceDataset, Objects365V2Dataset and DeepFashionDataset on tiny trees in each format,
loaded and evaluated (VOC 11-point AP computed by hand; COCO AP of exact predictions is 1)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmft.datasets import DeepFashionDataset, Objects365V2Dataset, WIDERFaceDataset
from mmft.datasets.class_names import OBJECTS365_V2_CLASSES
from mmft.registry import METRICS

from tests.test_datasets.dataset_trees import rect_polygon, write_coco, write_image

H, W = 48, 64


def _face_xml(folder, faces):
    objs = ''.join(f'<object><name>face</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
                   f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>'
                   for x1, y1, x2, y2 in faces)
    return (f'<annotation><folder>{folder}</folder><size><width>{W}</width><height>{H}</height>'
            f'</size>{objs}</annotation>')


def make_wider(root):
    faces = {'0_Parade_1': ('0--Parade', [(2, 3, 30, 40), (40, 10, 50, 20)]),
             '1_Handshake_7': ('1--Handshaking', [(10, 10, 40, 44)])}
    for img_id, (folder, boxes) in faces.items():
        ann = osp.join(root, 'WIDER_train', 'Annotations', f'{img_id}.xml')
        os.makedirs(osp.dirname(ann), exist_ok=True)
        with open(ann, 'w') as f:
            f.write(_face_xml(folder, boxes))
        write_image(osp.join(root, 'WIDER_train', folder, f'{img_id}.jpg'), H, W)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(faces) + '\n')
    return str(root)


def test_wider_face_loads_from_event_folders(tmp_path):
    root = make_wider(tmp_path)
    ds = WIDERFaceDataset(data_root=root, ann_file='train.txt',
                          data_prefix=dict(img='WIDER_train'),
                          filter_cfg=dict(filter_empty_gt=True, bbox_min_size=17),
                          pipeline=[dict(type='LoadImageFromFile'),
                                    dict(type='LoadAnnotations', with_bbox=True)])
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(root, 'WIDER_train', '0--Parade', '0_Parade_1.jpg')
    # 0-based corners kept as they are (no VOC -1); the 10 px face is ignored in training
    assert [i['bbox'] for i in info['instances']] == [[2, 3, 30, 40], [40, 10, 50, 20]]
    assert [i['ignore_flag'] for i in info['instances']] == [0, 1]
    assert ds[1]['img'].shape == (H, W, 3)
    assert ds.metainfo['classes'] == ('face', )


def test_wider_face_missing_folder_is_named(tmp_path):
    root = make_wider(tmp_path)
    with open(osp.join(root, 'WIDER_train', 'Annotations', '0_Parade_1.xml'), 'w') as f:
        f.write(_face_xml('x', [(2, 3, 30, 40)]).replace('<folder>x</folder>', ''))
    with pytest.raises(ValueError, match='has no <folder>'):
        WIDERFaceDataset(data_root=root, ann_file='train.txt',
                         data_prefix=dict(img='WIDER_train'))


def test_wider_face_voc_11_point_ap(tmp_path):
    root = make_wider(tmp_path)
    ds = WIDERFaceDataset(data_root=root, ann_file='train.txt', data_prefix=dict(img='WIDER_train'),
                          test_mode=True, pipeline=[])
    metric = METRICS.build(dict(type='VOCMetric', metric='mAP', eval_mode='11points'))
    metric.dataset_meta = ds.metainfo
    # image 0: a hit (0.9) on face 1, a miss (0.8); image 1: a hit (0.7). 3 gt faces.
    preds = {0: ([[2, 3, 30, 40], [0, 30, 10, 47]], [0.9, 0.8]), 1: ([[10, 10, 40, 44]], [0.7])}
    samples = []
    for idx in (0, 1):
        info = ds.get_data_info(idx)
        boxes, scores = preds[idx]
        gt = np.array([i['bbox'] for i in info['instances']], np.float32)
        samples.append(dict(
            img_id=info['img_id'], ori_shape=(H, W),
            gt_instances=dict(bboxes=torch.from_numpy(gt), labels=torch.zeros(len(gt)).long()),
            ignored_instances=dict(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long()),
            pred_instances=dict(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                scores=torch.tensor(scores),
                                labels=torch.zeros(len(boxes)).long())))
    metric.process({}, samples)
    out = metric.evaluate(2)
    # recall/precision after each detection: (1/3, 1), (1/3, 1/2), (2/3, 2/3); the face
    # [40,10,50,20] is never found. 11 points: t = 0, .1, .2, .3 -> 1; t = .4 .. .6 -> 2/3;
    # t = .7 .. 1 -> 0
    expected = (4 * 1 + 3 * 2 / 3) / 11
    assert out['pascal_voc/mAP'] == pytest.approx(expected, abs=1e-3)


def _coco_eval_of_exact_predictions(dataset, metric_cfg):
    metric = METRICS.build(metric_cfg)
    metric.dataset_meta = dataset.metainfo
    samples = []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        boxes = torch.tensor([i['bbox'] for i in info['instances']], dtype=torch.float32)
        pred = dict(bboxes=boxes, scores=torch.linspace(0.9, 0.5, len(boxes)),
                    labels=torch.tensor([i['bbox_label'] for i in info['instances']]))
        if 'segm' in metric_cfg['metric']:
            masks = torch.zeros(len(boxes), info['height'], info['width'], dtype=torch.bool)
            for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
                m[y1:y2, x1:x2] = True
            pred['masks'] = masks
        samples.append(dict(img_id=info['img_id'], ori_shape=(info['height'], info['width']),
                            pred_instances=pred))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_objects365_v2_paths_broken_images_and_eval(tmp_path):
    images = [(1, 'images/v1/patch6/objects365_v1_00000001.jpg', H, W),
              (2, 'images/v2/patch16/objects365_v2_00000002.jpg', H, W),
              (3, 'images/v1/patch6/objects365_v1_00320532.jpg', H, W)]  # a broken one
    for _, name, _, _ in images:
        write_image(osp.join(tmp_path, 'train', *name.split('/')[-2:]), H, W)
    cats = [(5, 'Person'), (1, 'Car'), (9, 'Lamp')]
    anns = [dict(image_id=1, category_id=5, bbox=[2, 2, 20, 30], area=600),
            dict(image_id=1, category_id=9, bbox=[30, 5, 20, 20], area=400),
            dict(image_id=2, category_id=1, bbox=[10, 10, 30, 20], area=600),
            dict(image_id=3, category_id=1, bbox=[10, 10, 30, 20], area=600)]
    ann_file = write_coco(tmp_path / 'annotations' / 'objv2.json', images, anns, cats)
    ds = Objects365V2Dataset(data_root=str(tmp_path), ann_file='annotations/objv2.json',
                             data_prefix=dict(img='train/'), test_mode=True,
                             metainfo=dict(classes=('Person', 'Car', 'Lamp')),
                             pipeline=[dict(type='LoadImageFromFile')])
    assert len(ds) == 2  # the broken image is left out
    assert ds.get_data_info(1)['img_path'] == osp.join(str(tmp_path), 'train', 'patch16',
                                                       'objects365_v2_00000002.jpg')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [0, 2]
    assert ds[0]['img'].shape == (H, W, 3)
    # the metric reads its own json: evaluate on one without the broken image, as a val split
    val_file = write_coco(tmp_path / 'annotations' / 'objv2_val.json', images[:2], anns[:3], cats)
    val = Objects365V2Dataset(data_root=str(tmp_path), ann_file='annotations/objv2_val.json',
                              data_prefix=dict(img='train/'), test_mode=True,
                              metainfo=dict(classes=('Person', 'Car', 'Lamp')))
    out = _coco_eval_of_exact_predictions(
        val, dict(type='CocoMetric', ann_file=val_file, metric='bbox'))
    assert out['coco/bbox_mAP'] == pytest.approx(1.0)
    assert ann_file.endswith('objv2.json')
    assert len(OBJECTS365_V2_CLASSES) == 365 and OBJECTS365_V2_CLASSES[0] == 'Person'


def test_deepfashion_masks_and_eval(tmp_path):
    images = [(7, 'img/WOMEN/Dresses/id_01/02_1_front.jpg', H, W)]
    write_image(osp.join(tmp_path, 'Img', images[0][1]), H, W)
    anns = [dict(image_id=7, category_id=4, bbox=[10, 5, 30, 40], area=1200,
                 segmentation=rect_polygon(10, 5, 40, 45)),
            dict(image_id=7, category_id=15, bbox=[20, 0, 10, 5], area=50,
                 segmentation=rect_polygon(20, 0, 30, 5))]
    classes = DeepFashionDataset.METAINFO['classes']
    cats = [(i + 1, n) for i, n in enumerate(classes)]
    ann_file = write_coco(tmp_path / 'Anno' / 'seg.json', images, anns, cats)
    ds = DeepFashionDataset(data_root=str(tmp_path), ann_file='Anno/seg.json',
                            data_prefix=dict(img='Img/'), test_mode=True,
                            pipeline=[dict(type='LoadImageFromFile'),
                                      dict(type='LoadAnnotations', with_bbox=True,
                                           with_mask=True)])
    sample = ds[0]
    assert [classes[i] for i in sample['gt_bboxes_labels']] == ['dress', 'face']
    np.testing.assert_allclose(sample['gt_masks'].get_bboxes().numpy(), sample['gt_bboxes'])
    out = _coco_eval_of_exact_predictions(
        ds, dict(type='CocoMetric', ann_file=ann_file, metric=['bbox', 'segm']))
    assert out['coco/bbox_mAP'] == pytest.approx(1.0)
    assert out['coco/segm_mAP'] == pytest.approx(1.0)
