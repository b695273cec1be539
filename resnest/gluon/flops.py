"""Model size: trainable parameters and multiply-accumulates of one forward pass."""
import json

import mxnet as mx

__all__ = ["count_params", "count_macs"]


def count_params(net):
    """Trainable parameters of an initialised ``net`` (running BN statistics excluded)."""
    total = 0
    for param in net.collect_params().values():
        if param.grad_req != "null":
            size = 1
            for dim in param.shape:
                size *= dim
            total += size
    return total


def count_macs(net, input_size=224, in_channels=3):
    """Multiply-accumulates of one image through the convolutions and dense layers of ``net``.

    FLOPs are usually quoted as 2 x MACs (ResNeSt-50 at 224: 5.4 GMACs, 10.8 GFLOPs). The count
    is read from the traced symbol with inferred shapes, so it holds for any input size; a
    model with several outputs (a segmentation model's auxiliary head) counts all of them.
    """
    data = mx.sym.var("data")
    out = net(data)
    if isinstance(out, (list, tuple)):           # a segmentation model's outputs: all of them
        out = mx.sym.Group(list(out))
    internals = out.get_internals()
    _, out_shapes, _ = internals.infer_shape_partial(data=(1, in_channels, input_size, input_size))
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(internals.tojson())["nodes"]
    total = 0
    for node in nodes:
        op = node["op"]
        if op not in ("Convolution", "FullyConnected"):
            continue
        out = shapes[node["name"] + "_output"]
        weight = shapes[nodes[node["inputs"][1][0]]["name"]]
        if op == "Convolution":
            # weight (out, in/groups, kh, kw): each output element costs in/groups*kh*kw MACs.
            per_out = 1
            for dim in weight[1:]:
                per_out *= dim
            elems = 1
            for dim in out[1:]:
                elems *= dim
            total += elems * per_out
        else:
            total += weight[0] * weight[1]
    return total
