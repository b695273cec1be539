"""Train a Faster R-CNN FPN (or Mask R-CNN FPN) on COCO-format data, as one process or under
``horovodrun``.

    horovodrun -np 8 python scripts/gluon/train_detection.py \
        --model faster_rcnn_fpn_resnest50_coco --pretrained-backbone \
        --train-annotations coco/annotations/instances_train2017.json \
        --train-images coco/train2017 \
        --val-annotations coco/annotations/instances_val2017.json --val-images coco/val2017 \
        --save-dir runs/frcnn50

Defaults: GluonCV's COCO recipe of the published ResNeSt detectors (SGD, LR 0.02 for 8
workers of 2 images, warm-up 500 iterations, x0.1 at epochs 20 and 24 of 26, SyncBatchNorm).
Starts: ``--pretrained-backbone`` (the backbone's ImageNet classifier), ``--backbone-params``
(a classifier checkpoint), ``--pretrained`` (the published detector; your own categories get
fresh predictors), ``--pretrained-params`` (a detection checkpoint). ``--resume`` continues
the run in ``--save-dir``; checkpoints are ``detection-<model>-<epoch>.*`` with the class
names and the evaluation size in their record.
"""
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.train import train
    from resnest.gluon.train.detection import DetectionTask, parse_detection_config
    cfg = parse_detection_config(argv)
    train(cfg, DetectionTask(cfg))
    return 0


if __name__ == "__main__":
    run_cli(main)
