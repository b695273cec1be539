"""What every inference command asks for, typed once: the model and its weights, the engine
(:data:`~.optimize.BACKENDS`), the dtype (:data:`~.optimize.DTYPES`) and int8 calibration,
batches and decoding workers. ``verify.py`` and ``predict.py`` (and the task scripts) extend
:class:`InferenceConfig`; their command lines are built from the fields
(:mod:`resnest.gluon.utils.config`)."""
from dataclasses import dataclass
from typing import Optional

from ..utils.config import NON_NEGATIVE, POSITIVE, UNIT, at_least, check_fields, option
from .backends import AUTO, BACKENDS, CALIB_MODES, DTYPES

__all__ = ["InferenceConfig", "ClassifyInput", "SegmentInput"]


@dataclass
class InferenceConfig:
    """See a script's ``--help`` for the meanings."""

    model: str = option(None, "registered model name, e.g. resnest50", required=True)
    weights: Optional[str] = option(None, "a checkpoint or weights file (default: the "
                                    "published weights)", flags=("--resume", "--params-file"),
                                    metavar="FILE")
    batch_size: int = option(32, "per device", check=POSITIVE)
    dtype: str = option("float32", "int8 calibrates on the data itself (--calib-batches)",
                        choices=DTYPES)
    backend: str = option(AUTO, "inference engine; auto: the fastest installed one for the "
                          "dtype on this CPU, by measured facts (onnxruntime, openvino: pip "
                          "install resnest[deploy])", choices=(AUTO,) + tuple(BACKENDS))
    calib_batches: int = option(4, "int8: batches of the data, spread over it, to calibrate "
                                "on", check=POSITIVE)
    calib_mode: Optional[str] = option(None, "int8 calibration: KL-divergence thresholds or "
                                       "min/max (default: entropy for mxnet, min/max for "
                                       "onnxruntime and openvino)", choices=CALIB_MODES)
    num_workers: int = option(4, "decoding processes (0: decode in this process)",
                              flags=("-j", "--num-workers", "--num-data-workers"),
                              check=NON_NEGATIVE)

    def check(self):
        check_fields(self)


@dataclass
class ClassifyInput:
    """The crop of a classifier (default: the checkpoint's, else the published settings)."""

    crop_size: Optional[int] = option(None, "default: the weights' evaluation crop",
                                      check=at_least(32))
    crop_ratio: Optional[float] = option(None, "crop / resized short side (crops <= 320)",
                                         check=UNIT)


@dataclass
class SegmentInput:
    """How a segmentation model scores an image (the protocols of
    :mod:`resnest.gluon.models.segmentation.evaluation`): single scale (default) or GluonCV's
    multi-scale + flip, with the weights' base and crop size."""

    multi_scale: bool = option(False, "GluonCV's multi-scale + flip protocol (MultiEvalModel: "
                               "scales 0.5-1.75 of --base-size, --crop-size windows); default: "
                               "single scale, the whole image at its own size")
    base_size: Optional[int] = option(None, "multi-scale: default the weights' (published: "
                                      "520; a checkpoint: its training --base-size)",
                                      check=at_least(8))
    crop_size: Optional[int] = option(None, "multi-scale: default the weights' (published: "
                                      "480; a checkpoint: its training --crop-size)",
                                      check=at_least(8))
