"""int8 accuracy you can trust: top-1 agreement of int8 with float32 on held-out real images,
per backend and per choice of the layers kept in float32, with the speed each choice buys.

    python tools/int8_study.py --json int8_study.json                  # about 6 min on 2 cores
    python tools/int8_study.py --params tests/fixtures/int8_study.params --speed \
        --configs base sa_all_fp32 all --json int8_speed.json
    python tools/int8_study.py --save-params tests/fixtures/int8_study.params   # the fixture

A narrow ResNeSt-14 (the real split-attention block, radix 2, stage widths 16-128) is trained
on 64-px patches of 17 photos (:mod:`tools.photos`, one class per photo; the held-out patches
come from image regions training never sees). Each backend's int8 model, calibrated on 64
training-region patches, then classifies the held-out patches; agreement is the fraction whose
top-1 class equals the float32 model's. ``--speed`` times, for each backend and exclusion,
ResNeSt-50 int8 (random weights, calibrated on photo crops) against the authors' float32
model, interleaved in one process (:mod:`tools.timing`).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = ["CONFIGS", "build", "train", "logits", "agreement_rows",
           "speed_rows", "format_table", "main"]

_STEM, _FC = "conv1conv0_fwd", "dense0_fwd"
# What stays float32 in each configuration (node-name substrings, for every backend).
CONFIGS = {
    "all": (),
    "base": (_STEM, _FC),
    "sa_attn_fp32": (_STEM, _FC, "splitattentionconv0_conv1_fwd",
                     "splitattentionconv0_conv2_fwd", "splitattentionconv0_softmax"),
    "sa_conv_fp32": (_STEM, _FC, "splitattentionconv0_conv0_fwd"),
    "sa_all_fp32": (_STEM, _FC, "splitattentionconv0_"),
}


def _study_config():
    from resnest.gluon.models.resnet import ResNetConfig
    return ResNetConfig((1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16)


def build(classes=17, config=None):
    """The study's narrow ResNeSt-14 (``config`` overrides its :class:`ResNetConfig`)."""
    from resnest.gluon.models.resnet import ResNet
    return ResNet(config or _study_config(), classes=classes)


def train(net, steps, size=64, batch_size=32, lr=0.05, seed=0, log=None):
    """SGD with momentum, cosine learning rate, 20-step warm-up, on fresh training patches
    every step; returns ``net``."""
    import mxnet as mx
    from tools.photos import patches
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": lr, "momentum": 0.9, "wd": 5e-4})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for step in range(steps):
        images, labels = patches(batch_size, "train", size, seed=1000 * seed + step)
        warm = min(1.0, (step + 1) / 20)
        trainer.set_learning_rate(lr * warm * 0.5 * (1 + np.cos(np.pi * step / steps)))
        with mx.autograd.record():
            loss = loss_fn(net(mx.nd.array(images)), mx.nd.array(labels))
        loss.backward()
        trainer.step(batch_size)
        if log and (step + 1) % 50 == 0:
            log(f"step {step + 1}/{steps} loss {float(loss.mean().asscalar()):.3f}")
    return net


def logits(fn, images, batch=100):
    """Logits (numpy) of ``fn`` over ``images`` in batches of ``batch`` (the last one smaller)."""
    import mxnet as mx
    return np.concatenate([fn(mx.nd.array(images[i:i + batch])).asnumpy()
                           for i in range(0, len(images), batch)])


def _copy(net, params, classes):
    fresh = build(classes)
    fresh.load_parameters(params)
    return fresh


def agreement_rows(net, images, labels, calib, backends, configs, classes=17, batch=100):
    """One row per backend x configuration: int8 top-1 agreement with the float32 model on
    ``images`` and int8 top-1 on ``labels`` (the float32 top-1 in every row)."""
    import mxnet as mx
    from resnest.gluon.inference import optimize
    reference = logits(net, images, batch).argmax(1)
    fp32_top1 = float((reference == labels).mean())
    size = images.shape[-1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        params = os.path.join(tmp, "net.params")
        net.save_parameters(params)
        for backend in backends:
            for name in configs:
                start = time.time()
                fast = optimize(_copy(net, params, classes), "int8", backend=backend,
                                calib_data=[mx.nd.array(calib)], input_size=size,
                                batch_size=batch, exclude=CONFIGS[name])
                got = logits(fast, images, batch).argmax(1)
                rows.append(dict(backend=backend, config=name, fp32=list(CONFIGS[name]),
                                 agreement=float((got == reference).mean()),
                                 int8_top1=float((got == labels).mean()),
                                 fp32_top1=fp32_top1, images=len(images),
                                 build_s=round(time.time() - start, 1)))
    return rows


def speed_rows(backends, configs, model="resnest50", size=224, batch=16, rounds=5, classes=1000):
    """Speed-up over the authors' float32 ``model`` (plain hybridized, random weights) of our
    int8 per backend x configuration, interleaved in this process; one row each."""
    import mxnet as mx
    from resnest.gluon import get_model
    from resnest.gluon.inference import optimize
    from tools.inference_bench import _fresh, _plain
    from tools.photos import calibration_patches
    from tools.timing import LoadMeter, summarize, time_interleaved
    x = mx.nd.random.uniform(-2, 2, shape=(batch, 3, size, size))
    calib = [mx.nd.array(calibration_patches(16, size))]
    fns = {"authors": _plain(_fresh("authors", model, classes, x), x)}
    for backend in backends:
        for name in configs:
            net = get_model(model, classes=classes)
            net.initialize(mx.init.Xavier())
            fns[(backend, name)] = optimize(net, "int8", backend=backend, calib_data=calib,
                                            input_size=size, batch_size=batch,
                                            calib_mode="naive", exclude=CONFIGS[name])
    with LoadMeter() as load:
        times = time_interleaved(fns, x, rounds=rounds, runs_per_round=1, warmup=2,
                                 shuffle=True)
    base = summarize(times["authors"], batch)
    rows = []
    for key in fns:
        if key == "authors":
            continue
        got = summarize(times[key], batch)
        rows.append(dict(backend=key[0], config=key[1], model=model, input_size=size,
                         batch_size=batch, median_ms=round(got.median_ms, 1),
                         authors_median_ms=round(base.median_ms, 1),
                         speedup=round(base.median_ms / got.median_ms, 2), **load.as_dict()))
    return rows


def format_table(agreement, speed=()):
    """Markdown table: backend, configuration, speed-up (when measured), agreement, top-1."""
    speeds = {(r["backend"], r["config"]): r["speedup"] for r in speed}
    lines = ["| backend | kept in float32 | speed-up vs authors fp32 | top-1 agreement | "
             "int8 top-1 (fp32) |", "|---|---|---|---|---|"]
    for r in agreement:
        key = (r["backend"], r["config"])
        up = f"{speeds[key]:.2f}x" if key in speeds else "-"
        lines.append(f"| {r['backend']} | {r['config']} | {up} | {100 * r['agreement']:.2f}% | "
                     f"{100 * r['int8_top1']:.2f}% ({100 * r['fp32_top1']:.2f}%) |")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", default=["mxnet", "onnxruntime", "openvino"])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--steps", type=int, default=700, help="training steps of 32 patches")
    p.add_argument("--size", type=int, default=64, help="patch size (px)")
    p.add_argument("--heldout", type=int, default=2380, help="held-out patches (140 a class)")
    p.add_argument("--speed", action="store_true", help="also time each int8 configuration")
    p.add_argument("--speed-model", default="resnest50")
    p.add_argument("--speed-size", type=int, default=224)
    p.add_argument("--speed-batch", type=int, default=16)
    p.add_argument("--speed-rounds", type=int, default=5)
    p.add_argument("--save-params", metavar="FILE",
                   help="keep the trained model (tests/fixtures/int8_study.params is made so)")
    p.add_argument("--params", metavar="FILE", help="use this trained model, do not train")
    p.add_argument("--json", metavar="FILE")
    return p.parse_args(argv)


def main(argv=None):
    from resnest.gluon.utils.io import write_json
    from resnest.gluon.utils.threads import own_threads
    threads = own_threads()
    args = parse_args(argv)
    from tools.photos import calibration_patches, patches
    from tools.timing import cpu_info
    start = time.time()
    if args.params:
        net = build()
        net.load_parameters(args.params)
    else:
        net = train(build(), args.steps, args.size, log=lambda m: print(m, flush=True))
        print(f"trained in {time.time() - start:.0f} s", flush=True)
    if args.save_params:
        net.save_parameters(args.save_params)
    images, labels = patches(args.heldout, "heldout", args.size, seed=123)
    agreement = agreement_rows(net, images, labels, calibration_patches(64, args.size),
                               args.backends, args.configs)
    speed = speed_rows(args.backends, args.configs, args.speed_model, args.speed_size,
                       args.speed_batch, args.speed_rounds) if args.speed else []
    print(format_table(agreement, speed))
    if speed:
        print(f"speed: {args.speed_model} at {args.speed_size}, batch {args.speed_batch}; other "
              f"processes used {speed[0]['other_cores']} cores while timing")
    if args.json:
        write_json(args.json, {"cpu": cpu_info(), "threads": threads, "args": vars(args),
                               "agreement": agreement, "speed": speed})
    return 0


if __name__ == "__main__":
    from resnest.gluon.utils.cli import run_cli
    run_cli(main)
