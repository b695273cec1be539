"""The GPU check (tools/gpu_check.sh): its dry run end to end on the CPU, the wheel table against
facts written here by hand, the parsers against real command output, and the time box.

Where the expected values come from: the wheels on the package index (its listing of
mxnet-cu1xx 1.9.1 names), MXNet's build configs (config/distribution/linux_cu1xx.cmake), the
mxnet-cu117 wheel's libmxnet.so (its .nv_fatbin holds cubins for sm_50, 60, 70, 80, 86 and no
PTX), CUDA's binary compatibility rule (code for X.y runs on X.z, z >= y), and the output of
nvidia-smi and horovodrun as those programs print it.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO
from tools import gpu_facts
from tools.check_runner import Session, Step, StepFailed
from tools.gpu_check_runs import horovod_flags, parse_check_build

from _procs import alive


# ---------------------------------------------------------------- the wheel table

def test_the_table_lists_every_mxnet_1_9_1_gpu_wheel_of_the_index():
    names = [w.name for w in gpu_facts.WHEELS]
    assert names == ["mxnet-cu101", "mxnet-cu102", "mxnet-cu110", "mxnet-cu111",
                     "mxnet-cu112", "mxnet-cu113", "mxnet-cu114", "mxnet-cu115",
                     "mxnet-cu116", "mxnet-cu117"]
    cu117 = gpu_facts.WHEELS[-1]
    assert cu117.cuda == (11, 7) and cu117.cubins == (50, 60, 70, 80, 86)
    assert cu117.cudnn == "8.5.0.96"


def test_a_current_driver_and_an_ampere_gpu_get_cu117_and_its_cuda_libraries():
    choice = gpu_facts.choose_wheel((12, 2), (8, 0))
    assert choice.packages[0] == "mxnet-cu117==1.9.1"
    libs = " ".join(choice.packages[1:])
    for package in ("nvidia-cudnn-cu11==8.5.0.96", "nvidia-nccl-cu11", "nvidia-cuda-runtime",
                    "nvidia-cublas-cu11", "nvidia-cusolver-cu11", "nvidia-cuda-nvrtc-cu11"):
        assert package in libs
    assert choice.env == {} and choice.system_libraries == ()


def test_hopper_is_refused_in_one_sentence():
    with pytest.raises(gpu_facts.NoWheel) as err:
        gpu_facts.choose_wheel((12, 2), (9, 0))
    text = str(err.value)
    assert "Hopper" in text and "9.0" in text and "no PTX" in text
    assert "\n" not in text and text.endswith(".") and text.count(". ") == 0


@pytest.mark.parametrize("driver, capability, wheel, env", [
    ((12, 2), (8, 9), "mxnet-cu117", {}),         # Ada runs the sm_86 code
    ((12, 2), (8, 6), "mxnet-cu117", {}),
    ((12, 2), (7, 5), "mxnet-cu117", {}),         # Turing runs the sm_70 code
    ((11, 7), (8, 0), "mxnet-cu117", {}),
    ((11, 4), (7, 5), "mxnet-cu114", {"MXNET_USE_FUSION": "0"}),    # NVRTC 11.7 > driver
    ((11, 0), (8, 6), "mxnet-cu110", {"MXNET_USE_FUSION": "0"}),    # cu110 has sm_80 only
    ((10, 2), (7, 5), "mxnet-cu102", {}),
    ((11, 4), (3, 7), "mxnet-cu102", {}),         # Kepler: only the CUDA 10 builds have 3.x
])
def test_wheel_choice(driver, capability, wheel, env):
    choice = gpu_facts.choose_wheel(driver, capability)
    assert choice.wheel.name == wheel and choice.env == env


def test_ada_is_told_it_runs_the_sm86_code():
    notes = " ".join(gpu_facts.choose_wheel((12, 2), (8, 9)).notes)
    assert "sm_89" in notes and "sm_86" in notes


def test_cuda_10_builds_need_the_system_libraries():
    choice = gpu_facts.choose_wheel((10, 2), (7, 0))
    assert choice.packages == ("mxnet-cu102==1.9.1",)
    assert "libcudart.so.10.2" in choice.system_libraries


@pytest.mark.parametrize("driver, capability, words", [
    ((10, 0), (7, 0), ("CUDA 10.0", "update the driver")),
    ((10, 2), (8, 0), ("Ampere", "8.0")),          # the CUDA 10 builds stop at sm_75
    ((12, 8), (12, 0), ("Blackwell", "12.0")),
    ((12, 8), (10, 0), ("Blackwell", "10.0")),
])
def test_no_wheel(driver, capability, words):
    with pytest.raises(gpu_facts.NoWheel) as err:
        gpu_facts.choose_wheel(driver, capability)
    for word in words:
        assert word in str(err.value)


# ---------------------------------------------------------------- parsers

def test_nvidia_smi_output_is_read():
    banner = ("+------------------------------------------------------------------------+\n"
              "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |\n")
    assert gpu_facts.parse_cuda_version(banner) == (12, 2)
    assert gpu_facts.parse_cuda_version("no banner") is None
    query = ("0, NVIDIA A100-SXM4-40GB, 535.104.05, 8.0, 40960\n"
             "1, NVIDIA H100 80GB HBM3, 535.104.05, 9.0, 81559\n")
    gpus = gpu_facts.parse_gpu_query(query)
    assert [g["compute_cap"] for g in gpus] == [(8, 0), (9, 0)]
    assert gpus[0]["name"] == "NVIDIA A100-SXM4-40GB" and gpus[1]["index"] == 1
    old = gpu_facts.parse_gpu_query("0, Tesla V100-SXM2-16GB, 450.80.02, [N/A], 16160\n")
    assert old[0]["compute_cap"] is None          # then the CUDA driver API is asked


CHECK_BUILD = """Horovod v0.28.1:

Available Frameworks:
    [ ] TensorFlow
    [ ] PyTorch
    [X] MXNet

Available Controllers:
    [ ] MPI
    [X] Gloo

Available Tensor Operations:
    [X] NCCL
    [ ] DDL
    [ ] CCL
    [ ] MPI
    [X] Gloo
"""


def test_horovod_check_build_is_read():
    build = parse_check_build(CHECK_BUILD)
    assert build["Available Frameworks"] == {"TensorFlow": False, "PyTorch": False,
                                             "MXNet": True}
    assert build["Available Tensor Operations"]["NCCL"] is True
    assert build["Available Controllers"] == {"MPI": False, "Gloo": True}


def test_horovod_flags_are_the_makefiles():
    assert horovod_flags() == {"HOROVOD_WITH_MXNET": "1", "HOROVOD_WITH_GLOO": "1",
                               "HOROVOD_WITHOUT_MPI": "1", "HOROVOD_WITHOUT_TENSORFLOW": "1",
                               "HOROVOD_WITHOUT_PYTORCH": "1"}


# ---------------------------------------------------------------- the time box

def _session(tmp_path, budget=100.0):
    return Session(str(tmp_path), dict(os.environ), budget)


def test_a_step_past_its_box_is_killed_with_its_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    script = ("import os, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
              "time.sleep(60)\n")

    def run(session):
        session.run_cmd([sys.executable, "-c", script])
        return "finished", {}

    session = _session(tmp_path)
    start = time.monotonic()
    result = session.step(Step("sleepy", "sleeps", run, box=8.0, needs=1.0))
    assert result.status == "failed" and "timed out" in result.detail
    assert time.monotonic() - start < 30
    deadline = time.monotonic() + 10
    left = [int(p) for p in pids.read_text().split()]
    while any(alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in left)


def test_steps_are_skipped_with_a_reason(tmp_path):
    def fails(session):
        raise StepFailed("broken on purpose")

    session = _session(tmp_path, budget=50.0)
    session.step(Step("a", "a", fails, box=5.0, needs=1.0))
    later = session.step(Step("b", "b", lambda s: ("ok", {}), box=5.0, needs=1.0,
                              requires=("a",)))
    greedy = session.step(Step("c", "c", lambda s: ("ok", {}), box=100.0, needs=60.0))
    buggy = session.step(Step("d", "d", lambda s: {}["missing"], box=5.0, needs=1.0))
    assert [r.status for r in session.results] == ["failed", "skipped", "skipped", "failed"]
    assert later.detail == "needs a, which did not pass"
    assert "not enough time left" in greedy.detail
    assert buggy.detail.startswith("internal error: KeyError")


H100_BANNER = """+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |
+---------------------------------------------------------------------------------------+"""


def test_a_hopper_machine_gets_the_sentence_and_nothing_is_installed(tmp_path):
    # A stand-in nvidia-smi that answers as on an H100 machine.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\n"
                    'case "$1" in --query-gpu=*) '
                    'echo "0, NVIDIA H100 80GB HBM3, 535.129.03, 9.0, 81559";; '
                    f"*) cat <<'EOF'\n{H100_BANNER}\nEOF\n;; esac\n")
    fake.chmod(0o755)
    out, venv = tmp_path / "run", tmp_path / "venv-gpu"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHON=sys.executable)
    proc = subprocess.run([os.path.join(REPO, "tools", "gpu_check.sh"), "--out", str(out),
                           "--venv", str(venv)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    record = json.loads((out / "gpu_check.json").read_text())
    machine = record["steps"][0]
    assert machine["status"] == "failed" and "Hopper" in machine["detail"]
    assert "no MXNet 1.9.1 build has kernels" in proc.stdout
    assert all(s["status"] == "skipped" for s in record["steps"][1:])
    assert record["machine"]["gpu"] == "NVIDIA H100 80GB HBM3"
    assert record["machine"]["cuda"] == "12.2" and not venv.exists()
    assert "wheel  none" in proc.stdout


# ---------------------------------------------------------------- the dry run

STEPS = ("machine", "venv", "data", "logits", "train-fp32", "train-fp16", "verify",
         "benchmark", "horovod")


@pytest.mark.timeout(1800)
def test_dry_run_walks_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="2")
    proc = subprocess.run([os.path.join(REPO, "tools", "gpu_check.sh"), "--dry-run", "--out",
                           str(out)], env=env, capture_output=True, text=True, timeout=1700)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(out / "gpu_check.json") as f:
        record = json.load(f)
    assert record["dry_run"] is True and record["ok"] is True
    assert [s["name"] for s in record["steps"]] == list(STEPS)
    assert {s["name"]: s["status"] for s in record["steps"]} == dict.fromkeys(STEPS, "passed")
    steps = {s["name"]: s for s in record["steps"]}
    assert all(s["seconds"] >= 0 and s["log"] for s in record["steps"][1:])
    # What each step measured, read back from the scripts' own files.
    assert all(r["ok"] for r in steps["logits"]["data"]["rows"])
    assert steps["train-fp16"]["data"]["loss_scaler"]["scale"] == 2.0 ** 16
    assert "forced on" in steps["train-fp16"]["detail"]
    assert steps["train-fp16"]["data"]["train_loss"] == steps["train-fp32"]["data"]["train_loss"]
    assert steps["verify"]["data"]["float32"]["images"] == steps["data"]["data"]["val"]
    impls = {r["impl"] for r in steps["benchmark"]["data"]["rows"]}
    assert impls == {"authors", "ours"}
    assert record["machine"]["cpu"] and record["machine"]["gpu"] is None
    # The report: a line per step, and the totals.
    for s in record["steps"]:
        assert f"{s['title']}" in proc.stdout
    assert "result 9 passed, 0 failed, 0 skipped" in proc.stdout
    assert f"JSON   {out / 'gpu_check.json'}" in proc.stdout
