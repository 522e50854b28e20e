"""Draw the training set's ground truth as the model sees it: after the train pipeline.

    python tools/analysis_tools/browse_dataset.py CONFIG [--output-dir DIR] [--not-show]
        [--show-interval 2] [--cfg-options k=v ...]

Boxes and masks are drawn on the transformed image (resized, flipped, ...), so
a wrong box here is a wrong box in training. ``--output-dir`` writes one file
per image, named as the image.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

from mmft.registry import DATASETS, VISUALIZERS
from mmft.utils import register_all_modules


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browse a dataset after its train pipeline')
    parser.add_argument('config', help='train config file')
    parser.add_argument('--output-dir', help='write the drawings here (no display needed)')
    parser.add_argument('--not-show', action='store_true', help='do not open a window')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each image is shown')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.not_show and args.output_dir is None:
        raise SystemExit('--not-show without --output-dir would draw nothing anywhere; '
                         'add --output-dir DIR')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules()

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    # drawings go to --output-dir or a window, not to the config's vis backends
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, vis_backends=None,
                                        name='browse_dataset'))
    visualizer.dataset_meta = dataset.metainfo

    progress = ProgressBar(len(dataset))
    for item in dataset:
        sample = item['data_samples']
        name = osp.basename(sample.img_path)
        image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # CHW BGR -> HWC RGB
        visualizer.add_datasample(
            name, image, sample, draw_pred=False, show=not args.not_show,
            wait_time=args.show_interval,
            out_file=osp.join(args.output_dir, name) if args.output_dir else None)
        progress.update()


if __name__ == '__main__':
    main()
