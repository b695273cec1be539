"""What MXNet AMP makes of a ResNeSt in bfloat16, and, on a CPU that runs bfloat16, how fast
each form is.

    python tools/bf16_study.py --model resnest50 --batch-sizes 1 16 --json bf16.json

Counted on any CPU (numbers of graph nodes, which do not depend on the machine): the
``amp_cast`` nodes of the converted graph, split into casts of parameters (run at every call
unless the parameters are stored in bfloat16) and casts of activations, those of the
activations that are full-size feature maps, and the oneDNN-fused convolutions whose weight
input is a cast (each of those folds BN into its weights and reorders them again at every call,
``src/operator/subgraph/mkldnn/mkldnn_conv.cc`` of MXNet 1.9.1). Timed only where oneDNN runs
bfloat16 convolutions (AVX-512): the forms below, model only, in interleaved rounds
(:func:`tools.timing.time_interleaved`), against our MXNet float32. See ``docs/bf16.md``.

=================  ===========================================================================
form               what it is
=================  ===========================================================================
mxnet-default      ``amp.convert_hybrid_block`` as MXNet defaults (parameters float32, cast in
                   the graph at every call), then oneDNN fusion: what optimize() did before
cast-once          what ``optimize(net, 'bfloat16')`` does: parameters cast once
resnest-ops        cast-once, and the split-attention block's split and weighted sum in
                   bfloat16 too (experimental: not measured, not the default)
=================  ===========================================================================
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from resnest.gluon.utils.threads import own_threads  # noqa: E402

__all__ = ["FORMS", "resnest_op_lists", "convert", "cast_counts", "weight_reorders", "main"]

FORMS = ("mxnet-default", "cast-once", "resnest-ops")
# Operators moved out of MXNet's bf16 FP32 list by 'resnest-ops': they have bf16 CPU kernels
# in MXNet 1.9.1 (plain C++, not oneDNN), and in float32 they force a cast of the whole
# split-attention feature map before the split and another after the weighted sum.
_RESNEST_BF16 = ("SliceChannel", "split", "_split_v2", "broadcast_mul")


def resnest_op_lists():
    """``(target_dtype_ops, fp32_ops)`` of the 'resnest-ops' form."""
    from mxnet.contrib.amp.lists import symbol_bf16 as lists
    target = list(lists.BF16_FUNCS) + ["broadcast_mul"]
    fp32 = [op for op in lists.FP32_FUNCS if op not in _RESNEST_BF16]
    return target, fp32


def convert(net, form, x):
    """``net`` (initialised, float32) converted to bfloat16 as ``form`` says, not fused."""
    import mxnet as mx
    from resnest.gluon.inference.mxnet import convert_low_precision
    net.hybridize()
    net(x).wait_to_read()
    if form == "mxnet-default":
        return convert_low_precision(net, "bfloat16", mx.cpu(), cast_params=False)
    if form == "cast-once":
        return convert_low_precision(net, "bfloat16", mx.cpu())
    target, fp32 = resnest_op_lists()
    return convert_low_precision(net, "bfloat16", mx.cpu(), target_dtype_ops=target,
                                 fp32_ops=fp32)


def _nodes(sym):
    # tojson() drops amp_cast nodes unless told not to.
    return json.loads(sym.tojson(remove_amp_cast=False))["nodes"]


def cast_counts(low, x):
    """Counts of the converted block ``low`` (a SymbolBlock) for inputs shaped like ``x``:
    ``{'param_casts', 'activation_casts', 'feature_map_casts', 'fused_convs',
    'fused_convs_fed_by_a_cast'}``."""
    import mxnet as mx
    inputs, sym = low._cached_graph
    nodes = _nodes(sym)
    data = {i.name for i in inputs}
    internals = sym.get_internals()
    _, shapes, _ = internals.infer_shape(**{name: x.shape for name in data})
    shape_of = dict(zip(internals.list_outputs(), shapes))
    counts = collections.Counter()
    for node in nodes:
        if node["op"] != "amp_cast":
            continue
        src = nodes[node["inputs"][0][0]]
        if src["op"] == "null" and src["name"] not in data:
            counts["param_casts"] += 1
            continue
        counts["activation_casts"] += 1
        shape = shape_of.get(node["name"] + "_output", ())
        if len(shape) == 4 and shape[2] * shape[3] > 1:
            counts["feature_map_casts"] += 1
    params = {k: v.data() for k, v in low.collect_params().items()}
    args = {k: params[k] for k in sym.list_arguments() if k in params}
    args.update({name: x for name in data})
    aux = {k: params[k] for k in sym.list_auxiliary_states()}
    fused = _nodes(sym.optimize_for("MKLDNN", args=args, aux=aux, ctx=mx.cpu()))
    for node in fused:
        if node["op"] == "_sg_mkldnn_conv":
            counts["fused_convs"] += 1
            counts["fused_convs_fed_by_a_cast"] += fused[node["inputs"][1][0]]["op"] == "amp_cast"
    return {key: int(counts[key]) for key in ("param_casts", "activation_casts",
                                              "feature_map_casts", "fused_convs",
                                              "fused_convs_fed_by_a_cast")}


def _reorder_probe(weight_source, calls=4):
    """Run a BN-folded oneDNN convolution ``calls`` times in float32, its weight a parameter
    or the output of an ``amp_cast`` (as in MXNet's default bf16 graph); oneDNN's verbose lines
    (``DNNL_VERBOSE=1``, set by the caller) go to stdout between ``=== call i`` markers."""
    import mxnet as mx
    data, weight = mx.sym.var("data"), mx.sym.var("w")
    if weight_source == "cast":
        weight = mx.sym.amp_cast(weight, dtype="float32", name="wcast")
    out = mx.sym.Convolution(data, weight, kernel=(3, 3), num_filter=16, no_bias=True,
                             name="conv")
    out = mx.sym.Activation(mx.sym.BatchNorm(out, name="bn"), act_type="relu")
    block = mx.gluon.SymbolBlock(out, [data])
    block.initialize()
    x = mx.nd.ones((1, 8, 16, 16))
    block.optimize_for(x, backend="MKLDNN", static_alloc=True, static_shape=True)
    for i in range(calls):
        print(f"=== call {i}", flush=True)
        block(x).wait_to_read()


def weight_reorders(weight_source, calls=4):
    """Per call, how many times oneDNN reordered the 16x8x3x3 weights of a BN-folded
    convolution whose weight is a parameter (``'param'``) or a cast (``'cast'``), read from
    oneDNN's verbose log of a fresh process; a list of ``calls`` counts."""
    import subprocess
    env = dict(os.environ, DNNL_VERBOSE="1", MKLDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--reorder-probe",
                          weight_source, "--calls", str(calls)], env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    counts = []
    for line in out.splitlines():
        if line.startswith("=== call"):
            counts.append(0)
        elif counts and line.startswith("dnnl_verbose,exec,cpu,reorder") and "16x8x3x3" in line:
            counts[-1] += 1
    return counts


def _build(model, x):
    import mxnet as mx
    from resnest.gluon import get_model
    net = get_model(model)
    net.initialize(mx.init.Xavier())
    net(x).wait_to_read()
    return net


def _timings(model, x, rounds):
    """Interleaved model-only timings (seconds per call) of float32 and each bf16 form."""
    from resnest.gluon.inference import optimize
    from resnest.gluon.inference.mxnet import _AsFloat32, _fuse_cpu, _hybridized

    from tools.timing import time_interleaved
    fns = {"float32": optimize(_build(model, x), "float32", backend="mxnet",
                               batch_size=x.shape[0], input_size=x.shape[-1])}
    for form in FORMS:
        low = convert(_build(model, x), form, x)
        low.hybridize()
        low(x).wait_to_read()
        fns[form] = _hybridized(_AsFloat32(_fuse_cpu(low, x)), x)
    return time_interleaved(fns, {k: x for k in fns}, rounds=rounds, shuffle=True, gap=0.1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnest50")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--reorders", action="store_true",
                   help="also count oneDNN's weight reorders per call (a float32 probe)")
    p.add_argument("--reorder-probe", choices=("param", "cast"), help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, default=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reorder_probe:
        return _reorder_probe(args.reorder_probe, args.calls) or 0
    own_threads()
    import mxnet as mx
    from resnest.gluon.inference import bfloat16_supported

    from tools.timing import cpu_info, summarize
    cpu = cpu_info()
    flags = " ".join(k for k, v in cpu["isa"].items() if v) or "none of the listed"
    x = mx.nd.zeros((1, 3, args.input_size, args.input_size))
    result = {"model": args.model, "cpu": cpu["model"], "isa": cpu["isa"], "counts": {},
              "timings": []}
    print(f"{args.model} at {args.input_size}; CPU {cpu['model']}; ISA {flags}")
    for form in FORMS:
        counts = cast_counts(convert(_build(args.model, x), form, x), x)
        result["counts"][form] = counts
        print(f"  {form:14s} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    if args.reorders:
        result["weight_reorders_per_call"] = {src: weight_reorders(src) for src in ("param",
                                                                                    "cast")}
        print("  oneDNN weight reorders per call of a BN-folded conv (float32 probe): "
              + "; ".join(f"weight a {k}: {v}" for k, v in
                          result["weight_reorders_per_call"].items()))
    if not bfloat16_supported():
        print("oneDNN cannot run bfloat16 convolutions on this CPU: nothing timed (needs "
              "AVX-512; run this on an avx512_bf16 or AMX machine).")
    else:
        for batch in args.batch_sizes:
            xb = mx.nd.random.uniform(-2, 2, shape=(batch, 3, args.input_size, args.input_size))
            times = _timings(args.model, xb, args.rounds)
            base = summarize(times["float32"], batch)
            for name, seconds in times.items():
                t = summarize(seconds, batch)
                row = dict(t.as_dict(), form=name, vs_float32=round(base.median_ms / t.median_ms,
                                                                      3))
                result["timings"].append(row)
                print(f"  batch {batch:3d} {name:14s} median {t.median_ms:9.1f} ms  "
                      f"{row['vs_float32']:.2f}x float32")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    from resnest.gluon.utils.cli import run_cli
    run_cli(main)
