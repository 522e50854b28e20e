"""Proposal recall: the share of gt boxes covered by the top-N proposals of their image.

Each gt takes at most one proposal and each proposal covers at most one gt: pairs are
taken greedily by highest IoU (as MMDetection's ``eval_recalls``), so a gt counts as
recalled at threshold t when its matched IoU is >= t.
"""
from typing import Sequence, Union

import numpy as np
from mmengine.logging import print_log
from terminaltables import AsciiTable

from .mean_ap import box_overlaps


def _greedy_matched_ious(ious: np.ndarray) -> np.ndarray:
    """IoU of each greedy (gt, proposal) pair of a ``(num_gts, num_props)`` matrix; -1 unmatched."""
    ious = ious.copy()
    matched = np.full(ious.shape[0], -1.)
    if ious.size == 0:
        return matched
    for j in range(ious.shape[0]):
        g, p = np.unravel_index(ious.argmax(), ious.shape)
        matched[j] = ious[g, p]
        ious[g, :] = -1
        ious[:, p] = -1
    return matched


def eval_recalls(gts: Sequence[np.ndarray],
                 proposals: Sequence[np.ndarray],
                 proposal_nums: Union[int, Sequence[int]] = (100, 300, 1000),
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 logger=None,
                 use_legacy_coordinate: bool = False) -> np.ndarray:
    """Recall of the top-N proposals for every N and IoU threshold.

    Args:
        gts: Per image ``(n, 4)`` gt boxes.
        proposals: Per image ``(k, 4)`` boxes in rank order, or ``(k, 5)`` with scores
            (sorted here by descending score).
        proposal_nums: The N's.
        iou_thrs: IoU thresholds.
        logger: Where the table goes (see :func:`mmengine.logging.print_log`);
            ``'silent'`` prints nothing.
        use_legacy_coordinate: Widths as ``x2 - x1 + 1``.

    Returns:
        ``(len(proposal_nums), len(iou_thrs))`` recalls.
    """
    if len(gts) != len(proposals):
        raise ValueError(f'eval_recalls got {len(gts)} gt arrays for {len(proposals)} '
                         'proposal arrays; give one of each per image')
    nums = np.atleast_1d(np.asarray(proposal_nums, dtype=int))
    thrs = np.atleast_1d(np.asarray(iou_thrs, dtype=float))
    matched = [[] for _ in nums]
    for gt, props in zip(gts, proposals):
        props = np.asarray(props, dtype=np.float32)
        props = props.reshape(0, 4) if props.size == 0 else props
        if props.shape[1] == 5:
            props = props[np.argsort(-props[:, 4], kind='stable')]
        gt = np.zeros((0, 4)) if gt is None else np.asarray(gt).reshape(-1, 4)
        ious = box_overlaps(gt, props[:nums.max()], use_legacy_coordinate=use_legacy_coordinate)
        for k, num in enumerate(nums):
            matched[k].append(_greedy_matched_ious(ious[:, :num]))
    # an image without gts adds nothing; with no gts at all every recall is 0
    recalls = np.array([[(np.concatenate(m) >= t).mean() if sum(map(len, m)) else 0.
                         for t in thrs] for m in matched])
    print_recall_summary(recalls, nums, thrs, logger=logger)
    return recalls


def print_recall_summary(recalls: np.ndarray, proposal_nums: Sequence[int],
                         iou_thrs: Sequence[float], logger=None) -> None:
    """Log recalls as a table: one row per proposal number, one column per IoU threshold."""
    if logger == 'silent':
        return
    rows = [[''] + [f'{t:g}' for t in iou_thrs]]
    rows += [[int(num)] + [f'{v:.3f}' for v in row] for num, row in zip(proposal_nums, recalls)]
    print_log('\n' + AsciiTable(rows).table, logger=logger)
