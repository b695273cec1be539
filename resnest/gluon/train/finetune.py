"""Starting from trained weights: the published ones or any ``.params`` of the architecture.

Every parameter whose name and shape match is loaded; the classifier (``fc.*``) may differ
(another class count) and is then left to its fresh initialisation. Anything else that does
not match means the file holds another architecture, which is refused. The classifier can
learn faster (``--classifier-lr-mult``) or alone (``--freeze-backbone``: every other parameter
gets no gradient, and BN uses its stored statistics).
"""
from ..utils.errors import UserError
from ..store import read_params

__all__ = ["load_matching", "classifier_params", "set_classifier_lr_mult", "freeze_backbone"]

CLASSIFIER = "fc."


def load_matching(net, path, ctx, model, new_classifier=False):
    """Load the parameters of ``path`` whose names and shapes match ``net``'s; returns
    ``(loaded, reinitialised)`` name lists. With ``new_classifier`` (the classes differ, even
    if their number does not) the classifier keeps its fresh initialisation.

    Raises
    ------
    UserError
        The file is unreadable, or a parameter outside the classifier is missing or of
        another shape (the file holds another architecture's weights).
    """
    arrays = read_params(path)
    params = net._collect_params_with_prefix()
    loaded, fresh, wrong = [], [], []
    for name, param in params.items():
        if new_classifier and name.startswith(CLASSIFIER):
            fresh.append(name)
        elif name in arrays and tuple(arrays[name].shape) == tuple(param.shape):
            param.set_data(arrays[name].as_in_context(ctx))
            loaded.append(name)
        elif name.startswith(CLASSIFIER):
            fresh.append(name)
        else:
            wrong.append(name)
    if wrong:
        got = arrays.get(wrong[0])
        what = f"shape {tuple(got.shape)} in the file" if got is not None else "not in the file"
        raise UserError(f"{path} does not hold {model} weights: {len(wrong)} parameters do not "
                        f"match (e.g. {wrong[0]}: {what}, {tuple(params[wrong[0]].shape)} in "
                        "the model); give the weights of the same architecture.")
    return loaded, fresh


def classifier_params(net):
    """The classifier's parameters (``fc.*``) of a model."""
    return [p for name, p in net._collect_params_with_prefix().items()
            if name.startswith(CLASSIFIER)]


def set_classifier_lr_mult(net, mult):
    """The classifier learns ``mult`` times faster than the rest."""
    for param in classifier_params(net):
        param.lr_mult = float(mult)


def freeze_backbone(net):
    """No gradient for anything but the classifier; returns the number of frozen arrays."""
    head = {id(p) for p in classifier_params(net)}
    frozen = 0
    for param in net.collect_params().values():
        if id(param) not in head and param.grad_req != "null":
            param.grad_req = "null"
            frozen += 1
    return frozen
