"""The PyTorch side of the conversion checks: runs in the second virtual environment
(``.venv-torch``: torch, timm, safetensors; ``make setup`` builds it), never in the project's.

    .venv-torch/bin/python tools/torch_side.py jobs.json

``jobs.json`` holds ``{"jobs": [...]}``; each job names a model, ``{"impl": "timm" | "authors",
"model": NAME or null, "build": {...}, "classes": N}`` (``model`` a timm model name or a
function of the authors' ``resnest.torch``; without it ``build`` holds the keyword arguments
of their ``ResNet`` class, e.g. a narrow test network), and then does any of:

- ``"make": PATH``: give the model deterministic weights (``torch.manual_seed(seed)``, timm's or
  the authors' own initialisation, then every BN weight, bias and running statistic drawn
  uniformly so that no BN is an identity) and save its state_dict with torch itself:
  ``torch.save`` for ``.pth``, ``safetensors.torch.save_file`` for ``.safetensors``;
- ``"load": PATH``: load a file the way each project does (timm: ``timm.models.load_checkpoint
  (strict=True)``; the authors: ``torch.load`` + ``load_state_dict(strict=True)``, or
  ``safetensors.torch.load_file``);
- ``"inputs": NPZ, "logits": NPZ``: the model's logits for ``x`` of the inputs, in float64 and
  float32 (``logits64``, ``logits32``), in eval mode;
- ``"names": JSON``: the state_dict's names and shapes.

Jobs without a model test the file formats: ``{"export": NPZ, "pth": PATH, "legacy": PATH,
"safetensors": PATH, "metadata": {...}}`` saves the arrays of NPZ with torch (zip format,
legacy format, safetensors with the metadata); ``{"import": PATH, "npz": OUT, "json": OUT}``
reads a file with torch (``torch.load(weights_only=True)`` or ``safetensors.torch``) and writes
its arrays (a state_dict, or the one under ``state_dict`` / ``model``) and its other entries.

The authors' torch code is the unpacked resnest 0.0.5 wheel (``.venv/reference/resnest/torch``,
or ``$RESNEST_AUTHORS_DIR/resnest/torch``), imported as ``resnest_authors_torch``.
"""
import glob
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_KEEP = []


def _torchvision_without_ops():
    """timm imports torchvision; the torchvision wheel of the package index is built against
    torch's CUDA build and its C++ operators do not load beside torch's CPU build, after which
    ``import torchvision`` fails on registering the schema of ``torchvision::nms``. Declare the
    two schemas it needs (none of its C++ operators is used here) when its library does not
    load."""
    import torch
    spec = importlib.util.find_spec("torchvision")
    libs = glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so")) if spec else []
    try:
        if libs:
            torch.ops.load_library(libs[0])
            return
    except OSError:
        pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)


def authors_torch():
    """The authors' ``resnest.torch`` package, imported as ``resnest_authors_torch``."""
    if "resnest_authors_torch" in sys.modules:
        return sys.modules["resnest_authors_torch"]
    root = os.environ.get("RESNEST_AUTHORS_DIR", os.path.join(HERE, "..", ".venv", "reference"))
    folder = os.path.join(os.path.abspath(root), "resnest", "torch")
    spec = importlib.util.spec_from_file_location(
        "resnest_authors_torch", os.path.join(folder, "__init__.py"),
        submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules["resnest_authors_torch"] = module
    spec.loader.exec_module(module)
    return module


def build(job):
    """The job's model (not yet with deterministic weights)."""
    classes = job.get("classes", 1000)
    kwargs = dict(job.get("build") or {})
    if job["impl"] == "timm":
        import timm
        if job.get("model"):
            return timm.create_model(job["model"], num_classes=classes, **kwargs)
        from timm.models.resnest import ResNestBottleneck
        from timm.models.resnet import ResNet
        return ResNet(block=ResNestBottleneck, num_classes=classes, **kwargs)
    authors = authors_torch()
    if job.get("model"):
        return getattr(authors, job["model"])(num_classes=classes, **kwargs)
    from resnest_authors_torch.resnet import Bottleneck, ResNet
    return ResNet(Bottleneck, num_classes=classes, **kwargs)


def randomise(model, seed):
    import torch
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():       # gentle: 269 layers deep, logits stay of order 1-100
                m.weight.uniform_(0.2, 0.6)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def save(model, path):
    import torch
    state = model.state_dict()
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)


def load(job, model, path):
    import torch
    if job["impl"] == "timm":
        from timm.models import load_checkpoint
        load_checkpoint(model, path, strict=True)
        return
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    model.load_state_dict(state, strict=True)


def logits(model, inputs, out):
    import numpy as np
    import torch
    x = np.load(inputs)["x"]
    model.eval()
    result = {}
    with torch.no_grad():
        for dtype, key in ((torch.float64, "logits64"), (torch.float32, "logits32")):
            net = model.to(dtype)
            result[key] = net(torch.from_numpy(x).to(dtype)).double().numpy()
    model.float()
    np.savez(out, **result)


def export(job):
    import numpy as np
    import torch
    arrays = {k: torch.from_numpy(v) for k, v in np.load(job["export"]).items()}
    for k in job.get("bf16", []):
        arrays[k] = arrays[k].to(torch.bfloat16)
    views = dict(arrays)           # .pth only (safetensors refuses shared storage)
    for k in job.get("views", []):     # views share their base's storage: offsets, strides
        views[k + ".T"], views[k + ".row1"] = arrays[k].t(), arrays[k][1]
    if job.get("pth"):
        torch.save(views, job["pth"])
    if job.get("legacy"):
        torch.save(views, job["legacy"], _use_new_zipfile_serialization=False)
    if job.get("safetensors"):
        from safetensors.torch import save_file
        save_file(arrays, job["safetensors"], metadata=job.get("metadata"))


def import_file(job):
    import numpy as np
    import torch
    path = job["import"]
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, "pt") as f:
            arrays = {k: f.get_tensor(k) for k in f.keys()}
            other = f.metadata() or {}
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)),
                     None)
        arrays = inner if inner is not None else obj
        other = {k: v for k, v in obj.items() if not isinstance(v, (dict, torch.Tensor))}
    np.savez(job["npz"], **{k: v.numpy() for k, v in arrays.items()})
    with open(job["json"], "w") as f:
        json.dump(other, f)


def snippet(job):
    """Run a Python snippet (the README's lines) with ``image`` = the first input as a torch
    tensor; record what it printed and its ``names``."""
    import contextlib
    import io
    import numpy as np
    import torch
    scope = {"image": torch.from_numpy(np.load(job["inputs"])["x"][:1]).float()}
    printed = io.StringIO()
    with open(job["snippet"]) as f, contextlib.redirect_stdout(printed):
        exec(compile(f.read(), job["snippet"], "exec"), scope)
    with open(job["out"], "w") as f:
        json.dump({"printed": printed.getvalue(), "names": scope.get("names")}, f)


def run(job):
    import torch
    if "snippet" in job:
        return snippet(job)
    if "export" in job:
        return export(job)
    if "import" in job:
        return import_file(job)
    torch.manual_seed(job.get("seed", 0))
    model = build(job)
    if job.get("make"):
        randomise(model, job.get("seed", 0))
        save(model, job["make"])
    if job.get("load"):
        load(job, model, job["load"])
    if job.get("names"):
        with open(job["names"], "w") as f:
            json.dump({k: list(v.shape) for k, v in model.state_dict().items()}, f)
    if job.get("logits"):
        logits(model, job["inputs"], job["logits"])


def main(argv):
    import torch
    # One thread by default: beside other work on 2 cores, torch's spinning threads made a
    # resnest269e forward 10x slower in CPU time (measured 5.8 s against 0.44 s).
    torch.set_num_threads(int(os.environ.get("RESNEST_TORCH_THREADS", "1")))
    _torchvision_without_ops()
    if argv == ["--check"]:                # make setup: everything imports
        import safetensors
        import timm
        authors_torch()
        print(f"torch {torch.__version__}, timm {timm.__version__}, safetensors "
              f"{safetensors.__version__}, the authors' resnest.torch")
        return 0
    with open(argv[0]) as f:
        jobs = json.load(f)["jobs"]
    for job in jobs:
        run(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
