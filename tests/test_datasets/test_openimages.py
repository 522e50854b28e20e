"""OpenImagesDataset: csv boxes denormalised, flags, image-level labels and the hierarchy."""
import numpy as np
import pytest

from mmft.datasets import OpenImagesDataset

from tests.test_datasets.openimages_tree import H, W, make_openimages


def test_openimages_loads_csv_hierarchy_and_image_labels(tmp_path):
    ds = OpenImagesDataset(**make_openimages(tmp_path), test_mode=True,
                           pipeline=[dict(type='LoadImageFromFile'),
                                     dict(type='LoadAnnotations', with_bbox=True)])
    assert ds.metainfo['classes'] == ('Animal', 'Cat', 'Dog', 'Vehicle')
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('val/img1.jpg') and (info['height'], info['width']) == (H, W)
    np.testing.assert_allclose([i['bbox'] for i in info['instances']],
                               [[10, 10, 30, 40], [50, 0, 100, 50]], atol=1e-4)
    assert [i['bbox_label'] for i in info['instances']] == [1, 2]
    assert [i['is_group_of'] for i in info['instances']] == [False, True]
    # img2: Cat verified absent; the unknown /m/x (a class without boxes) is left out
    info2 = ds.get_data_info(1)
    assert info2['image_level_labels'].tolist() == [1] and info2['confidences'].tolist() == [0]
    relation = ds.metainfo['RELATION_MATRIX']
    expected = np.eye(4)
    expected[1, 0] = expected[2, 0] = 1  # Cat and Dog are Animals
    np.testing.assert_array_equal(relation, expected)
    assert ds[1]['gt_bboxes'].shape == (1, 4)


def test_openimages_errors(tmp_path):
    kwargs = make_openimages(tmp_path)
    with open(tmp_path / 'annotations' / 'boxes.csv', 'a') as f:
        f.write('img3,xclick,/m/c,1,0.1,0.2,0.1,0.2,0,0,0,0,0\n')
    with pytest.raises(ValueError, match="image 'img3' has no entry in meta_file"):
        OpenImagesDataset(**kwargs)
    with pytest.raises(FileNotFoundError, match='label_file'):
        OpenImagesDataset(**dict(kwargs, label_file='annotations/nope.csv'))
