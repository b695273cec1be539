"""Run ``scripts/gluon/train.py`` (or another training script) with test-only hooks, installed
here and never in the library:

    python tests/_train_hooks.py scripts/gluon/train.py --rec-train ... (train.py's arguments)

``RESNEST_TEST_FAULT=die:R:E:S`` makes rank ``R`` exit (``os._exit(1)``) before step ``S`` of
epoch ``E``; ``hang:R:E:S`` makes it sleep for ever there instead. ``RESNEST_TEST_TRACE=DIR``
makes every rank append the labels of each training batch to ``DIR/rank<R>.txt`` and save its
final parameters to ``DIR/rank<R>.params``. The hooks wrap the engine's ``train_step``, so the
library runs exactly as it does for users.
"""
import os
import runpy
import sys
import time


def _install():
    from resnest.gluon.train import engine
    fault = os.environ.get("RESNEST_TEST_FAULT")
    trace = os.environ.get("RESNEST_TEST_TRACE")
    original_epoch, original_step = engine.train_epoch, engine.train_step
    seen = {}

    def train_epoch(net, trainer, dist, loader, recipe, epoch, *args, start_step=0, **kwargs):
        counter = [start_step]
        seen["net"], seen["rank"] = net, dist.rank

        def train_step(*step_args, **step_kwargs):
            if fault:
                kind, rank, at_epoch, at_step = fault.split(":")
                if (int(rank), int(at_epoch), int(at_step)) == (dist.rank, epoch, counter[0]):
                    if kind == "die":
                        sys.stderr.write(f"test fault: rank {dist.rank} exits at epoch {epoch} "
                                         f"step {counter[0]}\n")
                        sys.stderr.flush()
                        os._exit(1)
                    while True:
                        time.sleep(3600)
            if trace:
                labels = step_args[3][1].asnumpy()       # (net, trainer, dist, batch, ...)
                with open(os.path.join(trace, f"rank{dist.rank}.txt"), "a") as f:
                    f.write(f"{epoch} {counter[0]} " + " ".join(str(int(v)) for v in labels)
                            + "\n")
            counter[0] += 1
            return original_step(*step_args, **step_kwargs)
        engine.train_step = train_step
        try:
            return original_epoch(net, trainer, dist, loader, recipe, epoch, *args,
                                  start_step=start_step, **kwargs)
        finally:
            engine.train_step = original_step
    engine.train_epoch = train_epoch
    from resnest.gluon.train import runner
    runner.train_epoch = train_epoch
    return seen, trace


def main():
    seen, trace = _install()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        if trace and "net" in seen:
            seen["net"].save_parameters(os.path.join(trace, f"rank{seen['rank']}.params"))


if __name__ == "__main__":
    main()
