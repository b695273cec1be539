"""The detection losses against GluonCV's own ``ForwardBackwardTask`` (its loss terms and the
gradients its ``backward`` gives) on a real training forward of the tiny detector, the mask
term by GluonCV's formula, and the recipe's LR by hand."""
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from resnest.gluon import get_model
from resnest.gluon.train.det_recipe import DetectionRecipe, detection_loss_terms

pytest.importorskip("gluoncv")
_LEAVES = ("cls_pred", "box_pred", "rpn_scores", "rpn_deltas")


def _batch():
    """Two scikit-image photos at 128 x 128 (normalised) with boxes, one padding row."""
    import skimage.data
    from resnest.gluon.data.transforms import normalize_chw
    import cv2
    images = [cv2.resize(getattr(skimage.data, n)(), (128, 128)) for n in ("astronaut", "coffee")]
    x = mx.nd.array(np.stack([normalize_chw(i, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
                              for i in images]))
    boxes = mx.nd.array([[[10, 5, 90, 120], [60, 60, 100, 90]], [[20, 30, 110, 100],
                                                                   [-1, -1, -1, -1]]])
    return x, boxes, mx.nd.array([[0, 1], [1, -1]])


@pytest.fixture(scope="module")
def outputs():
    net = get_model("faster_rcnn_fpn_resnest_tiny", classes=["person", "cup"])
    net.initialize(mx.init.Xavier())
    x, boxes, labels = _batch()
    mx.random.seed(3)
    with mx.autograd.record():
        out = net(x, boxes, labels)
    return out, boxes, labels, x


class _Replay(mx.gluon.HybridBlock):
    """Hands GluonCV's task our training outputs in its detector's output order."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        with self.name_scope():
            self.target_generator = nn.HybridSequential()
            self.anchor = self.params.get("anchor", shape=(1,))
        self.anchor.initialize()

    def forward(self, data, gt_box, gt_label):
        o = self.out
        return (o.cls_pred, o.box_pred, None, None, None, o.rpn_scores, o.rpn_deltas, None,
                o.cls_targets, o.box_targets, o.box_masks, None)


def _leaves(out):
    """The training outputs with their predictions as fresh leaves (gradients of our loss and
    of GluonCV's can then be compared)."""
    fields = {}
    for name, value in out._asdict().items():
        value = value.detach().copy()
        if name in _LEAVES:
            value.attach_grad()
        fields[name] = value
    return type(out)(**fields)


def test_loss_terms_and_gradients_are_gluoncvs(outputs):
    from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
    out, boxes, labels, x = outputs
    theirs = _leaves(out)
    loss = mx.gluon.loss
    task = ForwardBackwardTask(_Replay(theirs), None, loss.SigmoidBinaryCrossEntropyLoss(),
                               loss.HuberLoss(rho=1 / 9), loss.SoftmaxCrossEntropyLoss(),
                               loss.HuberLoss(rho=1.0), mix_ratio=1.0, amp_enabled=False)
    label = mx.nd.concat(boxes, labels.expand_dims(-1), dim=-1)
    metrics = task.forward_backward((x, label, theirs.rpn_cls_targets, theirs.rpn_box_targets,
                                     theirs.rpn_box_masks))
    ours = _leaves(out)
    with mx.autograd.record():
        terms = detection_loss_terms(ours)
        total = mx.nd.add_n(*terms.values())
    total.backward()
    for name, metric in zip(("rpn_cls", "rpn_box", "rcnn_cls", "rcnn_box"), metrics[:4]):
        np.testing.assert_allclose(terms[name].mean().asscalar(), metric.asscalar(), rtol=1e-6,
                                   err_msg=name)
        assert terms[name].shape == (2,)
    for name in _LEAVES:
        a, b = getattr(ours, name).grad.asnumpy(), getattr(theirs, name).grad.asnumpy()
        assert np.abs(b).sum() > 0, name
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9, err_msg=name)


def test_mask_term_is_gluoncvs_formula():
    from resnest.gluon.models.detection import MaskTrainOutputs
    rng = np.random.RandomState(0)
    pred = mx.nd.array(rng.randn(2, 3, 2, 4, 4))
    target = mx.nd.array(rng.uniform(size=(2, 3, 2, 4, 4)))
    weight = mx.nd.array(rng.randint(0, 2, size=(2, 3, 2, 4, 4)))
    base = {f: mx.nd.zeros((2, 1)) for f in MaskTrainOutputs._fields}
    base.update(rpn_cls_targets=mx.nd.ones((2, 1)), cls_targets=mx.nd.ones((2, 1)),
                rpn_scores=mx.nd.zeros((2, 1, 1)), cls_pred=mx.nd.zeros((2, 1, 3)),
                mask_pred=pred, mask_targets=target, mask_weights=weight)
    terms = detection_loss_terms(MaskTrainOutputs(**base))
    # GluonCV's train_mask_rcnn: SigmoidBCE(pred, target, weight) * target.size / weight.sum()
    z, t, w = pred.asnumpy(), target.asnumpy(), weight.asnumpy()
    bce = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))) * w
    want = bce.reshape(2, -1).mean(axis=1) * t.size / w.sum()
    np.testing.assert_allclose(terms["mask"].asnumpy(), want, rtol=1e-5)


def test_recipe_lr_and_step_loss(outputs):
    recipe = DetectionRecipe(num_epochs=3, base_lr=0.04, warmup_steps=10, decay_epochs=(2,))
    assert recipe.learning_rate(0, 100) == pytest.approx(0.04 / 3)
    assert recipe.learning_rate(10, 100) == pytest.approx(0.04)
    assert recipe.learning_rate(250, 100) == pytest.approx(0.004)
    net = get_model("faster_rcnn_fpn_resnest_tiny", classes=["person", "cup"])
    net.initialize(mx.init.Xavier())
    x, boxes, labels = _batch()
    loss_fn = recipe.step_loss(0, 0, 0)
    with mx.autograd.record():
        loss = loss_fn(net, (x, (boxes, labels), 2))
    assert loss.shape == (2,) and np.isfinite(loss.asnumpy()).all() and \
        (loss.asnumpy() > 0).all()
