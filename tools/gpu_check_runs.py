"""The GPU check's model steps (:mod:`tools.gpu_check`): the 13 models' logits, training in
float32 and float16, verify.py, the benchmark against the authors' model, and Horovod with
NCCL. Each runs the project's own scripts (or :mod:`tools.gpu_probe`) in the check's MXNet
environment and reads what they wrote. Standard library only."""
import glob
import json
import math
import os
import re
import shutil

from tools.check_runner import StepFailed, StepSkipped
from tools.gpu_check_env import REPO, read_json

__all__ = ["step_logits", "step_train_fp32", "step_train_fp16", "step_verify",
           "step_benchmark", "step_horovod", "horovod_flags", "parse_check_build"]

PROBE = os.path.join(REPO, "tools", "gpu_probe.py")
INITIAL_SCALE = 2.0 ** 16          # LossScaler's starting scale (train/scaling.py)


def step_logits(session):
    plan = session.plan
    out = os.path.join(session.out, "logits.json")
    size, batch = plan.logits
    cmd = [plan.python, PROBE, "logits", "--device", plan.device, "--size", size, "--batch",
           batch, "--json", out] + (["--models", *plan.models] if plan.models else [])
    # float32 on the GPU as float32: no TF32 tensor-core rounding in cuBLAS/cuDNN (Ampere+).
    code = session.run_cmd(cmd, env={"NVIDIA_TF32_OVERRIDE": "0"}, check=False)
    if not os.path.exists(out):
        raise StepFailed(f"gpu_probe.py logits exited {code}: {session.log_tail()}")
    result = read_json(out)
    rows = result["rows"]
    worst = max(rows, key=lambda r: r["float32"])
    bad = [r["model"] for r in rows if not r["ok"]]
    f64 = [r["float64"] for r in rows if r["float64"] is not None]
    text = (f"{len(rows)} models at {size} px: float64 max "
            + (f"{max(f64):.1e}" if f64 else "n/a") + f" (bound "
            f"{result['bounds']['float64']:.0e}), float32 max {worst['float32']:.1e} "
            f"({worst['model']}; bound {result['bounds']['float32']:.0e})")
    if len(f64) < len(rows):
        text += f"; float64 did not run on the device for {len(rows) - len(f64)} models"
    if bad:
        raise StepFailed(f"{', '.join(bad)} differ beyond the bounds: {text}")
    if plan.models:
        text += f" [dry run: {len(rows)} of the 13 models]"
    return text, result


def _epoch(save_dir):
    try:
        with open(os.path.join(save_dir, "metrics.jsonl")) as f:
            epochs = [r for r in map(json.loads, f) if r.get("kind") == "epoch"]
    except OSError:
        epochs = []
    if not epochs:
        raise StepFailed(f"no epoch record in {save_dir}/metrics.jsonl")
    last = epochs[-1]
    if not math.isfinite(last["train_loss"]) or last["top1"] is None:
        raise StepFailed(f"epoch record without a finite loss and an evaluation: {last}")
    return last


def _checkpoint(save_dir, model):
    found = sorted(glob.glob(os.path.join(save_dir, f"imagenet-{model}-0.json")))
    if not found:
        raise StepFailed(f"no checkpoint imagenet-{model}-0.json in {save_dir}")
    return read_json(found[0]), found[0][:-len(".json")] + ".params"


def _train(session, name, dtype, cmd_prefix):
    plan = session.plan
    save = os.path.join(session.out, name)
    session.run_cmd(cmd_prefix + plan.train_args(save, dtype))
    epoch = _epoch(save)
    record, params = _checkpoint(save, plan.train_model)
    config = read_json(os.path.join(save, "config.json"))
    want = "cpu" if plan.dry else "gpu"
    if not config.get("context", "").startswith(want):
        raise StepFailed(f"trained on {config.get('context')}, not on the {want}")
    data = dict(epoch, context=config["context"], loss_scaler=record.get("loss_scaler"),
                params=params, steps=config.get("steps_per_epoch"))
    return epoch, data


def step_train_fp32(session):
    plan = session.plan
    epoch, data = _train(session, "train-fp32", "float32",
                         [plan.python, plan.script("gluon", "train.py")])
    session.trained = data
    return (f"{plan.train_model} on {data['context']}: loss {epoch['train_loss']:.4f}, "
            f"top-1 {epoch['top1']:.2f}%, {epoch['img_per_sec']:.0f} img/s"), data


def step_train_fp16(session):
    plan = session.plan
    if plan.dry:
        # AMP float16 has no CPU kernels: float32 with the dynamic loss scaler forced on runs
        # the scaler's step (scale, unscale, the all-finite check, where(ok, new, old)).
        prefix = [plan.python, PROBE, "train-scaled", "--"]
        epoch, data = _train(session, "train-scaled", "float32", prefix)
    else:
        epoch, data = _train(session, "train-fp16", "float16",
                             [plan.python, plan.script("gluon", "train.py")])
    scaler = data["loss_scaler"] or {}
    if not scaler.get("scale", 0) >= 1.0 or scaler == {"scale": 1.0, "clean_steps": 0}:
        raise StepFailed(f"the dynamic loss scaler did not run: {scaler}")
    text = (f"loss {epoch['train_loss']:.4f}, top-1 {epoch['top1']:.2f}%, loss scale "
            f"{scaler['scale']:g} after {scaler['clean_steps']} clean steps")
    if plan.dry:
        base = session.trained["train_loss"]
        diff = abs(epoch["train_loss"] - base)
        # Scaling by 2^16 and back is exact in float32, so the run equals the float32 one.
        if scaler["scale"] != INITIAL_SCALE or scaler["clean_steps"] != data["steps"] or \
                diff > 1e-5 * abs(base):
            raise StepFailed(f"float32 with the scaler differs from float32 without it: loss "
                             f"{epoch['train_loss']} vs {base}, scaler {scaler}")
        text = ("dry run: float32 with the dynamic loss scaler forced on (AMP float16 has no "
                f"CPU kernels): {text}; loss equals the float32 run's (|diff| {diff:.1e})")
    return text, data


def step_verify(session):
    plan = session.plan
    trained = session.trained
    results = {}
    for dtype in ("float32",) if plan.dry else ("float32", "float16"):
        out = os.path.join(session.out, f"verify-{dtype}.json")
        session.run_cmd([plan.python, plan.script("gluon", "verify.py"), "--model",
                         plan.train_model, "--resume", trained["params"], "--rec-val",
                         os.path.join(session.out, "data", "val.rec"), "--num-gpus",
                         plan.num_gpus, "--dtype", dtype, "--backend", "mxnet", "--batch-size",
                         "64", "-j", "2", "--no-progress", "--json", out])
        results[dtype] = read_json(out)
    top1 = results["float32"]["top1"]
    images = results["float32"]["images"]
    one = 100.0 / images + 1e-6
    # The evaluator training used, on the same images and preprocessing: equal up to an image
    # whose logits tie closely (float32 kernels differ between the two programs).
    if abs(top1 - trained["top1"]) > one:
        raise StepFailed(f"verify.py top-1 {top1:.2f}% but training measured "
                         f"{trained['top1']:.2f}% on the same {images} images")
    text = f"float32 top-1 {top1:.2f}% on {images} images (training: {trained['top1']:.2f}%)"
    if "float16" in results:
        half = results["float16"]["top1"]
        if abs(half - top1) > 2.0:
            raise StepFailed(f"float16 top-1 {half:.2f}% against float32 {top1:.2f}%")
        text += f", float16 {half:.2f}%"
    else:
        text += " [dry run: float16 inference needs a GPU]"
    return text, results


def step_benchmark(session):
    plan = session.plan
    out = os.path.join(session.out, "benchmark.json")
    session.run_cmd([plan.python, plan.script("gluon", "benchmark.py"), "--models",
                     "resnest50", "--backends", "mxnet", "--num-gpus", plan.num_gpus,
                     *plan.bench, "--json", out])
    rows = read_json(out)
    authors = [r for r in rows if r["impl"] == "authors"]
    ours = [r for r in rows if r["impl"] == "ours"]
    if not authors or not ours:
        raise StepFailed("the benchmark has no row of the authors' model or of ours")
    parts = []
    for r in ours:
        parts.append(f"b{r['batch_size']} {r['dtype']} {r['median_ms']:.1f} ms "
                     f"{r['images_per_s']:.0f} img/s "
                     f"{r.get('speedup_vs_authors_resnest50', float('nan')):.2f}x")
    base = "; ".join(f"b{r['batch_size']} authors {r['median_ms']:.1f} ms" for r in authors)
    note = " [dry run: 2 rounds at 32 px on the CPU, the times mean nothing]" if plan.dry else ""
    return f"resnest50: {'; '.join(parts)} ({base}){note}", {"rows": rows}


def horovod_flags(makefile=os.path.join(REPO, "Makefile")):
    """The Horovod build variables of the Makefile's ``HVD_FLAGS`` (one place for both)."""
    with open(makefile) as f:
        match = re.search(r"^HVD_FLAGS\s*:?=\s*(.+)$", f.read(), re.M)
    if not match:
        raise StepFailed("the Makefile has no HVD_FLAGS line")
    return dict(item.split("=", 1) for item in match[1].split())


def _nvcc():
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("HOROVOD_CUDA_HOME"),
                 "/usr/local/cuda"):
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return home
    found = shutil.which("nvcc")
    return os.path.dirname(os.path.dirname(found)) if found else None


def _build_horovod(session, plan):
    """Horovod 0.28.1 with NCCL into the GPU environment (the Makefile's flags + NCCL)."""
    cuda = _nvcc()
    if cuda is None:
        raise StepSkipped("no CUDA toolkit (nvcc) found, which Horovod's NCCL build needs: "
                          "set CUDA_HOME to a CUDA 11 toolkit")
    _, text = session.run_cmd([os.path.join(cuda, "bin", "nvcc"), "--version"], capture=True)
    release = re.search(r"release (\d+)\.(\d+)", text)
    if not release or release[1] != "11":
        raise StepSkipped(f"the CUDA toolkit in {cuda} is not CUDA 11 ({release and release[0]})"
                          "; Horovod must be built with CUDA 11 to share MXNet's CUDA 11 "
                          "runtime: set CUDA_HOME to a CUDA 11 toolkit")
    nccl = next((d for d in session.env.get("LD_LIBRARY_PATH", "").split(os.pathsep)
                 if d.endswith(os.path.join("nvidia", "nccl", "lib"))), None)
    if nccl is None:
        raise StepFailed("NVIDIA's NCCL package is not in the GPU environment")
    link = os.path.join(session.out, "nccl-lib")           # the build looks for libnccl.so
    os.makedirs(link, exist_ok=True)
    if not os.path.exists(os.path.join(link, "libnccl.so")):
        os.symlink(os.path.join(nccl, "libnccl.so.2"), os.path.join(link, "libnccl.so"))
    env = dict(horovod_flags(), HOROVOD_GPU_OPERATIONS="NCCL", HOROVOD_CUDA_HOME=cuda,
               HOROVOD_NCCL_INCLUDE=os.path.join(os.path.dirname(nccl), "include"),
               HOROVOD_NCCL_LIB=link, HOROVOD_NCCL_LINK="SHARED")
    pip = [plan.python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-c",
           os.path.join(REPO, "constraints.txt")]
    session.run_cmd(pip + ["cmake", "packaging", "psutil", "pyyaml", "cloudpickle"])
    session.run_cmd(pip + ["--no-build-isolation", "--no-cache-dir", "--force-reinstall",
                           "horovod==0.28.1"], env=env)
    return "built with NCCL"


def parse_check_build(text):
    """``horovodrun --check-build`` as ``{section: {item: built}}``, e.g.
    ``{'Available Tensor Operations': {'NCCL': True, 'Gloo': True, ...}, ...}``."""
    sections, current = {}, None
    for line in text.splitlines():
        item = re.match(r"\s*\[([ X])\]\s+(\S+)", line)
        if item and current is not None:
            sections[current][item[2]] = item[1] == "X"
        elif line.strip().endswith(":") and not line.startswith(" "):
            current = line.strip()[:-1]
            sections[current] = {}
    return sections


def _horovod_build(session, horovodrun):
    if not os.path.exists(horovodrun):
        return None
    code, text = session.run_cmd([horovodrun, "--check-build"], capture=True, check=False)
    return parse_check_build(text) if code == 0 else None


def step_horovod(session):
    plan = session.plan
    if plan.skip_horovod:
        raise StepSkipped("--skip-horovod")
    horovodrun = os.path.join(plan.venv, "bin", "horovodrun")
    build = _horovod_build(session, horovodrun)
    ops = "Gloo" if plan.dry else "NCCL"
    if plan.dry:
        if build is None:
            raise StepSkipped("Horovod is not installed in .venv (make setup builds it)")
        built = "dry run: the .venv's Horovod (Gloo) is used, the NCCL build runs on a GPU"
    elif build and build.get("Available Tensor Operations", {}).get("NCCL"):
        built = "built with NCCL by an earlier run"
    else:
        built = _build_horovod(session, plan)
        build = _horovod_build(session, horovodrun) or {}
    if not (build.get("Available Frameworks", {}).get("MXNet")
            and build.get("Available Tensor Operations", {}).get(ops)):
        raise StepFailed(f"Horovod was not built with MXNet and {ops}: {build}")
    save = os.path.join(session.out, "horovod-train")
    session.run_cmd([horovodrun, "-np", "1", "--gloo", plan.python,
                     plan.script("gluon", "train.py")] + plan.train_args(save, "float32"))
    epoch = _epoch(save)
    workers = read_json(os.path.join(save, "config.json")).get("workers")
    if workers != 1:
        raise StepFailed(f"horovodrun -np 1 trained with {workers} workers")
    return (f"{built}; horovodrun -np 1: loss {epoch['train_loss']:.4f}, top-1 "
            f"{epoch['top1']:.2f}%"), dict(build=build, epoch=epoch)
