"""The GPU check's first steps (:mod:`tools.gpu_check`): the machine and the wheel that runs
on it, the MXNet environment, and the digits data. Standard library only."""
import json
import os
import shutil
import subprocess
import sys

from tools import gpu_facts
from tools.check_runner import StepFailed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Python versions numpy 1.23.5 (pinned for MXNet 1.9.1) has wheels for.
PYTHONS = ((3, 8), (3, 11))

__all__ = ["read_json", "step_machine", "step_venv", "step_data", "library_dirs"]


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise StepFailed(f"{os.path.basename(path)} was not written ({err})") from None


def step_machine(session):
    plan = session.plan
    from resnest.gluon.utils.cpu import cpu_flags, cpu_model
    flags = sorted(f for f in cpu_flags() if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    plan.facts.update(cpu=cpu_model(), isa=flags, python=sys.version.split()[0])
    if plan.dry:
        plan.facts.update(gpu=None, driver=None, cuda=None)
        return "dry run: no GPU; the CPU build of MXNet 1.9.1 in .venv", dict(plan.facts)
    if not shutil.which("nvidia-smi"):
        raise StepFailed("nvidia-smi not found: this check needs an NVIDIA GPU and its driver "
                         "(use --dry-run on a machine without one).")
    banner = session.run_cmd(["nvidia-smi"], capture=True)[1]
    query = session.run_cmd(["nvidia-smi", "--query-gpu=" + ",".join(gpu_facts.GPU_QUERY),
                             "--format=csv,noheader,nounits"], capture=True, check=False)[1]
    gpus = gpu_facts.parse_gpu_query(query)
    cuda = gpu_facts.parse_cuda_version(banner)
    if not gpus:
        raise StepFailed(f"nvidia-smi lists no GPU: {banner.strip()[:200]}")
    gpu = gpus[0]
    if gpu["compute_cap"] is None or cuda is None:       # an older nvidia-smi
        found = gpu_facts.cuda_driver_query()
        if not found:
            raise StepFailed("neither nvidia-smi nor the CUDA driver says the GPU's compute "
                             "capability and CUDA version.")
        cuda, gpu["compute_cap"] = found[0], found[1][0]
    plan.facts.update(gpu=gpu["name"], driver=gpu["driver_version"], cuda="%d.%d" % cuda,
                      compute_capability="%d.%d" % gpu["compute_cap"],
                      gpu_memory_mib=gpu["memory.total"], gpus=len(gpus))
    try:
        plan.wheel = gpu_facts.choose_wheel(cuda, gpu["compute_cap"])
    except gpu_facts.NoWheel as err:
        raise StepFailed(str(err)) from None
    plan.facts.update(wheel=plan.wheel.packages[0], wheel_notes=list(plan.wheel.notes))
    return (f"{gpu['name']} (sm_{gpu['compute_cap'][0]}{gpu['compute_cap'][1]}), driver "
            f"{gpu['driver_version']}, CUDA {plan.facts['cuda']}: {plan.wheel.packages[0]}",
            dict(plan.facts))


def library_dirs(venv):
    """The lib folders of NVIDIA's pip packages inside ``venv`` (for LD_LIBRARY_PATH)."""
    lib = os.path.join(venv, "lib")
    found = []
    for py in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        root = os.path.join(lib, py, "site-packages", "nvidia")
        if os.path.isdir(root):
            found += [os.path.join(root, d, "lib") for d in sorted(os.listdir(root))
                      if os.path.isdir(os.path.join(root, d, "lib"))]
    return found


def _check_python(session, python):
    out = session.run_cmd([python, "-c", "import sys; print(*sys.version_info[:2])"],
                          capture=True)[1].split()
    version = tuple(int(v) for v in out) if len(out) == 2 else None
    if version is None or not PYTHONS[0] <= version <= PYTHONS[1]:
        raise StepFailed(f"{python} is Python {'.'.join(out) or '?'}; MXNet 1.9.1 needs "
                         "numpy<1.24, which has wheels for Python 3.8-3.11: pass "
                         "--python /path/to/python3.11.")


def _install(session, plan):
    """Create the GPU environment and install the wheel, its CUDA libraries, the project and
    the authors' release (for the benchmark); skipped when already done for this wheel."""
    stamp = os.path.join(plan.venv, ".gpu-check-" + plan.wheel.packages[0])
    if os.path.exists(stamp):
        return "already installed"
    _check_python(session, plan.base_python)
    session.run_cmd([plan.base_python, "-m", "venv", plan.venv])
    others = [w.name for w in gpu_facts.WHEELS if w.name != plan.wheel.wheel.name and
              os.path.exists(os.path.join(plan.venv, f".gpu-check-{w.name}==1.9.1"))]
    if others:                            # an earlier run installed another build: one mxnet
        session.run_cmd([plan.python, "-m", "pip", "uninstall", "-y", *others])
        for name in others:
            os.remove(os.path.join(plan.venv, f".gpu-check-{name}==1.9.1"))
    pip = [plan.python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    session.run_cmd(pip + ["--upgrade", "pip<25", "wheel", "setuptools<70"])
    session.run_cmd(pip + ["-c", os.path.join(REPO, "constraints.txt"),
                           *plan.wheel.packages, "-e", REPO + "[train,test]"])
    ref = os.path.join(plan.venv, "reference")
    session.run_cmd([plan.python, "-m", "pip", "download", "-q", "--no-deps",
                     "resnest==0.0.5", "-d", ref])
    session.run_cmd([plan.python, "-m", "zipfile", "-e",
                     os.path.join(ref, "resnest-0.0.5-py3-none-any.whl"), ref])
    open(stamp, "w").close()
    return "installed"


def step_venv(session):
    plan = session.plan
    if plan.dry:
        if not os.path.exists(plan.python):
            raise StepFailed(f"{plan.python} does not exist; run `make setup` first.")
        how = "the project's .venv"
    else:
        missing = [lib for lib in plan.wheel.system_libraries if not _has_library(lib)]
        if missing:
            raise StepFailed(f"{plan.wheel.packages[0]} needs {', '.join(missing)} on the "
                             "system (there are no pip packages of CUDA 10): install CUDA "
                             f"{plan.wheel.wheel.cuda[0]}.{plan.wheel.wheel.cuda[1]} and cuDNN "
                             "7.6, or update the driver to CUDA 11.")
        if not _has_library("libquadmath.so.0"):
            raise StepFailed("MXNet's wheel needs libquadmath.so.0 (apt install libquadmath0).")
        how = _install(session, plan)
        dirs = library_dirs(plan.venv)
        session.env["LD_LIBRARY_PATH"] = os.pathsep.join(
            dirs + [session.env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
        session.env["RESNEST_AUTHORS_DIR"] = os.path.join(plan.venv, "reference")
        session.env.update(plan.wheel.env)
    info = os.path.join(session.out, "env.json")
    session.run_cmd([plan.python, os.path.join(REPO, "tools", "gpu_probe.py"), "env",
                     "--device", plan.device, "--json", info])
    env = read_json(info)
    if not plan.dry and not {"CUDA", "CUDNN"} <= set(env["features"]):
        raise StepFailed(f"this MXNet was built without CUDA/cuDNN: {env['features']}")
    plan.facts["mxnet_features"] = env["features"]
    return f"{how}: MXNet {env['mxnet']}, computes on {env['device']}", env


def _has_library(soname):
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True,
                         timeout=30).stdout if os.path.exists(ldconfig) else ""
    return soname in out or any(os.path.exists(os.path.join(d, soname)) for d in
                                os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d)


def step_data(session):
    plan = session.plan
    data = os.path.join(session.out, "data")
    session.run_cmd([plan.python, plan.script("dataset", "make_digits.py"),
                     os.path.join(data, "images"), "--size", "32", *plan.digits])
    for split in ("train", "val"):
        session.run_cmd([plan.python, plan.script("dataset", "im2rec.py"),
                         os.path.join(data, "images", split), os.path.join(data, split),
                         "--workers", "1", "--no-progress"])
    counts = {s: sum(len(files) for _, _, files in os.walk(os.path.join(data, "images", s)))
              for s in ("train", "val")}
    return f"{counts['train']} training and {counts['val']} validation digits packed", counts
