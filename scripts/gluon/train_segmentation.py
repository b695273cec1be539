"""Train a semantic segmentation model (DeepLabV3 / FCN on ResNeSt), as one process or under
``horovodrun``: GluonCV's recipe (poly LR, auxiliary loss, random scale / crop / flip).

    horovodrun -np 8 python scripts/gluon/train_segmentation.py --data-dir ADEChallengeData2016 \
        --model deeplab_resnest50 --pretrained-backbone --aux --base-size 520 --crop-size 480 \
        --batch-size 2 --lr 0.005 --num-epochs 120 --save-dir runs/deeplab50
    python scripts/gluon/train_segmentation.py --data-dir data/composed --model fcn_resnest14 \
        --pretrained-params runs/digits/train/imagenet-resnest14-11.params --base-size 64 \
        --crop-size 64 --batch-size 8 --num-epochs 4 --save-dir runs/seg

Data: the ADE20K layout (images/ and annotations/ with training/ and validation/; PNG masks,
0 = unlabelled, value v = class v - 1) or --train-dir / --val-dir folders of images/ + masks/;
class names from the data's classes.txt (ADE20K's own folder: the published 150). Checkpoints,
``--resume`` (bit-exact, also mid-epoch), the class-name and bad-input rules are train.py's.
"""
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.train import parse_config, train
    from resnest.gluon.train.segmentation import SegmentationTask, SegmentationTrainConfig
    cfg = parse_config(argv, SegmentationTrainConfig)
    train(cfg, SegmentationTask(cfg))
    return 0


if __name__ == "__main__":
    run_cli(main)
