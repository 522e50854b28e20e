"""The Makefile's set-up: a virtualenv made on first use, installed into once, reused."""
import os
import shutil
import stat
import subprocess

import pytest

from tests.tiny_runs import REPO_ROOT

# Stands in for python3: `-m venv DIR` makes DIR/bin/python, a recorder of its arguments
FAKE_PYTHON = '''#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    printf '#!/bin/sh\\necho "$0 $*" >> "%s"\\n' "$CALLS" > "$3/bin/python"
    chmod +x "$3/bin/python"
    echo "venv $3" >> "$CALLS"
    exit 0
fi
exit 3
'''


def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def project(tmp_path):
    if shutil.which('make') is None:
        pytest.fail('make is needed: the README\'s two commands are make targets')
    root = tmp_path / 'project'
    (root / 'requirements').mkdir(parents=True)
    shutil.copy(os.path.join(REPO_ROOT, 'Makefile'), root / 'Makefile')
    for name in ('setup.py', 'setup.cfg', 'requirements/runtime.txt'):
        (root / name).write_text('')
    _executable(tmp_path / 'python3', FAKE_PYTHON)
    return root


def _make(root, *args, **extra_env):
    """Run make in ``root`` outside any virtualenv; the commands the fake Pythons saw."""
    # under `make test PYTEST_ARGS=...` (CI) the outer make hands its variables down, in
    # MAKEFLAGS and in the environment
    drop = {'VIRTUAL_ENV', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'PYTHON',
            'PYTEST_ARGS', 'VENV', 'DEMO_DIR'}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(CALLS=str(root / 'calls.log'), **extra_env)
    proc = subprocess.run(['make', '--no-print-directory', *args], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = (root / 'calls.log').read_text().splitlines() if (root / 'calls.log').exists() \
        else []
    (root / 'calls.log').unlink(missing_ok=True)
    return calls


def test_first_run_creates_dotvenv_installs_and_runs_from_it(project):
    python = f'PYTHON={project.parent / "python3"}'
    venv_python = '.venv/bin/python'  # relative: make runs in the project
    assert _make(project, 'test', python) == [
        'venv .venv',
        f'{venv_python} -m pip install --quiet --disable-pip-version-check -e .[tests]',
        f'{venv_python} -m pytest -q tests']
    # nothing changed: no reinstall
    assert _make(project, 'test', python, 'PYTEST_ARGS=-m "not slow"') == [
        f'{venv_python} -m pytest -q -m not slow tests']
    # a requirement changed: install again (into the same venv)
    later = os.stat(project / '.venv' / '.mmft-installed').st_mtime + 10
    os.utime(project / 'requirements' / 'runtime.txt', (later, later))
    calls = _make(project, 'test', python)
    assert calls[0].endswith('-m pip install --quiet --disable-pip-version-check -e .[tests]')
    assert len(calls) == 2


def test_an_activated_virtualenv_is_used_as_it_is(project, tmp_path):
    env = tmp_path / 'active'
    (env / 'bin').mkdir(parents=True)
    _executable(env / 'bin' / 'python', f'#!/bin/sh\necho "$0 $*" >> "{project}/calls.log"\n')
    calls = _make(project, 'test', VIRTUAL_ENV=str(env))
    assert calls == [
        f'{env}/bin/python -m pip install --quiet --disable-pip-version-check -e .[tests]',
        f'{env}/bin/python -m pytest -q tests']
    assert not (project / '.venv').exists()
