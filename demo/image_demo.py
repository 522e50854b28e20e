"""Detect objects in images and draw the result.

    python demo/image_demo.py IMG_OR_FOLDER CONFIG --weights CKPT [--out-dir outputs]
        [--device cpu] [--pred-score-thr 0.3] [--palette none] [--show]
        [--no-save-vis] [--no-save-pred] [--print-result]

Writes, as MMDetection's demo does, ``OUT_DIR/vis/<image name>`` (the drawing)
and ``OUT_DIR/preds/<image stem>.json`` (``labels``, ``scores``, ``bboxes``
xyxy pixels, ``masks`` as COCO RLE for instance-segmentation models).
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from mmft.apis import inference_detector, init_detector
from mmft.apis.inference import build_test_pipeline
from mmft.structures import DetDataSample
from mmft.visualization import DetLocalVisualizer

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detect objects in images')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('model', help='config file')
    parser.add_argument('--weights', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs', help='where vis/ and preds/ go')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda:0', ...")
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='draw only predictions scoring above this')
    parser.add_argument('--palette', default='none',
                        choices=['coco', 'voc', 'citys', 'random', 'none'],
                        help="box colours ('none': the test dataset's)")
    parser.add_argument('--show', action='store_true', help='show each drawing in a window')
    parser.add_argument('--no-save-vis', action='store_true', help='do not write drawings')
    parser.add_argument('--no-save-pred', action='store_true', help='do not write json')
    parser.add_argument('--print-result', action='store_true', help='print the predictions')
    return parser.parse_args(argv)


def list_images(inputs: str) -> List[str]:
    """``inputs`` itself, or the images in the folder ``inputs`` (sorted)."""
    if osp.isdir(inputs):
        found = sorted(osp.join(inputs, f) for f in os.listdir(inputs)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not found:
            raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {inputs!r}')
        return found
    if not osp.isfile(inputs):
        raise FileNotFoundError(f'{inputs!r} is neither an image file nor a folder')
    return [inputs]


def prediction_dict(result: DetDataSample) -> dict:
    """The predictions of one image as plain json types."""
    pred = result.pred_instances
    out = dict(labels=pred.labels.tolist(), scores=pred.scores.tolist(),
               bboxes=pred.bboxes.tolist())
    if 'masks' in pred:
        rles = mask_utils.encode(np.asfortranarray(pred.masks.cpu().numpy().transpose(1, 2, 0)
                                                   .astype(np.uint8)))
        out['masks'] = [dict(size=r['size'], counts=r['counts'].decode()) for r in rles]
    return out


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    model = init_detector(args.model, args.weights, device=args.device, palette=args.palette)
    visualizer = DetLocalVisualizer.get_instance('image_demo')
    visualizer.dataset_meta = model.dataset_meta
    pipeline = build_test_pipeline(model.cfg)
    for path in list_images(args.inputs):
        result = inference_detector(model, path, test_pipeline=pipeline)
        name = osp.basename(path)
        if args.print_result:
            print(name, prediction_dict(result))
        if not args.no_save_pred:
            os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
            with open(osp.join(args.out_dir, 'preds', osp.splitext(name)[0] + '.json'), 'w') as f:
                json.dump(prediction_dict(result), f)
        if args.show or not args.no_save_vis:
            image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            visualizer.add_datasample(
                name, image, result, draw_gt=False, show=args.show,
                out_file=None if args.no_save_vis else osp.join(args.out_dir, 'vis', name),
                pred_score_thr=args.pred_score_thr)
    if not (args.no_save_vis and args.no_save_pred):
        print(f'results are in {args.out_dir}')


if __name__ == '__main__':
    main()
