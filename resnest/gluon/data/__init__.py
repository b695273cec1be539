"""Data for ResNeSt: image folders -> RecordIO, ImageNet preparation, transforms, loaders;
segmentation masks and COCO-format annotations, and the embedded data sets made from packaged
real images (digits; digits composed on photos for segmentation and detection).

Public API::

    from resnest.gluon.data import train_loader, eval_loader, eval_transform, rec_info

The loaders need MXNet; the packer does not. Names are resolved lazily so that
``im2rec.py`` (and its worker processes) start without importing MXNet.
"""
import importlib

_EXPORTS = {
    'train_loader': 'loaders', 'eval_loader': 'loaders', 'RecordSamples': 'samples',
    'FolderSamples': 'samples', 'eval_transform': 'transforms',
    'rec_info': 'validate', 'RecInfo': 'validate', 'check_records': 'validate',
    'PackOptions': 'pack', 'pack_records': 'pack', 'plan_image_folder': 'pack',
    'scan_class_folders': 'folder', 'decode_image': 'folder',
    'ImageNetPolicy': 'autoaugment', 'write_digits': 'digits',
    'collect_inputs': 'inputs', 'ImageInputs': 'inputs', 'InputItem': 'inputs',
    'write_composed': 'composed', 'SegmentationSamples': 'segmentation',
    'CocoSamples': 'coco',
    'detection_eval_transform': 'detection', 'DetectionTransform': 'detection',
    'restore_boxes': 'detection',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
