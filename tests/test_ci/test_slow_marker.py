"""`pytest -m "not slow"` leaves out the long end-to-end runs and nothing else."""
import subprocess
import sys

import pytest

from tests.tiny_runs import REPO_ROOT

LONG_RUNS = {  # about 5 s to a minute each on 2 cores
    'tests/test_tools/test_run_demo.py::test_end_to_end_writes_tables_json_and_pngs',
    'tests/test_tools/test_benchmark.py::test_tiny_run_writes_every_figure',
    'tests/test_tools/test_train_resume.py::test_killed_run_resumes_with_the_same_iteration_and_lr',
    'tests/test_engine/test_distributed.py::test_evaluation_on_two_ranks_equals_one_rank',
    'tests/test_models/test_detectors/test_two_stage.py::test_mask_rcnn_overfits_a_tiny_batch',
}


def _collected(*args):
    proc = subprocess.run([sys.executable, '-m', 'pytest', '--collect-only', '-q', *args,
                           'tests'], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {line for line in proc.stdout.splitlines() if '::' in line}


@pytest.mark.slow  # collecting the whole suite twice takes ~20 s
def test_slow_selects_the_long_runs_only():
    slow = _collected('-m', 'slow')
    everything = _collected()
    # the quick loop keeps the bulk of the suite: slow runs stay a small minority
    assert LONG_RUNS <= slow <= everything and 10 < len(slow) < len(everything) / 10
    # the in-process distributed checks stay in the quick loop ("not slow")
    assert 'tests/test_engine/test_distributed.py::test_slurm_env_becomes_torch_env' not in slow
