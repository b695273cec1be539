"""Speed of the training step: the recipe's step against a minimal hand-written Gluon loop;
and the AutoAugment training input per core, the authors' pipeline against ours.

Both steps run the same model, batch and (Horovod) trainer on the same in-memory batch, in
alternating rounds so that machine noise hits both alike; the recipe's step adds mixup,
label smoothing, the loss/overflow allreduce, the LR schedule and the metrics hook. The data
pipeline is timed alone, to show whether it can keep up with the step.

AutoAugment input (:func:`autoaug_per_core`): the authors' ``--auto_aug`` input (their
``scripts/gluon/train.py``: MXNet's ``ImageRecordDataset``, their
``AugmentationBlock(autoaug_imagenet_policies())`` inserted before the Gluon transforms
``RandomResizedCrop, RandomFlipLeftRight, RandomColorJitter(0.4, 0.4, 0.4),
RandomLighting(0.1), ToTensor, Normalize``, in a Gluon ``DataLoader``) against
:func:`resnest.gluon.data.train_loader` with ``auto_aug=True``. Each runs in exactly one
worker process, both pinned (every thread) to the same single core, on the same file, in
alternating rounds. Images: 500x375 JPEGs (ImageNet's typical size) cut from scikit-learn's
two sample photos, packed as ImageNet's train.rec (shorter side 480).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import cv2
import mxnet as mx
import numpy as np
from mxnet import autograd

from resnest.gluon.train.classification import ClassificationRecipe
from resnest.gluon.train.engine import LossScaler, train_epoch
from resnest.gluon.utils.errors import UserError

from .timing import sync_output

__all__ = ["time_rounds", "minimal_loop", "recipe_loop", "loader_rate", "measure", "scaling",
           "sample_photo_rec", "authors_autoaug_loader", "our_autoaug_loader", "pin",
           "autoaug_per_core", "autoaug_stage_ms", "cpu_seconds"]


def minimal_loop(net, trainer, x, y, steps):
    """``steps`` plain Gluon steps (softmax cross-entropy, ``trainer.step``); returns seconds."""
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
    mx.nd.waitall()
    return time.perf_counter() - start


class _Repeat:
    """A loader yielding one in-memory batch ``steps`` times."""

    def __init__(self, x, y, steps):
        self.x, self.y, self.steps = x, y, steps

    def set_epoch(self, epoch, start_batch=0):
        pass

    def __len__(self):
        return self.steps

    def __iter__(self):
        return ((self.x, self.y, self.x.shape[0]) for _ in range(self.steps))


def recipe_loop(net, trainer, dist, x, y, steps, classes, monitor=None, log_interval=10):
    """``steps`` steps of the real epoch loop (mixup, smoothing, warm-up/cosine LR, global
    sums, the metrics hook) on one in-memory batch; returns seconds."""
    recipe = ClassificationRecipe(classes=classes, num_epochs=10, base_lr=0.1, warmup_epochs=1,
                                  smoothing_eps=0.1, mixup_alpha=0.2, log_interval=log_interval)
    start = time.perf_counter()
    train_epoch(net, trainer, dist, _Repeat(x, y, steps), recipe, 2, LossScaler(), monitor)
    mx.nd.waitall()
    return time.perf_counter() - start


def time_rounds(loops, rounds, barrier=None):
    """Run each ``loops[name]()`` (returns seconds) ``rounds`` times, alternating; returns the
    median seconds per name."""
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            if barrier is not None:
                barrier()
            times[name].append(loop())
    return {name: statistics.median(t) for name, t in times.items()}


def loader_rate(loader, batches):
    """Images per second the loader alone delivers over ``batches`` batches (after one)."""
    loader.set_epoch(0)
    it = iter(loader)
    next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            data, _, _ = next(it)
        except StopIteration:
            break
        data.wait_to_read()
        n += data.shape[0]
    return n / (time.perf_counter() - start)


def measure(args):
    """Time both loops (and the loader) in this process; returns the numbers on rank 0."""
    import mxnet as mx
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.train.classification import ClassificationTask, build_net
    from resnest.gluon.train.monitor import Monitor
    from resnest.gluon.train.runner import build_trainer
    import tempfile

    dist = setup_distributed(no_cuda=True)
    mx.random.seed(0)
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    x = mx.nd.random.normal(shape=shape, ctx=dist.ctx)
    y = mx.nd.array(mx.nd.random.randint(0, args.classes, shape=(args.batch_size,)).asnumpy(),
                    ctx=dist.ctx)
    nets = {}
    for name in ("minimal", "recipe"):
        net = build_net(args.model, args.classes, dist.ctx)
        dist.broadcast_parameters(net.collect_params())
        mx.nd.waitall()  # both nets have the same parameter names: one broadcast at a time
        nets[name] = (net, build_trainer(net, dist, "nag", 0.01, 0.9, 1e-4, no_wd=True,
                                                  prefix=name))
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(tmp, dist.is_root, progress=False, task=ClassificationTask)
        mon.log.handlers = [h for h in mon.log.handlers if h.__class__.__name__ !=
                            "_TqdmHandler"]  # keep the log file, not the console
        loops = {"minimal": lambda: minimal_loop(*nets["minimal"], x, y, args.steps),
                 "recipe": lambda: recipe_loop(*nets["recipe"], dist, x, y, args.steps,
                                               args.classes, mon, log_interval=2)}
        for loop in loops.values():  # warm-up: graph building, oneDNN primitives
            loop()
        secs = time_rounds(loops, args.rounds, dist.barrier)
        mon.close()
    images = args.steps * args.batch_size * dist.size
    out = {"model": args.model, "input_size": args.input_size, "batch_per_rank":
           args.batch_size, "ranks": dist.size,
           "threads_per_rank": os.environ.get("OMP_NUM_THREADS", "unset"),
           "minimal_img_per_sec": images / secs["minimal"],
           "recipe_img_per_sec": images / secs["recipe"],
           "recipe_overhead_pct": 100 * (secs["recipe"] / secs["minimal"] - 1)}
    if args.rec_train:
        from resnest.gluon.data import train_loader
        loader = train_loader(args.rec_train, args.batch_size, input_size=args.input_size,
                              rank=dist.rank, num_ranks=dist.size,
                              num_workers=args.data_nthreads)
        rate = loader_rate(loader, batches=max(4, args.steps))
        out["loader_img_per_sec_per_rank"] = rate
        out["loader_vs_step"] = rate / (out["recipe_img_per_sec"] / dist.size)
    return out if dist.is_root else None


def scaling(args, argv, script):
    """Run this script under horovodrun for 1..N ranks; returns one result per rank count."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    cores = os.cpu_count() or 1
    results = []
    for ranks in range(1, args.scaling + 1):
        inner = [a for a in argv if a not in ("--scaling", str(args.scaling))]
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // ranks)))
        cmd = [horovodrun, "-np", str(ranks), "--gloo", sys.executable, script, *inner,
               "--json", "/dev/stdout"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"horovodrun -np {ranks} failed: {proc.stderr.strip()[-300:]}")
        line = [ln for ln in proc.stdout.splitlines() if '"recipe_img_per_sec"' in ln][-1]
        results.append(json.loads(line[line.index("{"):]))
    base = results[0]["recipe_img_per_sec"]
    for r in results:
        r["scaling_vs_1_rank"] = r["recipe_img_per_sec"] / base
    return results


def sample_photo_rec(folder, count=256, seed=0):
    """``count`` 500x375 JPEGs (random 4:3 windows of the sample photos, some mirrored) in
    ``folder/img/c<k>/``, packed to ``folder/train.rec`` at ``--resize 480``; returns it."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    from resnest.gluon.data.pack import PackOptions, pack_records, plan_image_folder
    rng = np.random.RandomState(seed)
    photos = [Image.fromarray(a) for a in load_sample_images().images]   # 640x427 each
    for i in range(count):
        width = rng.randint(400, 570)
        height = width * 3 // 4
        left, top = rng.randint(0, 640 - width + 1), rng.randint(0, 427 - height + 1)
        img = photos[i % 2].crop((left, top, left + width, top + height))
        img = img.resize((500, 375), Image.BICUBIC)
        if rng.rand() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        os.makedirs(os.path.join(folder, "img", f"c{i % 10}"), exist_ok=True)
        img.save(os.path.join(folder, "img", f"c{i % 10}", f"{i}.jpg"), quality=90)
    prefix = os.path.join(folder, "train")
    entries, classes = plan_image_folder(os.path.join(folder, "img"), shuffle=True)
    pack_records(os.path.join(folder, "img"), entries, prefix, PackOptions(resize=480),
                 workers=os.cpu_count() or 1, classes=classes, force=True)
    return prefix + ".rec"


def authors_autoaug_loader(rec, batches, input_size=224):
    """The authors' pipeline over the index lists ``batches``, one worker process."""
    import importlib
    import mxnet as mx
    from mxnet.gluon.data.vision import ImageRecordDataset, transforms
    from tools.reference import authors_module
    block = authors_module("data_utils").AugmentationBlock(
        importlib.import_module("resnest_authors.transforms").autoaug_imagenet_policies())
    transform = transforms.Compose([
        block, transforms.RandomResizedCrop(input_size), transforms.RandomFlipLeftRight(),
        transforms.RandomColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
        transforms.RandomLighting(0.1), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    dataset = ImageRecordDataset(rec).transform_first(transform)
    return mx.gluon.data.DataLoader(dataset, batch_sampler=batches, num_workers=1)


def our_autoaug_loader(rec, batch_size, input_size=224):
    """Our ``--auto_aug`` loader with one worker process."""
    from resnest.gluon.data import train_loader
    loader = train_loader(rec, batch_size, input_size=input_size, num_workers=1,
                          backend="python", auto_aug=True, seed=0)
    loader.set_workers(1)
    return loader


def pin(pid, core):
    """Pin every thread of process ``pid`` to CPU ``core``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except OSError:      # a thread that just ended
            pass


def cpu_seconds(pids):
    """CPU time (user + system, all threads) the processes ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fstat:
            fields = fstat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _drain(loader, pids):
    """``(images per wall-clock second, images per CPU-second of the worker processes)``
    over one whole pass of ``loader`` (nothing is left running after it)."""
    start, cpu, images = time.perf_counter(), cpu_seconds(pids), 0
    for batch in loader:
        batch[0].wait_to_read()
        images += batch[0].shape[0]
    return (images / (time.perf_counter() - start),
            images / max(cpu_seconds(pids) - cpu, 1e-9))


def autoaug_per_core(rec, batch_size=32, batches=4, rounds=5, input_size=224):
    """Images per second of each pipeline on one core (median of ``rounds`` alternating
    rounds of ``batches`` batches after a warm-up); returns a dict.

    ``*_img_per_sec_per_core`` counts images per CPU-second of the worker process (all its
    threads), which other load on the machine does not change; ``*_pinned_wall`` images per
    wall-clock second with both workers pinned to the same core, which it does."""
    from resnest.gluon.data import rec_info
    count = rec_info(rec).num_samples
    if count < batches * batch_size:
        raise UserError(f"{rec} has {count} images, fewer than {batches} batches of "
                        f"{batch_size}; pack more images or ask for fewer batches.")
    order = np.random.RandomState(0).permutation(count)
    index_batches = [order[(i * batch_size) % count:][:batch_size].tolist()
                     for i in range(batches)]
    theirs = authors_autoaug_loader(rec, index_batches, input_size)
    ours = our_autoaug_loader(rec, batch_size, input_size)
    core = max(os.sched_getaffinity(0))

    def our_pass(epoch):                           # exactly ``batches`` batches, no prefetch left
        ours.set_epoch(epoch, start_batch=len(ours) - batches)
        return _drain(ours, pids["ours"])
    pids = {"authors": [], "ours": []}
    _drain(theirs, []), our_pass(0)                # warm-up: workers start, imports
    pids = {"authors": [p.pid for p in theirs._worker_pool._pool], "ours": ours.worker_pids}
    for pid in pids["authors"] + pids["ours"]:
        pin(pid, core)
    rates = {"authors": [], "ours": []}
    for r in range(rounds):
        rates["authors"].append(_drain(theirs, pids["authors"]))
        rates["ours"].append(our_pass(r + 1))
    ours.close()
    out = {}
    for name, pairs in rates.items():
        out[f"{name}_img_per_sec_per_core"] = statistics.median(cpu for _, cpu in pairs)
        out[f"{name}_img_per_sec_pinned_wall"] = statistics.median(wall for wall, _ in pairs)
    out["speedup"] = out["ours_img_per_sec_per_core"] / out["authors_img_per_sec_per_core"]
    out["speedup_wall"] = (out["ours_img_per_sec_pinned_wall"]
                           / out["authors_img_per_sec_pinned_wall"])
    out.update(batch_size=batch_size, batches_per_round=batches, rounds=rounds,
               input_size=input_size, images=count,
               omp_num_threads=os.environ.get("OMP_NUM_THREADS", "unset"))
    return out


def _stage_ms(stages, items, repeat=1):
    """Run ``stages`` (name -> fn(value) -> value) as a chain on every item; mean CPU ms each
    (``time.process_time``: all threads of this process, not other load on the machine)."""
    spent = dict.fromkeys(stages, 0.0)
    for _ in range(repeat):
        for value in items:
            for name, fn in stages.items():
                start = time.process_time()
                value = fn(value)
                spent[name] += time.process_time() - start
    return {name: 1000 * s / (len(items) * repeat) for name, s in spent.items()}


def autoaug_stage_ms(rec, count=64, input_size=224):
    """Where the time of each pipeline goes, in CPU ms per image, in this process (pin it to
    one core first): the authors' MXNet operators are waited for after each stage. Ours is
    timed as the loader runs it: the crop box first, then AutoAugment of that box only."""
    import importlib
    from mxnet.gluon.data.vision import ImageRecordDataset, transforms as T
    from tools.reference import authors_module
    from resnest.gluon.data.autoaugment import ImageNetPolicy
    from resnest.gluon.data.samples import RecordSamples
    from resnest.gluon.data.transforms import color_normalize_chw, resized_crop_box
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    block = authors_module("data_utils").AugmentationBlock(
        importlib.import_module("resnest_authors.transforms").autoaug_imagenet_policies())
    dataset = ImageRecordDataset(rec)

    def waited(fn):
        return lambda x: sync_output(fn(x))
    theirs = {"decode": lambda i: sync_output(dataset[i][0]),
              "autoaugment (PIL, with NDArray<->PIL)": lambda x: sync_output(block(x)),
              "random resized crop": waited(T.RandomResizedCrop(input_size)),
              "flip": waited(T.RandomFlipLeftRight()),
              "colour jitter": waited(T.RandomColorJitter(0.4, 0.4, 0.4)),
              "lighting": waited(T.RandomLighting(0.1)),
              "to tensor + normalise": waited(T.Compose([T.ToTensor(), T.Normalize(mean, std)]))}
    samples, policy, rng = RecordSamples(rec), ImageNetPolicy(bgr=True), np.random.RandomState(0)

    def box_then_autoaugment(img):
        box, interp = resized_crop_box(*img.shape[:2], input_size, rng)
        return policy(img, rng, box), interp
    ours = {"decode (BGR, as the loader asks)": lambda i: samples.read(i, bgr=True)[0],
            "crop box, autoaugment of the box": box_then_autoaugment,
            "resize": lambda x: cv2.resize(x[0], (input_size, input_size), interpolation=x[1]),
            "flip": lambda x: cv2.flip(x, 1) if rng.rand() < 0.5 else x,
            "colour jitter + lighting + normalise": lambda x: color_normalize_chw(
                x, 0.4, 0.1, mean, std, rng, bgr=True)}
    items = list(range(min(count, len(samples))))
    return {"authors": _stage_ms(theirs, items), "ours": _stage_ms(ours, items)}
