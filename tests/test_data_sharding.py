"""Which samples each rank reads (:mod:`resnest.gluon.data.sharding`): every training sample
once per epoch with the fewest repeats, validation partitioned and padded evenly."""
import numpy as np
import pytest

from resnest.gluon.data.sharding import train_shard, val_plan, val_shard

NUM = 21


@pytest.mark.parametrize('ranks', [1, 3, 4])
def test_train_shards_cover_every_sample_equal_lengths_minimal_repeats(ranks):
    shards = [train_shard(NUM, 4, r, ranks, seed=5, epoch=2) for r in range(ranks)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) % 4 == 0
    union = np.concatenate(shards)
    # Every sample is seen; the wrap-around padding repeats only the first
    # len(union) - NUM samples of the permutation, once each.
    counts = np.bincount(union, minlength=NUM)
    assert counts.min() == 1
    assert (counts == 2).sum() == len(union) - NUM and counts.max() <= 2
    other = train_shard(NUM, 4, 0, ranks, seed=5, epoch=3)
    assert not np.array_equal(shards[0], other)


def test_val_shards_partition_the_dataset_and_plans_pad_evenly():
    for ranks in (1, 2, 3, 7):
        parts = [list(val_shard(NUM, r, ranks)) for r in range(ranks)]
        assert sorted(sum(parts, [])) == list(range(NUM))       # disjoint and complete
        plans = [val_plan(NUM, 4, r, ranks) for r in range(ranks)]
        assert len({len(p) for p, _ in plans}) == 1             # same batches on every rank
        for (positions, valid), part in zip(plans, parts):
            real = [positions[i * 4 + j] for i, v in enumerate(valid) for j in range(v)]
            assert real == part
