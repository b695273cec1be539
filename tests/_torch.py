"""Running the PyTorch side of the conversion checks (tools/torch_side.py) in the second
virtual environment, ``.venv-torch`` (``make setup`` builds it). Arrays go back and forth
through files. Missing, the calling test fails under ``make test`` (RESNEST_REQUIRE_REFERENCE=1)
and is skipped, with the reason, under a bare pytest."""
import json
import os
import subprocess

import pytest

from conftest import REPO

TORCH_PYTHON = os.environ.get("RESNEST_TORCH_PYTHON",
                              os.path.join(REPO, ".venv-torch", "bin", "python"))
SIDE = os.path.join(REPO, "tools", "torch_side.py")


def torch_side(jobs, folder, timeout=900):
    """Run ``jobs`` (see tools/torch_side.py) with torch, timm and the authors' torch code."""
    if not os.path.isfile(TORCH_PYTHON):
        reason = f"the torch environment {TORCH_PYTHON} is not built (make setup builds it)"
        if os.environ.get("RESNEST_REQUIRE_REFERENCE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    path = os.path.join(str(folder), f"jobs-{len(os.listdir(str(folder)))}.json")
    with open(path, "w") as f:
        json.dump({"jobs": [{k: str(v) if isinstance(v, os.PathLike) else v
                             for k, v in job.items()} for job in jobs]}, f)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    env.pop("PYTHONPATH", None)
    done = subprocess.run([TORCH_PYTHON, SIDE, path], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"tools/torch_side.py failed:\n{done.stderr[-3000:]}")
