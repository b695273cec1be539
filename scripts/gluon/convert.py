"""Convert ResNeSt weights between our Gluon layout and timm, the authors' PyTorch code,
Detectron2 and MMDetection, in .params, .pth or .safetensors.

    python scripts/gluon/convert.py runs/imagenet-resnest50-269.params model.safetensors --to timm
    python scripts/gluon/convert.py resnest50d.pth resnest50.params --to gluon
    python scripts/gluon/convert.py resnest50.params backbone.pth --to detectron2

The source's layout and format are read from its content; the target's format is DST's
extension. Every array must fit one of our models (``--model`` names it; by default the model
the arrays fit); nothing is written otherwise. A checkpoint's class names go along: the JSON
beside a .params, ``__metadata__`` of a .safetensors, a ``class_names`` key beside
``state_dict`` in a .pth.
"""
import argparse

from resnest.gluon.utils.cli import run_cli


def parse_args(argv):
    from resnest.gluon.convert import TARGETS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", metavar="SRC", help="weights file (.params, .pth, .safetensors)")
    p.add_argument("dst", metavar="DST", help="file to write; its extension sets the format")
    p.add_argument("--to", required=True, choices=TARGETS, help="layout of DST")
    p.add_argument("--model", help="our model the weights belong to (default: the one they fit)")
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from resnest.gluon.convert import LAYOUTS, convert_file
    done = convert_file(args.src, args.dst, args.to, model=args.model, force=args.force)
    title = LAYOUTS[done["source"]].title if done["source"] in LAYOUTS else "our Gluon"
    print(f"{args.src} ({title} names, {done['model']}) -> {args.dst}: {done['arrays']} arrays "
          f"in the {args.to} layout")
    if done["dropped"]:
        print(f"left out: {len(done['dropped'])} arrays the {args.to} layout has no place for "
              f"({', '.join(sorted({n.rsplit('.', 1)[0] for n in done['dropped']}))})")
    if done["same_arrays"]:
        print(f"note: {', '.join(done['same_arrays'])} hold the very same arrays (only the avd "
              f"pool's position differs); pass --model if it is one of them")
    names = done["class_names"]
    print(f"class names: {len(names)} kept" if names else "class names: none in the source")
    return 0


if __name__ == "__main__":
    run_cli(main)
