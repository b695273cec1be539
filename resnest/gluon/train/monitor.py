"""What a person watching a run sees: progress bar, log file, ``metrics.jsonl``, curves.

Only rank 0 writes (``enabled``); every rank still feeds its watchdog through :meth:`beat`.

Files in the save folder:

* ``config.json`` -- the resolved configuration plus run facts (workers, dataset sizes, ...),
  written at start.
* ``train.log`` (``--logging-file``) -- the log lines also printed on the console.
* ``metrics.jsonl`` -- one JSON object per line, appended (a resumed run continues it):

  Records of epochs a resumed run trains again are dropped when it starts.

  - ``{"kind": "step", "epoch", "step", "steps", "train_loss", "lr", "img_per_sec",
    "loss_scale", "time"}`` every ``--log-interval`` steps: ``train_loss`` is the mean over
    all ranks since the previous line, ``img_per_sec`` counts all workers, ``time`` is Unix
    time;
  - ``{"kind": "epoch", "epoch", "train_loss", "lr", "img_per_sec", "epoch_time",
    "skipped_steps", "samples", "top1", "top5", "val_loss", "val_samples", "time"}`` per epoch:
    ``img_per_sec`` is the epoch's training throughput across all workers, accuracies are in %
    and null in epochs without evaluation, ``val_samples`` is the number of validation images
    scored (summed over ranks).
* ``curves.png`` -- loss, accuracy and LR curves, drawn at the end.
"""
import json
import logging
import os
import sys
import time

from ..utils.io import atomic_write, write_text

__all__ = ["Monitor", "read_metrics", "plot_curves"]

LOGGER = "resnest.train"


class Monitor:
    """Progress bar, log file and metrics on rank 0; watchdog beats on every rank."""

    def __init__(self, save_dir, enabled, logging_file="train.log", progress=True,
                 watchdog=None, task=None):
        self.save_dir, self.enabled, self.watchdog = save_dir, enabled, watchdog
        # What the task's evaluation reports: its keys, the log text, the curves' keys.
        self.eval_keys = tuple(task.eval_keys) if task else ("val_samples",)
        self.curve_keys = tuple(task.curve_keys) if task else ()
        self.eval_text = task.eval_text if task else (lambda record: "")
        self.progress = progress and enabled
        self.log = logging.getLogger(LOGGER)
        self._handlers, self._bar = [], None
        if not enabled:
            return
        os.makedirs(save_dir, exist_ok=True)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(os.path.join(save_dir, logging_file)),
                        _TqdmHandler()):
            handler.setFormatter(fmt)
            self.log.addHandler(handler)
            self._handlers.append(handler)
        self.metrics_path = os.path.join(save_dir, "metrics.jsonl")

    def info(self, msg):
        if self.enabled:
            self.log.info(msg)

    def save_config(self, config):
        """Write the resolved configuration (a dict) to ``config.json``."""
        if self.enabled:
            write_text(os.path.join(self.save_dir, "config.json"),
                       json.dumps(config, indent=2, sort_keys=True))

    def truncate(self, start_epoch, start_step=0):
        """Drop the records from step ``start_step`` of epoch ``start_epoch`` on (left by a
        killed run) so a resumed run's ``metrics.jsonl`` reads as one clean run."""
        if not self.enabled or not os.path.exists(self.metrics_path):
            return

        def before(r):
            epoch = r.get("epoch", 0)
            return epoch < start_epoch or (epoch == start_epoch and r.get("kind") == "step"
                                           and r.get("step", 0) < start_step)
        kept = [r for r in read_metrics(self.metrics_path) if before(r)]
        write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n"
                                              for r in kept))

    def _append(self, record):
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()

    def epoch_begin(self, epoch, steps):
        # A bar needs a terminal; under horovodrun (a pipe, lines prefixed per rank) the
        # log lines every --log-interval steps are the progress.
        if self.progress and sys.stderr.isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=steps, desc=f"epoch {epoch}", file=sys.stderr,
                             dynamic_ncols=True, leave=False)

    def beat(self):
        if self.watchdog is not None:
            self.watchdog.beat()
        if self._bar is not None:
            self._bar.update(1)

    def step(self, epoch, step, steps, loss, lr, img_per_sec, loss_scale):
        if not self.enabled:
            return
        record = {"kind": "step", "epoch": epoch, "step": step, "steps": steps,
                  "train_loss": loss, "lr": lr, "img_per_sec": img_per_sec,
                  "loss_scale": loss_scale, "time": time.time()}
        self._append(record)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}",
                                  img_s=f"{img_per_sec:.1f}")
        self.log.info(f"epoch {epoch} step {step + 1}/{steps} loss {loss:.4f} lr {lr:.5g} "
                      f"{img_per_sec:.1f} img/s")

    def epoch_end(self, epoch, stats, eta_seconds=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not self.enabled:
            return
        record = {"kind": "epoch", "epoch": epoch, "time": time.time(),
                  **dict.fromkeys(self.eval_keys), **stats}
        self._append(record)
        acc = self.eval_text(record) if record[self.eval_keys[0]] is not None else ""
        eta = f" ETA {eta_seconds / 60:.1f} min" if eta_seconds is not None else ""
        self.log.info(f"epoch {epoch} done: loss {stats['train_loss']:.4f} "
                      f"{stats['img_per_sec']:.1f} img/s in {stats['epoch_time']:.1f} s"
                      f"{acc}{eta}")

    def finish(self):
        """Draw ``curves.png`` and detach the log handlers."""
        if self.enabled and os.path.exists(self.metrics_path):
            path = plot_curves(read_metrics(self.metrics_path),
                               os.path.join(self.save_dir, "curves.png"), self.curve_keys)
            self.info(f"curves in {path}")
        self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        for handler in self._handlers:
            self.log.removeHandler(handler)
            handler.close()
        self._handlers = []


class _TqdmHandler(logging.Handler):
    """Console log lines that do not break the progress bar."""

    def emit(self, record):
        from tqdm import tqdm
        tqdm.write(self.format(record), file=sys.stderr)


def read_metrics(path):
    """The records of a ``metrics.jsonl``; a torn last line (killed writer) is ignored."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def plot_curves(records, path, curve_keys=("top1", "top5")):
    """Training loss and LR per step, the evaluation metrics ``curve_keys`` (in %) per epoch,
    in one PNG; returns ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r for r in records if r.get("kind") == "step"]
    epochs = [r for r in records if r.get("kind") == "epoch" and curve_keys
              and r.get(curve_keys[0]) is not None]
    x = [r["epoch"] + (r["step"] + 1) / r["steps"] for r in steps]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(x, [r["train_loss"] for r in steps])
    axes[0].set(title="training loss", xlabel="epoch")
    for key, style in zip(curve_keys, ("o-", "s-", "^-")):
        axes[1].plot([r["epoch"] + 1 for r in epochs], [r[key] for r in epochs], style,
                     label=key)
    axes[1].set(title="validation (%)", xlabel="epoch")
    axes[1].legend()
    axes[2].plot(x, [r["lr"] for r in steps])
    axes[2].set(title="learning rate", xlabel="epoch")
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=80)
    atomic_write(path, write)
    plt.close(fig)
    return path
