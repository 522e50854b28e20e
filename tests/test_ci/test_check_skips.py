""".ci/check_skips.py: CI fails on any skip that is not on the allow-list."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

SUITE = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason='needs a CUDA GPU')
def test_needs_gpu():
    pass

def test_optional_import():
    pytest.importorskip('mmft_no_such_module')

class TestGroup:
    def test_skips_inside_a_class(self):
        pytest.skip('not yet')
'''


def _load_checker():
    spec = importlib.util.spec_from_file_location('check_skips',
                                                  osp.join(REPO, '.ci', 'check_skips.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def junit(tmp_path_factory) -> str:
    """The junit report of a small suite laid out as ours: tests/test_pkg/test_mod.py."""
    root = tmp_path_factory.mktemp('suite')
    (root / 'pytest.ini').write_text('[pytest]\naddopts = -p no:cacheprovider\n')
    (root / 'tests' / 'test_pkg').mkdir(parents=True)
    (root / 'tests' / 'test_pkg' / 'test_mod.py').write_text(SUITE)
    report = str(root / 'junit.xml')
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '--import-mode=importlib',
                           f'--junitxml={report}', 'tests'], cwd=root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # pytest itself: skips are green
    return report


def test_skipped_tests_have_their_pytest_ids(junit):
    checker = _load_checker()
    assert sorted(checker.skipped_tests(junit)) == [
        ('tests/test_pkg/test_mod.py::TestGroup::test_skips_inside_a_class',
         'not yet'),
        ('tests/test_pkg/test_mod.py::test_needs_gpu', 'needs a CUDA GPU'),
        ('tests/test_pkg/test_mod.py::test_optional_import',
         "could not import 'mmft_no_such_module': No module named 'mmft_no_such_module'"),
    ]


def test_skips_off_the_allow_list_fail(junit, tmp_path, capsys):
    checker = _load_checker()
    allow = tmp_path / 'allowed.txt'
    allow.write_text('# GPU tests\ntests/test_pkg/test_mod.py::test_needs_gpu  # amp\n')
    assert checker.main([junit, str(allow)]) == 1
    err = capsys.readouterr().err
    assert 'tests/test_pkg/test_mod.py::test_optional_import: could not import' in err
    assert 'TestGroup::test_skips_inside_a_class: not yet' in err
    assert 'test_needs_gpu' not in err

    allow.write_text('\n'.join(t for t, _ in checker.skipped_tests(junit)))
    assert checker.main([junit, str(allow)]) == 0
    assert '3 skipped, 3 of them on the allow-list' in capsys.readouterr().out


def test_the_allow_list_names_existing_gpu_tests():
    """Every allowed id is a real test, so a renamed test cannot leave a stale hole."""
    checker = _load_checker()
    allowed = checker.read_allow_list(osp.join(REPO, '.ci', 'allowed_skips.txt'))
    assert allowed and len(allowed) <= 5
    for test_id in allowed:
        path, name = test_id.split('::')[0], test_id.split('::')[-1]
        with open(osp.join(REPO, path)) as f:
            assert f'def {name}(' in f.read(), test_id
