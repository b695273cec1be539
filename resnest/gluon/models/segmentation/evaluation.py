"""How the published segmentation models are evaluated: the image as the model's input, and the
two protocols of GluonCV 0.10.5 that turn it into per-class scores at the image's size.

>>> settings = segmentation_eval("deeplab_resnest50_ade")       # resnest.gluon.pretrained
>>> x = normalize(rgb, settings)                                 # (1, 3, H, W)
>>> logits = single_scale(net, x)                                # (1, 150, H, W)
>>> scores = multi_scale(net, x, settings)                       # (1, 150, H, W)
>>> labels = scores.argmax(axis=1)                               # class 0 = ADE20K label 1

The settings (base and crop size, scales, flip, window stride, mean and std) come from the one
table, :class:`~resnest.gluon.pretrained.SegmentationEval`, whose docstring says where each
protocol comes from. Counting pixel accuracy and mIoU over a data set is not done here.
"""
import math

import mxnet as mx
import numpy as np

from ...pretrained import SegmentationEval
from ...utils.errors import UserError

__all__ = ["normalize", "main_output", "single_scale", "multi_scale", "scaled_size",
           "pad_image", "window_starts"]


def normalize(image, settings=None, dtype="float32", ctx=None):
    """An RGB uint8 image ``(H, W, 3)`` as the model's input ``(1, 3, H, W)``: divided by 255,
    minus ``settings.mean``, over ``settings.std`` (GluonCV's ``ToTensor`` + ``Normalize``)."""
    settings = settings or SegmentationEval()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"an image must be RGB (height, width, 3), not of shape {image.shape}.")
    x = image.astype(np.float64).transpose(2, 0, 1) / 255.0
    x = (x - np.reshape(settings.mean, (3, 1, 1))) / np.reshape(settings.std, (3, 1, 1))
    return mx.nd.array(x[None], ctx=ctx or mx.cpu(), dtype=dtype)


def main_output(outputs):
    """The main scores of a model's outputs: the first of ``(main, aux)`` / ``(main,)``."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def _batch(image):
    if image.ndim == 3:
        image = image.expand_dims(0)
    if image.ndim != 4 or image.shape[1] != 3:
        raise UserError(f"the model takes (N, 3, H, W) images, not {tuple(image.shape)}.")
    return image


def single_scale(net, image):
    """Logits ``(N, classes, H, W)`` of normalised images at their own size, no resize,
    padding or crop: GluonCV's test.py single-scale evaluation (``model.predict``)."""
    return main_output(net(_batch(image)))


def scaled_size(height, width, long_size):
    """``(height, width)`` with the longer side (the width on a tie) set to ``long_size`` and
    the other rounded to keep the aspect ratio, GluonCV's way."""
    if height > width:
        return long_size, int(1.0 * width * long_size / height + 0.5)
    return int(1.0 * height * long_size / width + 0.5), long_size


def pad_image(image, size, settings):
    """``image`` (N, 3, H, W) padded at the bottom and right to at least ``size`` x ``size``
    with the normalised black pixel ``-mean / std``."""
    n, c, h, w = image.shape
    if h >= size and w >= size:
        return image
    fill = -np.asarray(settings.mean) / np.asarray(settings.std)
    out = mx.nd.array(np.broadcast_to(fill.reshape(1, c, 1, 1), (n, c, max(h, size),
                                                                 max(w, size))),
                      ctx=image.context, dtype=image.dtype)
    out[:, :, :h, :w] = image
    return out


def window_starts(length, crop_size, stride):
    """Start offsets of GluonCV's sliding windows along a side of ``length`` >= ``crop_size``:
    every ``stride`` from 0; the last window may run past the end (it is cut there)."""
    return [i * stride for i in range(int(math.ceil(1.0 * (length - crop_size) / stride)) + 1)]


def _flip_scores(net, image, flip):
    """``exp`` of the logits of ``image``, plus those of its mirror image mirrored back when
    ``flip`` (summed before the exp, as GluonCV's ``flip_inference``)."""
    if not flip:
        return main_output(net(image)).exp()
    both = main_output(net(mx.nd.concat(image, image.flip(axis=3), dim=0)))
    return (both[:1] + both[1:].flip(axis=3)).exp()


def _sliding(net, image, settings):
    """Scores of an image (1, 3, H, W) larger than the crop: padded to the crop where
    shorter, windows every ``int(crop * stride_rate)``, averaged where they overlap."""
    crop = settings.crop_size
    stride = int(crop * settings.stride_rate)
    padded = pad_image(image, crop, settings)
    _, _, ph, pw = padded.shape
    scores = count = None
    for h0 in window_starts(ph, crop, stride):
        for w0 in window_starts(pw, crop, stride):
            h1, w1 = min(h0 + crop, ph), min(w0 + crop, pw)
            window = pad_image(padded[:, :, h0:h1, w0:w1], crop, settings)
            out = _flip_scores(net, window, settings.flip)[:, :, :h1 - h0, :w1 - w0]
            if scores is None:
                scores = mx.nd.zeros((1, out.shape[1], ph, pw), image.context, image.dtype)
                count = mx.nd.zeros((1, 1, ph, pw), image.context, image.dtype)
            scores[:, :, h0:h1, w0:w1] += out
            count[:, :, h0:h1, w0:w1] += 1
    return mx.nd.broadcast_div(scores, count)


def multi_scale(net, image, settings=None):
    """GluonCV's multi-scale + flip scores ``(1, classes, H, W)`` of one normalised image
    ``(1, 3, H, W)`` (``MultiEvalModel``; the protocol of the published figures).

    For each scale of ``settings`` the image is resized (bilinear, corners aligned) so that
    its long side is ``ceil(base_size * scale)``, scored whole (padded to the crop) or by
    sliding windows, cut back to the resized size, resized to the image's size, and the
    scores of all scales are summed. Scores are ``exp`` of logits (of the window and its
    mirror image summed), not probabilities: only their argmax is meant to be used.
    """
    settings = settings or SegmentationEval()
    image = _batch(image)
    if image.shape[0] != 1:
        raise UserError(f"multi-scale evaluation takes one image at a time, not a batch of "
                        f"{image.shape[0]}.")
    _, _, h, w = image.shape
    total = None
    for scale in settings.scales:
        long_size = int(math.ceil(settings.base_size * scale))
        height, width = scaled_size(h, w, long_size)
        resized = mx.nd.contrib.BilinearResize2D(image, height=height, width=width)
        if long_size <= settings.crop_size:
            window = pad_image(resized, settings.crop_size, settings)
            scores = _flip_scores(net, window, settings.flip)
        else:
            scores = _sliding(net, resized, settings)
        scores = mx.nd.contrib.BilinearResize2D(scores[:, :, :height, :width], height=h,
                                                width=w)
        total = scores if total is None else total + scores
    return total
