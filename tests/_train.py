"""What the training unit tests share: a one-rank Dist, a pretend peer rank, a tiny model and
its trainer, fixed batches, a list loader."""
import mxnet as mx
import numpy as np

from resnest.gluon.train.classification import build_net
from resnest.gluon.train.runner import build_trainer
from resnest.gluon.utils.distributed import Dist

ONE = Dist(rank=0, size=1, local_rank=0, ctx=mx.cpu(), is_root=True)


class PeerDist(Dist):
    """Rank 0 of a pretend 2-rank job whose peer adds ``peer`` to every sum."""

    def __init__(self, peer):
        super().__init__(0, 2, 0, mx.cpu(), True)
        self.peer = np.asarray(peer, dtype=np.float64)

    def allreduce_start(self, values, name):
        return super().allreduce_start(values, name) + mx.nd.array(self.peer, dtype="float64")

    def failed_ranks(self, ok, name):
        return [] if ok else [0]                 # the pretend peer always succeeds


def tiny_net(classes=4, lr=0.1):
    """``(net, trainer)``: an initialised, hybridized resnest_tiny and its NAG trainer."""
    mx.random.seed(1)
    net = build_net("resnest_tiny", classes, mx.cpu(), hybridize=True)
    return net, build_trainer(net, ONE, "nag", lr, 0.9, 1e-4, no_wd=True)


def weights(net):
    """Trainable parameters (BN running statistics move in any training forward)."""
    return {k: v.data().asnumpy().copy() for k, v in net.collect_params().items()
            if v.grad_req != "null"}


def batch(n=8, classes=4):
    rng = np.random.RandomState(0)
    return mx.nd.array(rng.randn(n, 3, 32, 32)), mx.nd.array(rng.randint(0, classes, n))


class ListLoader:
    """A loader over fixed batches."""

    def __init__(self, batches):
        self.batches, self.epochs = batches, []

    def set_epoch(self, epoch, start_batch=0):
        self.epochs.append(epoch)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)
