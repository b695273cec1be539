"""The tables of the README and ``docs/`` that mirror code, generated from it.

    python tools/docs_tables.py          # rewrite every generated table in place
    python tools/docs_tables.py --check  # exit 1 naming the tables that differ

A generated table sits between ``<!-- table:NAME -->`` and ``<!-- end table -->`` in a markdown
file; :data:`TABLES` says how each is made. ``tests/test_tools_docs_tables.py`` fails when a
table differs from what the code says (a model added, a published figure changed).
"""
import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_BLOCK = re.compile(r"(<!-- table:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- end table -->)",
                    re.S)
_HOSTS = {"gluoncv": "GluonCV", "authors": "authors"}


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def _crop(info):
    ev = info.eval
    if info.task == "classification":
        how = "ECenterCrop (bicubic)" if ev.method == "ecenter-crop" else \
            f"resize {ev.resize}, centre crop"
        return f"{ev.crop_size}", how
    if info.task == "segmentation":
        return f"{ev.crop_size}", f"base {ev.base_size}, crop {ev.crop_size}"
    return f"{ev.short}", f"short {ev.short}, max {ev.max_size}"


def classifiers_table():
    """The published classifiers: parameters, crop, preprocessing, accuracy, hosts."""
    from resnest.gluon.pretrained import PRETRAINED
    rows = ["| model | params (M) | eval crop | preprocessing | top-1 | top-5 | weights "
            "hosted by |", "|---|---|---|---|---|---|---|"]
    for name, info in PRETRAINED.items():
        if info.task != "classification":
            continue
        crop, how = _crop(info)
        rows.append(f"| `{name}` | {info.params_m:.2f} | {crop} | {how} | "
                    f"{_fmt(info.metric('top1'))} | {_fmt(info.metric('top5'))} | "
                    f"{', '.join(_HOSTS[h] for h in info.hosts)} |")
    return "\n".join(rows) + "\n"


def task_models_table():
    """The published segmentation and detection models: their data, metrics and file."""
    from resnest.gluon.pretrained import PRETRAINED
    rows = ["| model | task | classes | evaluation | published metrics | file |",
            "|---|---|---|---|---|---|"]
    for name, info in PRETRAINED.items():
        if info.task == "classification":
            continue
        _, how = _crop(info)
        metrics = ", ".join(f"{k} {v:g}" for k, v in info.metrics)
        rows.append(f"| `{name}` | {info.task} | {info.classes} ({info.class_list}) | {how} | "
                    f"{metrics} | `{info.file_name}` |")
    return "\n".join(rows) + "\n"


def registry_table():
    """Every registered model with its task, and whether it has published weights."""
    from resnest.gluon.models import list_models, model_task
    from resnest.gluon.pretrained import PRETRAINED
    rows = ["| model | task | published weights |", "|---|---|---|"]
    for name in list_models():
        rows.append(f"| `{name}` | {model_task(name)} | {'yes' if name in PRETRAINED else '-'} |")
    return "\n".join(rows) + "\n"


TABLES = {"classifiers": classifiers_table, "task-models": task_models_table,
          "registry": registry_table}


def markdown_files():
    docs = os.path.join(REPO, "docs")
    return [os.path.join(REPO, "README.md")] + sorted(
        os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))


def render(text):
    """``text`` with every generated table made anew; raises KeyError on an unknown name."""
    return _BLOCK.sub(lambda m: m.group(1) + TABLES[m.group("name")]() + m.group(4), text)


def differing():
    """``[(file, table name)]`` of the generated tables that differ from the code."""
    out = []
    for path in markdown_files():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in _BLOCK.finditer(text):
            if m.group("body") != TABLES[m.group("name")]():
                out.append((os.path.relpath(path, REPO), m.group("name")))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if args.check:
        bad = differing()
        for path, name in bad:
            print(f"{path}: table {name} differs from the code", file=sys.stderr)
        return 1 if bad else 0
    for path in markdown_files():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print(f"rewrote the tables of {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
