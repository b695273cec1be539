"""The training configuration: the authors' published command parses unchanged, every default
is the field's own, and a bad value is one sentence naming its flag."""
import dataclasses

import pytest

from resnest.gluon.train.config import TrainConfig, build_parser, operational_fields, \
    parse_config
from resnest.gluon.utils.errors import UserError

AUTHORS = ("--rec-train /r/train.rec --rec-val /r/val.rec --model resnest50 --lr 0.05 "
           "--num-epochs 270 --batch-size 128 --use-rec --dtype float32 --warmup-epochs 5 "
           "--last-gamma --no-wd --label-smoothing --mixup --save-dir params_resnest50 "
           "--log-interval 50 --eval-frequency 5 --auto_aug --input-size 224").split()


def test_authors_command_parses_unchanged():
    # The authors' README command (REFERENCE.md) and their train.py's defaults.
    cfg = parse_config(AUTHORS)
    assert (cfg.model, cfg.lr, cfg.num_epochs, cfg.batch_size) == ("resnest50", 0.05, 270, 128)
    assert cfg.warmup_epochs == 5 and cfg.eval_frequency == 5 and cfg.log_interval == 50
    assert cfg.last_gamma and cfg.no_wd and cfg.label_smoothing and cfg.mixup and cfg.auto_aug
    assert cfg.save_dir == "params_resnest50" and cfg.optimizer == "nag"
    assert cfg.smoothing_eps == 0.1 and cfg.mixup_alpha == 0.2 and cfg.classes is None
    # The authors' models build DropBlock 0.1 in; their command trains with it.
    assert cfg.dropblock_prob == 0.1 and cfg.dropblock_mode == "batch"


def test_remaining_published_flags_parse():
    cfg = parse_config(AUTHORS + "--mixup-alpha 0.3 --mixup-off-epoch 10 --save-frequency 2 "
                                 "--crop-ratio 0.9 --dropblock-prob 0.1 --resume-epoch 3 "
                                 "--data-nthreads 8 --no-cuda --optimizer sgd --seed 7 "
                                 "--classes 10".split())
    assert (cfg.mixup_alpha, cfg.mixup_off_epoch, cfg.save_frequency) == (0.3, 10, 2)
    assert (cfg.crop_ratio, cfg.dropblock_prob, cfg.resume_epoch) == (0.9, 0.1, 3)
    assert (cfg.data_nthreads, cfg.no_cuda, cfg.optimizer, cfg.seed, cfg.classes) == \
        (8, True, "sgd", 7, 10)


def test_every_default_is_the_fields_own():
    """The parser's defaults are the dataclass's (typed once): a bare command line gives the
    dataclass built with the same data flags and nothing else."""
    data = ["--rec-train", "t.rec", "--rec-val", "v.rec"]
    assert parse_config(data) == TrainConfig(rec_train="t.rec", rec_val="v.rec")
    flags = {a.dest for a in build_parser()._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= flags
    assert "save_dir" in operational_fields(TrainConfig) and "wd" not in \
        operational_fields(TrainConfig)


@pytest.mark.parametrize("extra, word", [
    ("--batch-size 0", "--batch-size must be positive, got 0"),
    ("--lr 0", "--lr must be positive"), ("--lr -0.1", "--lr must be positive"),
    ("--lr nan", "--lr must be a finite number"),
    ("--input-size 0", "--input-size must be at least 32, got 0"),
    ("--input-size 16", "--input-size must be at least 32"),
    ("--crop-ratio 0", r"--crop-ratio must be in \(0, 1\]"),
    ("--crop-ratio 1.5", r"--crop-ratio must be in \(0, 1\]"),
    ("--momentum 1.5", "--momentum"), ("--wd -1", "--wd must be 0 or more"),
    ("--dropblock-prob 1.5", "--dropblock-prob"), ("--warmup-epochs 300", "--warmup-epochs"),
    ("--classifier-lr-mult 0", "--classifier-lr-mult"),
    ("--save-interval-steps -1", "--save-interval-steps"),
    ("--classes 1", "--classes must be at least 2"),
    ("--resume --resume-params x", "--resume"),
    ("--resume --force", "--force replaces the run"),
    ("--pretrained --pretrained-params x.params", "--pretrained"),
    ("--train-dir somewhere", "give the train data once"),
])
def test_bad_values_are_one_sentence(extra, word):
    with pytest.raises(UserError, match=word):
        parse_config(AUTHORS + extra.split())


def test_a_config_built_in_code_is_checked_the_same_way():
    with pytest.raises(UserError, match="--batch-size must be positive, got -2"):
        TrainConfig(rec_train="t.rec", rec_val="v.rec", batch_size=-2).check()
    with pytest.raises(UserError, match="--optimizer must be one of nag, sgd, not 'adam'"):
        TrainConfig(rec_train="t.rec", rec_val="v.rec", optimizer="adam").check()


def test_a_save_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        parse_config(AUTHORS + ["--save-dir", str(tmp_path / "f")])
