"""DetVisualizationHook: draw predictions during validation and testing.

Validation draws the first image of every ``interval``-th batch into the
visualizer's vis backends (``vis_data/vis_image/`` for LocalVisBackend). Testing
draws every image: into ``test_out_dir`` (what ``tools/test.py --show-dir``
sets), a window (``show``) or the vis backends.
"""
import os
import os.path as osp
import warnings
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from mmft.registry import HOOKS
from mmft.structures import DetDataSample


def read_rgb(img_path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """An image file (local or any MMEngine file backend) as RGB uint8."""
    img = cv2.imdecode(np.frombuffer(get(img_path, backend_args=backend_args), np.uint8),
                       cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'could not decode the image {img_path!r}; is it an image file?')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@HOOKS.register_module()
class DetVisualizationHook(Hook):
    """Draw predictions (and ground truth, where the sample has it).

    Args:
        draw: draw at all; False makes the hook do nothing.
        interval: draw one image every ``interval`` validation iterations.
        score_thr: predictions scoring at most this are not drawn.
        show: show each drawing in a window (the vis backends then store nothing).
        wait_time: seconds a shown window stays.
        test_out_dir: folder for the test drawings, one file per test image
            named as the image; a relative folder goes under
            ``work_dir/<timestamp>/``.
        backend_args: MMEngine file-backend arguments for reading the images.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 score_thr: float = 0.3,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        self._visualizer: Visualizer = Visualizer.get_current_instance()
        self.draw = draw
        self.interval = interval
        self.score_thr = score_thr
        self.show = show
        if show:
            # a window per image is the output; don't also fill the backends
            self._visualizer._vis_backends = {}
            warnings.warn('DetVisualizationHook(show=True): drawings are shown, not '
                          'stored in the vis backends')
        self.wait_time = wait_time
        self.test_out_dir = test_out_dir
        self.backend_args = backend_args
        self._test_index = 0
        self._out_dir: Optional[str] = None  # test_out_dir resolved by before_test

    def _draw(self, data_sample: DetDataSample, name: str, step: int,
              out_file: Optional[str] = None) -> None:
        img_path = data_sample.img_path
        self._visualizer.add_datasample(
            osp.basename(img_path) if self.show else name,
            read_rgb(img_path, self.backend_args),
            data_sample=data_sample,
            show=self.show,
            wait_time=self.wait_time,
            pred_score_thr=self.score_thr,
            out_file=out_file,
            step=step)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        """Draw the batch's first image every ``interval`` iterations."""
        if not self.draw:
            return
        # train iterations so far + this batch: a different image each validation
        step = runner.iter + batch_idx
        if step % self.interval == 0:
            self._draw(outputs[0], 'val_img', step)

    def before_test(self, runner) -> None:
        """Resolve ``test_out_dir`` once, against this run's log folder."""
        if self.draw and self.test_out_dir is not None:
            self._out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            os.makedirs(self._out_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        """Draw every image of the batch."""
        if not self.draw:
            return
        for data_sample in outputs:
            self._test_index += 1
            out_file = None
            if self._out_dir is not None:
                out_file = osp.join(self._out_dir, osp.basename(data_sample.img_path))
            self._draw(data_sample, 'test_img', self._test_index, out_file)
