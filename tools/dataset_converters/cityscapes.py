"""Convert Cityscapes gtFine instance annotations to COCO-format instance json.

Produces MMDetection's ``instancesonly_filtered_gtFine_{train,val,test}.json``:

- one image entry per ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``, ``file_name``
  ``{city}/{name}_leftImg8bit.png``, ``segm_file`` ``{city}/{name}_gtFine_labelIds.png``;
- instances from the shipped ``*_gtFine_instanceIds.png`` (uint16): a pixel value >= 1000 is
  ``label_id * 1000 + k`` (one object), a value < 1000 is a label id (a crowd region of that
  class, ``iscrowd=1``). Where that png is missing, the same id image is drawn in memory from
  ``*_gtFine_polygons.json`` with cityscapesscripts' ``createInstanceImage`` (its
  json2instanceImg is not used: its PNG writer breaks with Pillow >= 13, see PITFALLS.md;
  objects with unknown labels or < 3 points are left out first, as cityscapesscripts would
  exit the process on them);
- only the 8 evaluated instance classes are kept, with their Cityscapes label ids as category
  ids; caravan and trailer (instances, but ignored in evaluation) are dropped as in
  cityscapesscripts' evaluation;
- masks as compressed RLE, bbox and area from the mask.

Example:
    python tools/dataset_converters/cityscapes.py data/cityscapes -o data/cityscapes/annotations \
        --nproc 8
"""
import argparse
import os
import os.path as osp
from contextlib import nullcontext
from functools import partial
from glob import glob
from multiprocessing import Pool
from typing import List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from mmft.datasets.coco_writer import CocoWriter, bbox_from_mask, mask_to_rle

# Cityscapes label id -> name for labels with instances (cityscapesscripts.helpers.labels:
# hasInstances=True). The evaluated ones first, in label-id order.
CITYSCAPES_INSTANCE_LABELS = {24: 'person', 25: 'rider', 26: 'car', 27: 'truck', 28: 'bus',
                              31: 'train', 32: 'motorcycle', 33: 'bicycle'}
CITYSCAPES_IGNORED_INSTANCE_LABELS = {29: 'caravan', 30: 'trailer'}  # ignoreInEval=True
CITYSCAPES_CLASSES = tuple(CITYSCAPES_INSTANCE_LABELS.values())

IMG_SUFFIX = '_leftImg8bit.png'
INST_SUFFIX = '_gtFine_instanceIds.png'
SEGM_SUFFIX = '_gtFine_labelIds.png'
POLY_SUFFIX = '_gtFine_polygons.json'

_Skipped = List[Tuple[str, str]]  # (item, reason) pairs for CocoWriter.skip


def _ids_from_polygons(poly_file: str, skipped: _Skipped) -> Optional[np.ndarray]:
    """(H, W) instance-id image drawn from a gtFine polygons json, or None (reason recorded)."""
    try:
        from cityscapesscripts.helpers.annotation import Annotation
        from cityscapesscripts.helpers.labels import name2label
        from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    except ImportError:
        skipped.append((poly_file, 'no instanceIds png, and drawing one from the polygons '
                        'needs cityscapesscripts (mmft\'s cityscapes extra: '
                        'pip install -e .[cityscapes])'))
        return None
    annotation = Annotation()
    try:
        annotation.fromJsonFile(poly_file)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        skipped.append((poly_file, f'unreadable polygons json ({type(e).__name__}: {e}); '
                        'restore the file from gtFine_trainvaltest.zip'))
        return None
    kept = []
    for k, obj in enumerate(annotation.objects):
        label = obj.label
        if label not in name2label and label.endswith('group'):
            label = label[:-len('group')]
        if label not in name2label:
            skipped.append((f'{poly_file} object {k}', f'unknown label {obj.label!r}; use a '
                            'name from cityscapesscripts.helpers.labels'))
        elif len(obj.polygon) < 3:
            skipped.append((f'{poly_file} object {k}', f'polygon with {len(obj.polygon)} '
                            'points (needs >= 3); redraw it'))
        else:
            kept.append(obj)
    annotation.objects = kept
    return np.asarray(createInstanceImage(annotation, 'ids'), dtype=np.int32)


def _read_image(img_dir: str, gt_dir: str, img_file: str) -> Tuple[Optional[dict], _Skipped]:
    """One image's entry with its ``instances`` (None if unusable), and the skipped items.

    A plain function of its arguments, so that worker processes can run it.
    """
    skipped: _Skipped = []
    rel = osp.relpath(img_file, img_dir)
    stem = rel[:-len(IMG_SUFFIX)]
    inst_file = osp.join(gt_dir, stem + INST_SUFFIX)
    poly_file = osp.join(gt_dir, stem + POLY_SUFFIX)
    if osp.isfile(inst_file):
        inst = cv2.imread(inst_file, cv2.IMREAD_UNCHANGED)
        if inst is None or inst.ndim != 2:
            skipped.append((inst_file, 'unreadable instance ids png (expected one 16-bit '
                            'channel); restore the file from gtFine_trainvaltest.zip'))
            return None, skipped
    elif osp.isfile(poly_file):
        inst = _ids_from_polygons(poly_file, skipped)
        if inst is None:
            return None, skipped
        inst_file = poly_file
    else:
        skipped.append((img_file, f'missing annotation: neither {inst_file} nor {poly_file}; '
                        'extract gtFine_trainvaltest.zip next to leftImg8bit/'))
        return None, skipped
    instances = []
    # ids < 24 are stuff labels; filtering first keeps np.unique cheap
    for inst_id in np.unique(inst[inst >= 24]).tolist():
        label_id = inst_id // 1000 if inst_id >= 1000 else inst_id
        if label_id in CITYSCAPES_IGNORED_INSTANCE_LABELS:
            continue
        if label_id not in CITYSCAPES_INSTANCE_LABELS:
            skipped.append((f'{inst_file} value {inst_id}', f'label id {label_id} is not a '
                            'Cityscapes instance class; check that the png is a gtFine '
                            'instanceIds image'))
            continue
        mask = inst == inst_id
        instances.append(dict(class_name=CITYSCAPES_INSTANCE_LABELS[label_id],
                              bbox=bbox_from_mask(mask), area=float(mask.sum()),
                              segmentation=mask_to_rle(mask), iscrowd=int(inst_id < 1000)))
    image = dict(file_name=rel, height=inst.shape[0], width=inst.shape[1],
                 segm_file=stem + SEGM_SUFFIX, instances=instances)
    return image, skipped


def cityscapes_to_coco(img_dir: str,
                       gt_dir: str,
                       out_file: Optional[str] = None,
                       nproc: int = 1,
                       progress: bool = True) -> CocoWriter:
    """Convert one split (e.g. ``leftImg8bit/train`` with ``gtFine/train``).

    Args:
        img_dir: Folder of ``{city}/*_leftImg8bit.png``.
        gt_dir: Folder of ``{city}/*_gtFine_instanceIds.png`` (or ``*_gtFine_polygons.json``).
        out_file: Where to write the json (not written when None).
        nproc: Worker processes reading the annotation images; the json is the same.
        progress: Show a progress bar.

    Returns:
        The writer: ``to_dict()`` is the json, ``summary()`` the report, ``skipped`` the items
        left out (missing / unreadable annotation files, unknown labels, bad polygons).
    """
    for name, path in (('img_dir', img_dir), ('gt_dir', gt_dir)):
        if not osp.isdir(path):
            raise FileNotFoundError(f'Cityscapes {name} {path!r} is not a folder; expected e.g. '
                                    f'cityscapes/{"leftImg8bit" if name == "img_dir" else "gtFine"}'
                                    '/train')
    img_files = sorted(glob(osp.join(img_dir, '**', '*' + IMG_SUFFIX), recursive=True))
    if not img_files:
        raise FileNotFoundError(f'no *{IMG_SUFFIX} images under {img_dir!r}; extract '
                                'leftImg8bit_trainvaltest.zip so that it holds {city}/ folders')
    writer = CocoWriter(CITYSCAPES_CLASSES, category_ids=list(CITYSCAPES_INSTANCE_LABELS))
    read = partial(_read_image, img_dir, gt_dir)
    with Pool(nproc) if nproc > 1 else nullcontext() as pool:
        # imap keeps the order, so ids do not depend on nproc
        results = pool.imap(read, img_files, chunksize=4) if pool else map(read, img_files)
        for image, skipped in tqdm(results, total=len(img_files), desc='Cityscapes',
                                   disable=not progress):
            for item, reason in skipped:
                writer.skip(item, reason)
            if image is None:
                continue
            instances = image.pop('instances')
            image_id = writer.add_image(**image)
            for instance in instances:
                writer.add_annotation(image_id, **instance)
    if out_file is not None:
        writer.dump(out_file)
    return writer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert Cityscapes annotations to COCO json')
    parser.add_argument('cityscapes_path', help='cityscapes data path')
    parser.add_argument('--img-dir', default='leftImg8bit', help='image folder (holds '
                        '{train,val,test}/{city}/), relative to cityscapes_path')
    parser.add_argument('--gt-dir', default='gtFine', help='annotation folder, relative to '
                        'cityscapes_path')
    parser.add_argument('-o', '--out-dir', help='output folder (default: cityscapes_path)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    splits = [s for s in ('train', 'val', 'test')
              if osp.isdir(osp.join(args.cityscapes_path, args.img_dir, s))]
    if not splits:
        raise SystemExit(f'{osp.join(args.cityscapes_path, args.img_dir)!r} has no train/, val/ '
                         'or test/ folder; pass the folder that holds leftImg8bit/ and gtFine/')
    out_dir = args.out_dir or args.cityscapes_path
    os.makedirs(out_dir, exist_ok=True)
    for split in ('train', 'val', 'test'):
        img_dir = osp.join(args.cityscapes_path, args.img_dir, split)
        gt_dir = osp.join(args.cityscapes_path, args.gt_dir, split)
        if split not in splits:
            print(f'{split}: {img_dir} does not exist, skipped')
            continue
        out_file = osp.join(out_dir, f'instancesonly_filtered_gtFine_{split}.json')
        writer = cityscapes_to_coco(img_dir, gt_dir, out_file, args.nproc,
                                    progress=not args.no_progress)
        print(writer.summary(f'{split} -> {out_file}'))


if __name__ == '__main__':
    main()
