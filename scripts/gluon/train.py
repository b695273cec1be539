"""Train a ResNeSt from RecordIO files, as one process or under ``horovodrun``.

    horovodrun -np 2 --gloo python scripts/gluon/train.py --rec-train train.rec \
        --rec-val val.rec --model resnest50 --lr 0.05 --num-epochs 270 --batch-size 128 \
        --use-rec --dtype float32 --warmup-epochs 5 --last-gamma --no-wd --label-smoothing \
        --mixup --save-dir params_resnest50 --log-interval 50 --eval-frequency 5 --auto_aug

``--resume`` continues from the latest complete checkpoint in ``--save-dir``. Unless
``OMP_NUM_THREADS`` is set, each rank uses its share of the machine's cores (MXNet would
otherwise run one thread per process).
"""
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.train import parse_config, train
    train(parse_config(argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
