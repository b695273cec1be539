"""Run a command with one folder read-only, for real (not a patched ``open``)."""
import os
import shlex
import shutil
import subprocess

import pytest


def run_read_only(folder, cmd, **kwargs):
    """``subprocess.run(cmd)`` with ``folder`` read-only; returns the CompletedProcess.

    A normal user gets ``chmod 555``. Root ignores file modes, so as root the command runs in
    a private mount namespace where ``folder`` is bind-mounted read-only (``unshare -m``);
    the test is skipped where neither is possible.
    """
    kwargs = dict(dict(capture_output=True, text=True, timeout=300), **kwargs)
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            return subprocess.run(cmd, **kwargs)
        finally:
            os.chmod(folder, 0o755)
    if shutil.which('unshare') is None:
        pytest.skip('running as root without unshare: cannot make a folder read-only')
    q = shlex.quote(str(folder))
    probe = subprocess.run(['unshare', '-m', 'sh', '-c', f'mount --bind {q} {q} && '
                            f'mount -o remount,bind,ro {q}'], capture_output=True)
    if probe.returncode != 0:
        pytest.skip('running as root without mount namespaces: cannot make a folder read-only')
    script = (f'mount --bind {q} {q} && mount -o remount,bind,ro {q} && exec '
              + ' '.join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run(['unshare', '-m', 'sh', '-c', script], **kwargs)
