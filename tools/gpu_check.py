"""The GPU check: one command that says, on a machine with an NVIDIA GPU, whether this
project's GPU path works there, in minutes.

    tools/gpu_check.sh                 # on the GPU machine (or: make gpu-check)
    tools/gpu_check.sh --dry-run       # on any machine: every step on the CPU, same code

It reads the driver's CUDA version and the GPU's compute capability (``nvidia-smi``), picks
the ``mxnet-cu1xx==1.9.1`` wheel that runs there (:mod:`tools.gpu_facts`; one sentence when
none does) and installs it with the CUDA libraries it needs into its own environment
(``.venv-gpu``), then runs, each step time-boxed and reported: the 13 models' logits on the GPU
against the CPU; ``train.py`` for one epoch on the digits in float32 and in float16 (AMP with
the dynamic loss scaler); ``verify.py --num-gpus 1``; ResNeSt-50 latency and throughput on the
GPU against the authors' model (``benchmark.py``); and, if time allows, Horovod built with NCCL
and a 1-GPU ``horovodrun``. One report is printed and a JSON written.

``--dry-run`` walks the same steps on the CPU through the same code with tiny sizes and the
project's ``.venv``: MXNet's second CPU context stands in for the GPU in the logits step,
``--num-gpus 0`` in the scripts, and float16 training (AMP has no CPU kernels) becomes float32
with the dynamic loss scaler forced on, so the scaler's code still runs. ``make test`` runs it.
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools import gpu_check_env as env_steps  # noqa: E402
from tools import gpu_check_runs as run_steps  # noqa: E402
from tools.check_runner import Session, Step  # noqa: E402

# Seconds for the checks after the environment is installed: the GPU run's target, and room
# for the dry run on two loaded CPU cores.
BUDGET, DRY_BUDGET = 480.0, 1500.0


class Plan:
    """Sizes, paths and commands of one run: the GPU run, or the dry run on the CPU."""

    def __init__(self, args):
        self.dry = args.dry_run
        self.out = os.path.abspath(args.out or os.path.join(
            REPO, "runs", "gpu-check-" + time.strftime("%Y%m%d-%H%M%S")))
        self.venv = os.path.join(REPO, ".venv") if self.dry else os.path.abspath(args.venv)
        self.python = os.path.join(self.venv, "bin", "python")
        self.base_python = args.python
        self.device = "cpu" if self.dry else "gpu"
        self.num_gpus = "0" if self.dry else "1"
        self.models = ["resnest14", "resnest50_fast_1s4x24d"] if self.dry and not \
            args.all_models else None                                    # None: all 13
        self.logits = ("32", "1") if self.dry else ("64", "2")          # size, batch
        self.train_model = "resnest_tiny" if self.dry else "resnest50"
        self.train_batch = "16" if self.dry else "64"
        self.digits = ["--train-per-class", "12", "--val-fraction", "0.05"] if self.dry else []
        self.bench = (["--input-sizes", "32", "--batch-sizes", "1", "--rounds", "2",
                       "--warmup", "1", "--gap", "0", "--dtypes", "float32"] if self.dry else
                      ["--batch-sizes", "32", "1", "--rounds", "20", "--dtypes", "float32",
                       "float16"])
        self.skip_horovod = args.skip_horovod
        self.facts, self.wheel = {}, None

    def script(self, *parts):
        return os.path.join(REPO, "scripts", *parts)

    def train_args(self, save_dir, dtype):
        data = os.path.join(self.out, "data")
        return ["--rec-train", os.path.join(data, "train.rec"), "--rec-val",
                os.path.join(data, "val.rec"), "--model", self.train_model, "--input-size",
                "32", "--crop-ratio", "1.0", "--num-epochs", "1", "--batch-size",
                self.train_batch, "--lr", "0.05", "--no-mirror", "--seed", "0",
                "--data-nthreads", "2", "--no-progress", "--save-dir", save_dir, "--dtype",
                dtype] + (["--no-cuda"] if self.dry else [])


# name, title, function, box (s), least time worth starting it (s), steps it needs, budgeted
_GPU_BOXES = {"machine": 60, "venv": 1200, "data": 60, "logits": 180, "train-fp32": 180,
              "train-fp16": 180, "verify": 150, "benchmark": 180, "horovod": 480}
# Dry-run boxes leave room for a loaded machine (2 shared cores: 4-5x the quiet times).
_DRY_BOXES = {"machine": 30, "venv": 120, "data": 120, "logits": 180, "train-fp32": 180,
              "train-fp16": 180, "verify": 180, "benchmark": 240, "horovod": 300}


def steps(plan):
    """The steps of this run, in order."""
    boxes = _DRY_BOXES if plan.dry else _GPU_BOXES
    fp16 = "float32 + forced loss scaler" if plan.dry else "train.py 1 epoch float16"
    table = [
        ("machine", "machine and wheel", env_steps.step_machine, 5, (), False),
        ("venv", "MXNet environment", env_steps.step_venv, 30, ("machine",), False),
        ("data", "digits packed (im2rec.py)", env_steps.step_data, 20, ("venv",), True),
        ("logits", "logits GPU vs CPU (13 models)", run_steps.step_logits, 30, ("venv",), True),
        ("train-fp32", "train.py 1 epoch float32", run_steps.step_train_fp32, 30, ("data",),
         True),
        ("train-fp16", fp16, run_steps.step_train_fp16, 30, ("train-fp32",), True),
        ("verify", "verify.py --num-gpus " + plan.num_gpus, run_steps.step_verify, 20,
         ("train-fp32",), True),
        ("benchmark", "benchmark.py vs the authors", run_steps.step_benchmark, 30, ("venv",),
         True),
        ("horovod", "Horovod NCCL, horovodrun -np 1", run_steps.step_horovod,
         60 if plan.dry else 240, ("data",), True),
    ]
    return [Step(name, title, fn, boxes[name], needs, requires, budgeted)
            for name, title, fn, needs, requires, budgeted in table]


def _banner(plan):
    line = "=" * 78
    mode = ("DRY RUN on the CPU: every step, the same code, tiny sizes" if plan.dry else
            "on this machine's GPU")
    print(f"{line}\nResNeSt GPU check ({mode})\nrun folder: {plan.out}\n{line}", flush=True)


def _report(plan, session, json_path):
    facts = plan.facts
    header = {"dry_run": plan.dry, "machine": facts, "budget_seconds": session.budget,
              "venv": plan.venv}
    record = session.write_json(json_path, header)
    line = "=" * 78
    gpu = (f"{facts.get('gpu')} (compute capability {facts.get('compute_capability')}, "
           f"{facts.get('gpu_memory_mib')} MiB), driver {facts.get('driver')}, CUDA "
           f"{facts.get('cuda')}") if facts.get("gpu") else "none (dry run)"
    print(line)
    print(f"CPU    {facts.get('cpu')} ({' '.join(facts.get('isa') or []) or 'no AVX2'})")
    print(f"GPU    {gpu}")
    wheel = "mxnet==1.9.1 (CPU build, .venv)" if plan.dry else facts.get("wheel", "none")
    print(f"wheel  {wheel}")
    for note in facts.get("wheel_notes", [])[1:]:
        print(f"       {note}")
    counts = record["counts"]
    print(f"result {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} "
          f"skipped in {record['total_seconds']:.0f} s"
          + ("" if record["ok"] else "  ** THE GPU PATH DOES NOT WORK HERE AS CHECKED **"))
    for r in session.results:
        if r.status == "failed":
            print(f"       {r.name}: {r.status}: {r.detail}")
    print(f"JSON   {json_path}\n{line}", flush=True)
    return record


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: every step on the CPU with the project's .venv, tiny sizes")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/gpu-check-<time>)")
    p.add_argument("--json", metavar="FILE", help="default: <run folder>/gpu_check.json")
    p.add_argument("--venv", default=os.path.join(REPO, ".venv-gpu"),
                   help="the GPU environment, created on first use (not .venv)")
    p.add_argument("--python", default=sys.executable,
                   help="Python 3.8-3.11 that creates the GPU environment")
    p.add_argument("--budget", type=float,
                   help=f"seconds for the checks after the environment is installed (default "
                        f"{BUDGET:.0f}, dry run {DRY_BUDGET:.0f})")
    p.add_argument("--all-models", action="store_true",
                   help="dry run: all 13 models in the logits step (default: 2)")
    p.add_argument("--skip-horovod", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = Plan(args)
    if os.path.isdir(plan.out) and os.listdir(plan.out):
        print(f"error: {plan.out} exists and is not empty; give another --out.",
              file=sys.stderr)
        return 2
    os.makedirs(plan.out, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    budget = args.budget or (DRY_BUDGET if plan.dry else BUDGET)
    session = Session(plan.out, env, budget)
    session.plan, session.trained = plan, None
    _banner(plan)
    json_path = os.path.abspath(args.json or os.path.join(plan.out, "gpu_check.json"))
    try:
        for step in steps(plan):
            session.step(step)
    except KeyboardInterrupt:                 # the running step's processes are already gone
        _report(plan, session, json_path)
        print("error: interrupted", file=sys.stderr)
        return 130
    record = _report(plan, session, json_path)
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
