"""The parts of the GPU check (``tools/gpu_check.py``) that run inside its MXNet environment,
each a subcommand run in its own process:

    python tools/gpu_probe.py env --device gpu
    python tools/gpu_probe.py logits --device gpu --size 64 --batch 2 --json logits.json
    python tools/gpu_probe.py train-scaled -- <scripts/gluon/train.py arguments>

``--device cpu`` is the dry run's stand-in for the GPU: MXNet's second CPU context,
``mx.cpu(1)``, so that an array or a parameter left on the default context still fails as it
would beside a GPU.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from resnest.gluon.utils.threads import own_threads  # noqa: E402

# Largest |device - CPU float64| / max |CPU float64| allowed. float64: both devices compute the
# same sums in double precision, the difference is rounding order (about 1e-13 measured on
# CPUs); float32 on the device (TF32 off): what float32 rounding allows over up to 269 layers
# (the CPU's own float32 differs from float64 by 5e-4 for resnest269, ENVIRONMENT.md).
BOUND64, BOUND32 = 1e-9, 2e-3


def _device(name):
    import mxnet as mx
    return mx.gpu(0) if name == "gpu" else mx.cpu(1)


def env_info(device):
    """What MXNet this is and whether it computes on ``device``: a dict."""
    import mxnet as mx
    features = [k for k, v in mx.runtime.Features().items() if v.enabled]
    ctx = _device(device)
    total = float((mx.nd.ones((64, 64), ctx=ctx) * 2).sum().asscalar())   # runs a kernel
    return {"mxnet": mx.__version__, "features": features, "gpus": mx.context.num_gpus(),
            "device": str(ctx), "kernel_check": total == 2 * 64 * 64}


def _model(name, seed):
    """``name`` with deterministic random weights and BN statistics, on the CPU."""
    import mxnet as mx
    import numpy as np
    from resnest.gluon import get_model
    mx.random.seed(seed)
    net = get_model(name)
    net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
    net(mx.nd.zeros((1, 3, 32, 32)))
    rng = np.random.RandomState(seed)
    for key, param in sorted(net._collect_params_with_prefix().items()):
        if key.rsplit(".", 1)[-1] in ("gamma", "beta", "running_mean", "running_var"):
            low, high = (0.5, 1.5) if key.endswith(("gamma", "running_var")) else (-0.1, 0.1)
            param.set_data(mx.nd.array(rng.uniform(low, high, size=param.shape)))
    return net


def _logits(net, x, ctx, dtype):
    import mxnet as mx
    net.collect_params().reset_ctx(ctx)
    net.hybridize()                                   # a fresh graph for this dtype and device
    return net(mx.nd.array(x, ctx=ctx, dtype=dtype)).asnumpy().astype("float64")


def compare_logits(models, device, size, batch):
    """Per model, the largest relative difference of the device's logits from the CPU's
    float64 logits, in float64 and float32, and the CPU's own float32 difference."""
    import mxnet as mx
    import numpy as np
    ctx, cpu = _device(device), mx.cpu()
    rows = []
    for i, name in enumerate(models):
        net = _model(name, seed=i)
        x = np.random.RandomState(100 + i).uniform(-2, 2, (batch, 3, size, size))
        cpu32 = _logits(net, x, cpu, "float32")
        dev32 = _logits(net, x, ctx, "float32")
        net.cast("float64")
        ref = _logits(net, x, cpu, "float64")
        scale = float(np.abs(ref).max()) or 1.0
        try:
            dev64 = float(np.abs(_logits(net, x, ctx, "float64") - ref).max() / scale)
        except mx.base.MXNetError as err:      # float64 is a check, not a path users run
            dev64 = None
            print(f"{name}: float64 does not run on {ctx}: {str(err).splitlines()[0]}")
        row = {"model": name, "float64": dev64,
               "float32": float(np.abs(dev32 - ref).max() / scale),
               "cpu_float32": float(np.abs(cpu32 - ref).max() / scale),
               "top1_equal": bool((dev32.argmax(1) == ref.argmax(1)).all())}
        row["ok"] = (dev64 is None or dev64 <= BOUND64) and row["float32"] <= BOUND32
        f64 = "n/a" if dev64 is None else f"{dev64:.1e}"
        print(f"{name:26s} float64 {f64}  float32 {row['float32']:.1e} "
              f"(CPU float32 {row['cpu_float32']:.1e})  {'ok' if row['ok'] else 'FAILED'}",
              flush=True)
        rows.append(row)
        del net
        mx.nd.waitall()
    return rows


def train_with_forced_scaler(argv):
    """``scripts/gluon/train.py argv`` with the dynamic loss scaler on whatever the dtype: the
    dry run's stand-in for float16 training (MXNet AMP has no float16 CPU kernels), so that the
    scaler's device-side step runs in float32."""
    from resnest.gluon.train import parse_config, runner, train
    from resnest.gluon.train.scaling import LossScaler

    class ForcedScaler(LossScaler):
        def __init__(self, dynamic=False, **kwargs):
            super().__init__(dynamic=True, **kwargs)

    runner.LossScaler = ForcedScaler
    train(parse_config(argv))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train-scaled"]:
        own_threads()
        rest = argv[1:]
        train_with_forced_scaler(rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("env", "logits"))
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--models", nargs="+")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    own_threads()
    if args.command == "env":
        result = env_info(args.device)
    else:
        from resnest.gluon import list_models
        models = args.models or list_models(pretrained=True, task="classification")
        result = {"rows": compare_logits(models, args.device, args.size, args.batch),
                  "bounds": {"float64": BOUND64, "float32": BOUND32}}
        result["ok"] = all(r["ok"] for r in result["rows"])
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text if args.command != "logits" else f"all within bounds: {result['ok']}")
    return 0 if result.get("ok", True) and result.get("kernel_check", True) else 1


if __name__ == "__main__":
    from resnest.gluon.utils.cli import run_cli
    run_cli(main)
