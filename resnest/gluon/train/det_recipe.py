"""The detection recipe of GluonCV's ``train_faster_rcnn.py`` / ``train_mask_rcnn.py`` as plain
values: its learning-rate schedule and its losses, per image.

Losses of one image, GluonCV's ``ForwardBackwardTask`` (``rcnn/*/data_parallel.py``), the
normalisers counted over the rank's whole batch as there:

- RPN: sigmoid cross-entropy of the sampled anchors and smooth-L1 (``rho = 1/9``) of the
  positives' deltas, each the per-image mean times ``anchors x images / sampled anchors``;
- R-CNN: softmax cross-entropy of the sampled regions and smooth-L1 (``rho = 1``) of the
  positives' deltas of their own class, normalised by the sampled regions likewise;
- Mask R-CNN: sigmoid cross-entropy of the positives' masks of their own class, normalised by
  the mask weights.

Their sum is the image's loss; the engine's update divides the summed gradient by the images
of the step, as GluonCV's ``trainer.step(batch_size)`` does.
"""
from dataclasses import dataclass
from typing import Tuple

import mxnet as mx

from .schedule import step_learning_rate

__all__ = ["DetectionRecipe", "detection_loss_terms"]


def _normalised(per_image, total, count):
    return per_image * (float(total) / mx.nd.maximum(count, 1))


def detection_loss_terms(out, rpn_rho=1.0 / 9, rcnn_rho=1.0):
    """``{'rpn_cls', 'rpn_box', 'rcnn_cls', 'rcnn_box'[, 'mask']}`` per image ``(B,)`` of a
    training forward's outputs (:class:`~resnest.gluon.models.detection.TrainOutputs` or
    :class:`~resnest.gluon.models.detection.MaskTrainOutputs`)."""
    loss = mx.gluon.loss
    rpn_t = out.rpn_cls_targets
    sampled = (rpn_t >= 0).sum()
    terms = {
        "rpn_cls": _normalised(loss.SigmoidBinaryCrossEntropyLoss()(
            out.rpn_scores.squeeze(axis=-1), rpn_t, rpn_t >= 0), rpn_t.size, sampled),
        "rpn_box": _normalised(loss.HuberLoss(rho=rpn_rho)(
            out.rpn_deltas, out.rpn_box_targets, out.rpn_box_masks), out.rpn_deltas.size,
            sampled),
    }
    cls_t = out.cls_targets
    regions = (cls_t >= 0).sum()
    terms["rcnn_cls"] = _normalised(loss.SoftmaxCrossEntropyLoss()(
        out.cls_pred, cls_t, cls_t.expand_dims(-1) >= 0), cls_t.size, regions)
    terms["rcnn_box"] = _normalised(loss.HuberLoss(rho=rcnn_rho)(
        out.box_pred, out.box_targets, out.box_masks), out.box_pred.size, regions)
    if hasattr(out, "mask_pred"):
        terms["mask"] = loss.SigmoidBinaryCrossEntropyLoss()(
            out.mask_pred, out.mask_targets, out.mask_weights) * (
                float(out.mask_targets.size) / mx.nd.maximum(out.mask_weights.sum(), 1))
    return terms


@dataclass
class DetectionRecipe:
    """What :func:`~.engine.train_epoch` asks a recipe, for detection."""

    num_epochs: int
    base_lr: float                              # global LR (per-worker LR x workers)
    warmup_steps: int = 500
    warmup_factor: float = 1.0 / 3
    decay_epochs: Tuple[int, ...] = (20, 24)
    decay: float = 0.1
    masks: bool = False                         # Mask R-CNN: the batch carries masks
    rpn_rho: float = 1.0 / 9
    rcnn_rho: float = 1.0
    seed: int = 0
    log_interval: int = 50

    def begin_epoch(self, net, epoch):
        """Nothing changes per epoch but the LR (see :meth:`learning_rate`)."""

    def learning_rate(self, step, steps_per_epoch):
        """GluonCV's warm-up and step decay for the global update number ``step``."""
        return step_learning_rate(step, steps_per_epoch, self.base_lr, self.warmup_steps,
                                  self.warmup_factor, self.decay_epochs, self.decay)

    def step_loss(self, rank, epoch, step):
        """The loss of one step: batches are ``(images, (boxes, labels[, masks]), valid)``;
        the per-image sum of :func:`detection_loss_terms` (the sampling of anchors and
        regions draws from MXNet's generator, which the engine seeds per step)."""
        def loss(net, batch):
            data, targets = batch[0], batch[1]
            out = net(data, *targets[:3 if self.masks else 2])
            terms = detection_loss_terms(out, self.rpn_rho, self.rcnn_rho)
            return mx.nd.add_n(*terms.values())
        return loss
