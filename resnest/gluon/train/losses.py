"""Losses and targets of the recipes: label smoothing and mixup (each batch paired with its
reverse) for the classifiers; per-pixel cross-entropy with the auxiliary head for segmentation.

Mixup draws one ``lam ~ Beta(alpha, alpha)`` per batch and forms
``x = lam * x + (1 - lam) * x[::-1]``; the targets are the same mix of the two *smoothed*
one-hot targets, so label smoothing is applied inside the mixed targets.
"""
import mxnet as mx

__all__ = ["smooth_one_hot", "mixup_batch", "make_targets", "soft_cross_entropy",
           "draw_mixup_lam", "pixel_cross_entropy", "segmentation_loss"]


def smooth_one_hot(label, classes, eps, dtype="float32"):
    """One-hot targets with ``eps`` of the mass spread evenly over all ``classes``:
    ``1 - eps + eps / classes`` on the true class, ``eps / classes`` elsewhere."""
    on = 1.0 - eps + eps / classes
    off = eps / classes
    return mx.nd.one_hot(label, classes, on_value=on, off_value=off, dtype=dtype)


def mixup_batch(data, lam):
    """``lam * data + (1 - lam) * data`` reversed along the batch axis."""
    return lam * data + (1.0 - lam) * mx.nd.flip(data, axis=0)


def make_targets(data, label, classes, smoothing_eps=0.0, mixup_lam=None):
    """The (possibly mixed) inputs and the dense targets for one batch.

    Parameters
    ----------
    data : NDArray (B, 3, H, W)
    label : NDArray (B,) of class indices (float)
    classes : int
    smoothing_eps : float
        0 for plain one-hot targets.
    mixup_lam : float or None
        None: no mixup.

    Returns
    -------
    (data, targets)
        ``targets`` is ``(B, classes)``; each row sums to 1.
    """
    targets = smooth_one_hot(label, classes, smoothing_eps, dtype=data.dtype)
    if mixup_lam is None:
        return data, targets
    return mixup_batch(data, mixup_lam), mixup_batch(targets, mixup_lam)


def soft_cross_entropy(logits, targets):
    """Per-sample cross-entropy ``-sum(targets * log_softmax(logits))``, computed in float32."""
    logp = mx.nd.log_softmax(logits.astype("float32"), axis=-1)
    return -mx.nd.sum(logp * targets.astype("float32"), axis=-1)


def draw_mixup_lam(rng, alpha):
    """One mixup coefficient from ``Beta(alpha, alpha)`` drawn with ``rng`` (numpy RandomState)."""
    return float(rng.beta(alpha, alpha))



def pixel_cross_entropy(logits, target):
    """``(summed, counted)`` per image: the cross-entropy of ``logits`` (N, classes, H, W)
    summed over the labelled pixels of ``target`` (N, H, W; -1 = unlabelled, left out), and
    the number of those pixels; computed in float32."""
    logp = mx.nd.log_softmax(logits.astype("float32"), axis=1)
    labelled = (target >= 0).astype("float32")
    picked = mx.nd.pick(logp, mx.nd.maximum(target, 0), axis=1)
    return -mx.nd.sum(picked * labelled, axis=(1, 2)), mx.nd.sum(labelled, axis=(1, 2))


def segmentation_loss(outputs, target, aux_weight=0.0):
    """Per-image losses of a segmentation model's ``outputs`` (``(main,)`` or ``(main,
    aux)``) whose mean is the cross-entropy averaged over every labelled pixel of the batch,
    plus ``aux_weight`` times the same of the auxiliary output (GluonCV's
    ``MixSoftmaxCrossEntropyLoss``).

    Each image's share is its summed pixel losses times ``N / labelled pixels of the batch``,
    so that the gradient of the mean is GluonCV's: ``SoftmaxOutput`` with
    ``normalization='valid'`` divides by the labelled pixels of the batch on its device. (Its
    trainer then divides by the batch size once more; here the engine's ``trainer.update``
    divides only the batch mean, as for classification.) One difference: ``SoftmaxOutput``
    ignores the gradient it is given, so GluonCV's ``aux_weight`` scales its reported loss
    but not the auxiliary gradient (its models trained with weight 1 in effect); here the
    weight applies to both.
    """
    summed, counted = pixel_cross_entropy(outputs[0], target)
    if aux_weight and len(outputs) > 1:
        summed = summed + aux_weight * pixel_cross_entropy(outputs[1], target)[0]
    scale = summed.shape[0] / mx.nd.maximum(mx.nd.sum(counted), 1.0)
    return mx.nd.broadcast_mul(summed, scale.reshape((1,)))
