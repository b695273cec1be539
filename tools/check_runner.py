"""Time-boxed steps for the GPU check: each step's commands run as subprocesses in their own
process group, logged to a file, killed with the whole group when the step's time is up; each
step ends passed, failed or skipped with a reason; one report and one JSON at the end.

Standard library only: the check runs before its MXNet environment exists.
"""
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field

__all__ = ["StepFailed", "StepSkipped", "StepResult", "Step", "Session", "kill_group"]


class StepFailed(Exception):
    """The step failed; the message is its one-line reason."""


class StepSkipped(Exception):
    """The step cannot run here; the message is its one-line reason."""


@dataclass
class StepResult:
    name: str
    title: str
    status: str                 # passed, failed, skipped
    seconds: float
    detail: str
    data: dict = field(default_factory=dict)
    log: str = ""


@dataclass(frozen=True)
class Step:
    """``run(session) -> (detail, data)``, given at most ``box`` seconds; skipped when less
    than ``needs`` seconds of the budget are left or a step of ``requires`` did not pass."""

    name: str
    title: str
    run: object
    box: float
    needs: float = 10.0
    requires: tuple = ()
    budgeted: bool = True       # counts against the session's budget


def kill_group(proc, grace=5.0):
    """End ``proc``'s whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:                                      # children that outlived the leader
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


class Session:
    """Runs steps in order within a budget; ``run_cmd`` is what a step calls."""

    def __init__(self, out, env, budget):
        self.out, self.env, self.budget = out, dict(env), float(budget)
        self.results, self.started = [], time.monotonic()
        self._spent = 0.0
        self._deadline = None
        self._log = None
        os.makedirs(os.path.join(out, "logs"), exist_ok=True)

    def remaining(self):
        return self.budget - self._spent

    def run_cmd(self, cmd, env=None, cwd=None, check=True, capture=False):
        """Run ``cmd`` (a list) within what is left of the current step's box; returns its
        exit code, or ``(code, stdout)`` with ``capture``. Output goes to the step's log. A
        command still running when the box ends is killed with its process group, and the
        step fails."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise StepFailed("no time left in this step's box")
        target = self._log + ".out" if capture else self._log
        with open(self._log, "a") as log:
            log.write(f"$ {' '.join(cmd)}\n")
        with open(target, "w" if capture else "a") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                    env=dict(self.env, **(env or {})), start_new_session=True)
            try:
                code = proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                raise StepFailed(f"timed out ({os.path.basename(cmd[0])} killed with its "
                                 "process group)") from None
            except BaseException:
                kill_group(proc)
                raise
            kill_group(proc, grace=0.5)               # nothing it started outlives it
        text = ""
        if capture:
            with open(target) as f:
                text = f.read()
            with open(self._log, "a") as log:
                log.write(text)
            os.remove(target)
        if check and code != 0:
            raise StepFailed(f"{' '.join(os.path.basename(c) for c in cmd[:3])} exited "
                             f"{code}: {self.log_tail()}")
        return (code, text) if capture else code

    def log_tail(self, lines=1):
        """The last non-empty lines of the current step's log, for a one-line reason."""
        try:
            with open(self._log) as f:
                text = [ln.strip() for ln in f if ln.strip()]
        except OSError:
            return ""
        return " | ".join(text[-lines:])[-300:]

    def step(self, step):
        """Run one :class:`Step`; its :class:`StepResult` is kept and returned."""
        passed = {r.name for r in self.results if r.status == "passed"}
        missing = [r for r in step.requires if r not in passed]
        log = os.path.join(self.out, "logs", f"{step.name}.log")
        self._log = log
        if missing:
            return self._keep(step, "skipped", 0.0, f"needs {', '.join(missing)}, which did "
                                                    "not pass", {}, "")
        box = min(step.box, self.remaining()) if step.budgeted else step.box
        if step.budgeted and box < step.needs:
            return self._keep(step, "skipped", 0.0, f"not enough time left ({box:.0f} s of "
                                                    f"the budget, needs {step.needs:.0f} s)",
                              {}, "")
        start = time.monotonic()
        self._deadline = start + box
        data = {}
        try:
            detail, data = step.run(self)
            status = "passed"
        except StepSkipped as err:
            status, detail = "skipped", str(err)
        except StepFailed as err:
            status, detail = "failed", str(err)
        except Exception as err:                      # a bug of the check: still a report
            status, detail = "failed", f"internal error: {type(err).__name__}: {err}"
        seconds = time.monotonic() - start
        if step.budgeted:
            self._spent += seconds
        return self._keep(step, status, seconds, detail, data, log)

    def _keep(self, step, status, seconds, detail, data, log):
        result = StepResult(step.name, step.title, status, round(seconds, 1), detail, data,
                            os.path.relpath(log, self.out) if log and os.path.exists(log)
                            else "")
        self.results.append(result)
        print(f"  {result.title:34s} {status:8s} {seconds:6.1f} s  {detail}", flush=True)
        return result

    def summary(self):
        counts = {s: sum(r.status == s for r in self.results)
                  for s in ("passed", "failed", "skipped")}
        return counts, round(time.monotonic() - self.started, 1)

    def write_json(self, path, header):
        counts, total = self.summary()
        record = dict(header, steps=[asdict(r) for r in self.results], counts=counts,
                      total_seconds=total, ok=counts["failed"] == 0)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, path)
        return record
