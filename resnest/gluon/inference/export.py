"""Export for deployment: MXNet symbol + params, and ONNX.

>>> export_symbol(net, "out/resnest50")          # out/resnest50-symbol.json, -0000.params
>>> net2 = load_exported("out/resnest50")
>>> export_onnx(net, "out/resnest50.onnx")       # batch dimension left dynamic

For a model that evaluates and predicts like the others, use
``optimize(net, dtype, backend="onnxruntime" | "openvino")``, which exports underneath.
"""
import contextlib
import os
import sys
import tempfile

import mxnet as mx
import numpy as np

from ..utils.errors import UserError
from .engine import require

__all__ = ["ONNX_OPSET", "TUPLE_OUTPUT_KEY", "export_symbol", "load_exported", "export_onnx",
           "exported_onnx", "tuple_output"]


def export_symbol(net, prefix, input_size=224, batch_size=1, epoch=0):
    """Write ``{prefix}-symbol.json`` and ``{prefix}-{epoch:04d}.params`` of an initialised
    ``net``; returns the two paths. The graph is traced at ``input_size`` but holds no size:
    the files reload at any input size."""
    return _export_symbol(net, prefix, input_size, batch_size, epoch)[:2]


def _export_symbol(net, prefix, input_size, batch_size, epoch=0):
    """:func:`export_symbol`, also saying whether ``net`` returns a tuple or list (a
    segmentation model's ``(main, aux)``, a backbone's maps) rather than one array."""
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    if not getattr(net, "_active", False):
        net.hybridize()
    out = net(mx.nd.zeros((batch_size, 3, input_size, input_size)))
    mx.nd.waitall()
    net.export(prefix, epoch=epoch)
    return prefix + "-symbol.json", "%s-%04d.params" % (prefix, epoch), \
        isinstance(out, (tuple, list))


def load_exported(prefix, epoch=0, ctx=None):
    """The exported model at ``prefix`` as a hybridized ``SymbolBlock`` taking ``data``."""
    symbol, params = prefix + "-symbol.json", "%s-%04d.params" % (prefix, epoch)
    for path in (symbol, params):
        if not os.path.isfile(path):
            raise UserError(f"exported model file {path} does not exist; write it with "
                            f"export_symbol(net, {prefix!r}).")
    net = mx.gluon.SymbolBlock.imports(symbol, ["data"], params, ctx=ctx or mx.cpu())
    net.hybridize(static_alloc=True)
    return net


# ONNX metadata key: "1" when the exported block returns a tuple or list, so that the engines
# give back the same structure (a 1-tuple stays a tuple) as the MXNet block.
TUPLE_OUTPUT_KEY = "resnest.tuple_output"

# MXNet 1.9's converters stop at opset 13, but it stamps the model with the newest opset of the
# installed onnx package (19 for onnx 1.14), whose Split needs an attribute MXNet does not write:
# onnxruntime then refuses the file. Exporting as opset 13 makes the stamp match the nodes.
ONNX_OPSET = 13


@contextlib.contextmanager
def _onnx_opset(version):
    import onnx.defs
    original = onnx.defs.onnx_opset_version
    onnx.defs.onnx_opset_version = lambda: min(version, original())
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = original


def _resize_like(node, **kwargs):
    """ONNX ``Resize`` for MXNet's ``BilinearResize2D`` in mode 'like' (to the height and
    width of its second input, at run time), which MXNet 1.9's exporter refuses; every other
    mode goes to MXNet's own converter."""
    from mxnet.onnx.mx2onnx._op_translations import _op_translations_opset12 as ops
    from onnx.helper import make_node
    name, inputs, attrs = ops.get_inputs(node, kwargs)
    if attrs.get("mode", "size") != "like":
        return ops.convert_contrib_BilinearResize2D(node, **kwargs)
    if attrs.get("align_corners", "True") not in ("True", "1", "true"):
        raise UserError(f"{name}: BilinearResize2D without align_corners does not export.")
    init = kwargs["initializer"]
    for suffix, value in (("_0", 0), ("_2", 2), ("_4", 4)):
        ops.create_tensor([value], name + suffix, init)
    ops.create_tensor([], name + "_roi", init, dtype="float32")
    ops.create_tensor([], name + "_scales", init, dtype="float32")
    return [
        make_node("Shape", [inputs[0]], [name + "_data_shape"]),
        make_node("Slice", [name + "_data_shape", name + "_0", name + "_2"], [name + "_nc"]),
        make_node("Shape", [inputs[1]], [name + "_like_shape"]),
        make_node("Slice", [name + "_like_shape", name + "_2", name + "_4"], [name + "_hw"]),
        make_node("Concat", [name + "_nc", name + "_hw"], [name + "_sizes"], axis=0),
        make_node("Resize", [inputs[0], name + "_roi", name + "_scales", name + "_sizes"],
                  [name], mode="linear", coordinate_transformation_mode="align_corners",
                  name=name),
    ]


@contextlib.contextmanager
def _onnx_converters(version):
    """MXNet's exporter with :func:`_resize_like` registered for opset ``version`` (and put
    back as it was afterwards)."""
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    table = MXNetGraph.registry_.setdefault(version, {})
    op = "_contrib_BilinearResize2D"
    previous = table.get(op)
    table[op] = _resize_like
    try:
        yield
    finally:
        if previous is None:
            del table[op]
        else:
            table[op] = previous


def _onnx_compat():
    """Give onnx >= 1.16 back the ``onnx.mapping`` module that MXNet 1.9's exporter imports.

    onnx 1.16 removed it (onnxruntime's quantization tools need onnx >= 1.16); MXNet only
    reads its two dtype tables, rebuilt here from ``onnx.helper``'s conversion functions.
    Older onnx keeps its own module. Returns the module.
    """
    import onnx
    try:
        from onnx import mapping
        return mapping
    except ImportError:
        pass
    import types
    from onnx import helper
    to_np, to_tensor = {}, {}
    for tensor_type in onnx.TensorProto.DataType.values():
        try:
            np_type = helper.tensor_dtype_to_np_dtype(tensor_type)
        except (KeyError, ValueError, TypeError):
            continue                                    # UNDEFINED
        to_np[tensor_type] = np_type
        if np_type.type.__module__ == "numpy":          # not ml_dtypes' bfloat16, float8, int4
            to_tensor.setdefault(np_type, tensor_type)
    mapping = types.ModuleType("onnx.mapping", "dtype tables for MXNet's ONNX exporter")
    mapping.TENSOR_TYPE_TO_NP_TYPE, mapping.NP_TYPE_TO_TENSOR_TYPE = to_np, to_tensor
    sys.modules["onnx.mapping"] = onnx.mapping = mapping
    return mapping


def export_onnx(net, path, input_size=224, batch_size=1, dynamic_batch=True,
                dynamic_size=False):
    """Write ``net`` as an ONNX model (opset :data:`ONNX_OPSET`) to ``path``; returns ``path``.

    With ``dynamic_batch`` the batch dimension is symbolic, so any batch size runs; with
    ``dynamic_size`` height and width are too (a segmentation model, which scores an image at
    its own size). The graph is traced at ``input_size``. Needs the ``onnx`` package
    (``pip install resnest[deploy]``).
    """
    require("onnx", "ONNX export")
    with tempfile.TemporaryDirectory() as tmp:
        symbol, params, tuple_output = _export_symbol(net, os.path.join(tmp, "net"),
                                                      input_size, batch_size)
        shape = (batch_size, 3, input_size, input_size)
        kwargs = {}
        if dynamic_batch or dynamic_size:
            side = None if dynamic_size else input_size
            kwargs = dict(dynamic=True, dynamic_input_shapes=[
                (None if dynamic_batch else batch_size, 3, side, side)])
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        _onnx_compat()
        with _onnx_opset(ONNX_OPSET), _onnx_converters(ONNX_OPSET):
            mx.onnx.export_model(symbol, params, in_shapes=[shape], in_types=[np.float32],
                                 onnx_file_path=path, **kwargs)
    _finish_onnx(path, tuple_output)
    return path


def _finish_onnx(path, tuple_output):
    # MXNet lists every weight as a graph input too, which forbids onnxruntime to fold BN into
    # the convolutions; inputs that are initializers are dropped so that weights are constants.
    # MXNet also leaves Conv, Split, pooling ... nodes unnamed: each gets the name of its first
    # output (MXNet's layer name), so int8 exclusion lists and profiles can address every node.
    import onnx
    model = onnx.load(path)
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for node in model.graph.node:
        if not node.name:
            node.name = node.output[0]
    if tuple_output:
        onnx.helper.set_model_props(model, {TUPLE_OUTPUT_KEY: "1"})
    onnx.save(model, path)


def tuple_output(path):
    """Whether the model exported to ``path`` returned a tuple or list in MXNet (recorded in
    the file's metadata by :func:`export_onnx`)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return any(p.key == TUPLE_OUTPUT_KEY and p.value == "1" for p in model.metadata_props)


class exported_onnx:
    """Context manager: ``net`` exported to ONNX (dynamic batch; with ``dynamic_size`` any
    height and width) in ``workdir``, or in a temporary folder removed on exit; yields
    ``(folder, path)``."""

    def __init__(self, net, input_size, batch_size, workdir=None, name="model",
                 dynamic_size=False):
        self.args = (net, input_size, batch_size, dynamic_size)
        self.workdir, self.name, self._tmp = workdir, name, None

    def __enter__(self):
        require("onnx", "ONNX export")
        if self.workdir:
            os.makedirs(self.workdir, exist_ok=True)
            folder = self.workdir
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="resnest-onnx-")
            folder = self._tmp.name
        net, input_size, batch_size, dynamic_size = self.args
        path = export_onnx(net, os.path.join(folder, self.name + ".onnx"), input_size=input_size,
                           batch_size=batch_size, dynamic_size=dynamic_size)
        return folder, path

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()
        return False
