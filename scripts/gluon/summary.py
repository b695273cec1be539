"""Build every registered model and print a table: parameters, GMACs, one forward pass.

    python scripts/gluon/summary.py [--input-size 224] [--pattern 'resnest*'] [--json FILE]
"""
import argparse
import time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--pattern", default="*", help="shell pattern of model names")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--verbose", action="store_true", help="show MXNet's native log lines")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mxnet as mx
    from resnest.gluon import PRETRAINED, list_models, get_model
    from resnest.gluon.utils.errors import UserError
    from resnest.gluon.utils.io import write_json
    from resnest.gluon.flops import count_macs, count_params

    names = list_models(args.pattern, task="classification")
    if not names:
        raise UserError(f"no model matches {args.pattern!r}; known: {', '.join(list_models())}.")
    size = args.input_size
    print(f"{'model':26s} {'params (M)':>10s} {'GMACs':>7s} {'top-1':>6s} "
          f"{'forward (ms)':>12s}  output")
    rows = []
    for name in names:
        net = get_model(name)
        net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True, static_shape=True)
        x = mx.nd.random.uniform(shape=(1, 3, size, size))
        net(x).wait_to_read()                              # warm-up: traces the graph
        start = time.perf_counter()
        out = net(x)
        out.wait_to_read()
        ms = (time.perf_counter() - start) * 1e3
        row = dict(model=name, params_m=count_params(net) / 1e6,
                   gmacs=count_macs(net, size) / 1e9, forward_ms=ms, output=list(out.shape),
                   top1=PRETRAINED[name].metric("top1") if name in PRETRAINED else None)
        rows.append(row)
        top1 = f"{row['top1']:.2f}" if row["top1"] else "-"
        print(f"{name:26s} {row['params_m']:10.2f} {row['gmacs']:7.2f} {top1:>6s} "
              f"{ms:12.1f}  {tuple(out.shape)}", flush=True)
    if args.json:
        write_json(args.json, dict(input_size=size, models=rows))
    return 0


if __name__ == "__main__":
    from resnest.gluon.utils.cli import run_cli
    run_cli(main)
