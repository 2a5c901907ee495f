"""Explain PaddleX checkpoints in a separate process while training goes on.

Why a process: a Paddle Inference predictor with oneDNN, built and run inside the training process,
makes the PaddleX dygraph training that follows slower for the rest of the process (BENCHMARKS.md,
"Why the hook explains in a worker process"), and PaddleX training on the CPU keeps one core
busy. So :class:`~paddlex_interpret.training.hook.ExplainHook` (``background=True``, the default) hands
each checkpoint *directory* to a :class:`CheckpointWorker`: a child Python process that loads the
model from the checkpoint files (``paddlex.load_model`` once, then only the new
``model.pdparams``), runs the same :class:`~paddlex_interpret.training.session.ExplainSession`
stages on its own threads, writes the NormLIME weights file into the checkpoint directory and logs
to VisualDL itself. The live model, its RNG states and its gradients are never touched.

The child is a fresh interpreter (``python -m paddlex_interpret.training.worker``, not ``multiprocessing``
spawn, which would re-run a user's training script that has no ``__main__`` guard); it talks to
the parent over a socket pair with pickled messages. POSIX only (the hook explains in the training
process elsewhere). The child runs at a lower priority (``nice`` 10; the environment variable
``PADDLEX_INTERPRET_WORKER_NICE`` changes it) so that training keeps its cores when both compete.

Example (what the hook does)::

    from paddlex_interpret.training.report import CheckpointJob
    from paddlex_interpret.training.worker import CheckpointWorker
    worker = CheckpointWorker(probes=["val/0.png"], options={"num_samples": 300})
    worker.submit(CheckpointJob(epoch=1, checkpoint_dir="output/epoch_1",
                                logdir="output/vdl_log/explain", dataset=list(zip(paths, labels))))
    result = worker.result()         # CheckpointResult: .report, .record_file, .error
    worker.close()
"""
import logging
import os
import pickle
import socket
import subprocess
import sys

from ..runtime.devices import child_env, current_device, device_or_cpu, gpu_count
from ..runtime.distributed import single_process_env
from .report import CheckpointJob, CheckpointResult

__all__ = ["CheckpointWorker", "WorkerError", "background_supported", "default_worker_threads"]

logger = logging.getLogger("paddlex_interpret")


class WorkerError(RuntimeError):
    """The worker process could not be started, or stopped without answering."""


def background_supported():
    """True where the worker can run: POSIX (the socket pair is handed over as a file descriptor)."""
    return os.name == "posix" and hasattr(socket, "socketpair")


def default_worker_threads():
    """CPU threads for the worker: the cores PaddleX's CPU training leaves idle (all but one),
    at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


def _child_env(num_threads, device):
    """The child's environment and its device name inside: not a rank, its threads, and only
    its device's card visible (none for the CPU)."""
    env, inside = child_env(device, single_process_env())  # a rank's helper, not a rank
    # the parent's import path (paddlex_interpret may be found through a path entry, not a site)
    paths = [p for p in sys.path if p]
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if pkg_root not in paths:
        paths.insert(0, pkg_root)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    env["OMP_NUM_THREADS"] = str(int(num_threads))
    env.setdefault("PYTHONUNBUFFERED", "1")
    from ..compat import quiet_import_noise

    quiet_import_noise(env)  # its imports print nothing a user could act on
    return env, inside


class CheckpointWorker:
    """A child process that explains checkpoint directories, one job at a time.

    Args:
        probes, options: what :class:`~paddlex_interpret.training.session.ExplainSession` takes.
        weights_builder: a weights builder run in the child (must be picklable; default the
            session's builder on the job's eval items).
        num_threads: CPU threads of the child's predictors (default
            :func:`default_worker_threads`).
        device: Paddle device of the child (default the parent's ``paddle.get_device()``).
            The child sees that device's card only, and none on the CPU (``CUDA_VISIBLE_DEVICES``
            empty), so that it opens no CUDA context on a card it does not use. A GPU that is
            not there is logged as an error and the child runs on the CPU.

    The process starts at once, so its imports overlap the first epoch. :meth:`submit` sends a
    job; :meth:`result` waits for its reply. Every failure of the child (an import error, a
    crash, a killed process) surfaces as :class:`WorkerError` in the parent.
    """

    def __init__(self, probes, options=None, weights_builder=None, num_threads=None,
                 device=None):
        if not background_supported():
            raise WorkerError("the explanation worker needs a POSIX system")
        self.num_threads = int(num_threads or default_worker_threads())
        #: the device the child runs on, as this process names it
        self.device = device_or_cpu(device or current_device(), "explanation worker")
        env, inside = _child_env(self.num_threads, self.device)
        init = {"probes": list(probes), "options": dict(options or {}),
                "weights_builder": weights_builder, "num_threads": self.num_threads,
                "device": inside}
        payload = pickle.dumps(("init", init), protocol=pickle.HIGHEST_PROTOCOL)
        parent_sock, child_sock = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "paddlex_interpret.training.worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),), env=env,
                stdin=subprocess.DEVNULL, close_fds=True)
        except Exception as exc:
            parent_sock.close()
            raise WorkerError("could not start the explanation worker: %s" % exc) from exc
        finally:
            child_sock.close()
        from multiprocessing.connection import Connection

        self._conn = Connection(parent_sock.detach())
        self.pending = 0
        self.pending_epochs = []
        self._send_bytes(payload)

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def _send_bytes(self, payload):
        try:
            self._conn.send_bytes(payload)
        except (OSError, EOFError) as exc:
            raise self._dead("could not send to it (%s)" % exc) from exc

    def _dead(self, what):
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return WorkerError("the explanation worker (pid %d) stopped: %s; exit code %s"
                           % (self.process.pid, what, code))

    def submit(self, job: CheckpointJob) -> None:
        """Send one checkpoint (its dataset, if any, a list the child can unpickle)."""
        if not self.alive():
            raise self._dead("it exited before this checkpoint (epoch %s) was sent" % job.epoch)
        self._send_bytes(pickle.dumps(("checkpoint", job), protocol=pickle.HIGHEST_PROTOCOL))
        self.pending += 1
        self.pending_epochs.append(job.epoch)

    def result(self, timeout=None) -> CheckpointResult:
        """The :class:`~paddlex_interpret.training.report.CheckpointResult` of the oldest
        pending job.
        Raises :class:`WorkerError` when the child died; ``TimeoutError`` after ``timeout`` s."""
        if timeout is not None and not self._conn.poll(timeout):
            raise TimeoutError("no answer from the explanation worker in %.0f s" % timeout)
        try:
            kind, reply = pickle.loads(self._conn.recv_bytes())
        except (OSError, EOFError) as exc:
            lost = ", ".join(str(e) for e in self.pending_epochs)
            self.pending, self.pending_epochs = 0, []
            raise self._dead("no answer (%s); the checkpoint(s) of epoch %s were not explained"
                             % (exc or "end of stream", lost or "-")) from exc
        self.pending -= 1
        if self.pending_epochs:
            self.pending_epochs.pop(0)
        if kind != "reply":
            raise WorkerError("unexpected message from the explanation worker: %r" % (kind,))
        return reply

    def close(self, timeout=60):
        """Ask the child to close its VisualDL writer and exit; returns its final state
        (``{"codebook", "global_weights"}``) or None. Kills it if it does not exit in time."""
        state = None
        try:
            if self.alive():
                self._conn.send_bytes(pickle.dumps(("close", None)))
                if self._conn.poll(timeout):
                    kind, state = pickle.loads(self._conn.recv_bytes())
                    if kind != "closed":
                        state = None
        except (OSError, EOFError, pickle.UnpicklingError):
            state = None
        if state is None:
            self.terminate(timeout=timeout)
        else:  # it answered and is exiting: do not wait for Paddle's teardown
            try:
                self._conn.close()
            except OSError:
                pass
        return state

    def terminate(self, timeout=5):
        """Stop the child now (no goodbye)."""
        try:
            self._conn.close()
        except OSError:
            pass
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------------------ child side
class _ChildState:
    """What the child keeps across checkpoints: the session, the model (built once from the first
    checkpoint, then only its weights are loaded) and the classifier bound to it."""

    def __init__(self, init):
        import paddle

        from .session import ExplainSession

        paddle.set_device(device_or_cpu(init.get("device") or "cpu", "explanation worker"))
        self.num_threads = int(init["num_threads"])
        self.session = ExplainSession(init["probes"], weights_builder=init.get("weights_builder"),
                                      **init["options"])
        self.session.atlas_stage.announce = False  # the training process says the alarms
        self.model = None
        self.classifier = None

    def load(self, checkpoint_dir):
        import paddle

        if self.model is None:
            import paddlex

            self.model = paddlex.load_model(checkpoint_dir)
            from ..adapters.paddlex import PaddleXClassifier

            self.classifier = PaddleXClassifier(self.model, num_threads=self.num_threads)
        else:
            state = paddle.load(os.path.join(checkpoint_dir, "model.pdparams"))
            self.model.net.set_state_dict(state)
        return self.model


def _run_job(state, job):
    """Explain one :class:`~paddlex_interpret.training.report.CheckpointJob`; its
    :class:`~paddlex_interpret.training.report.CheckpointResult`. Never raises."""
    session = state.session
    if job.record_file and job.logdir:  # the run's one record file, which the parent names
        session.sink.log_files[os.path.abspath(job.logdir)] = job.record_file
    try:
        model = state.load(job.checkpoint_dir)
    except Exception as exc:
        session.log_error(None, job.context(), "load checkpoint", exc)
        return CheckpointResult(job.epoch, record_file=session.sink.log_file,
                                error="could not load checkpoint %s: %s: %s"
                                % (job.checkpoint_dir, type(exc).__name__, exc))
    context = job.context(state.classifier, model.net)
    try:
        report = session.explain_checkpoint(context)
    except Exception as exc:  # explain_checkpoint guards its stages; this is the last resort
        session.log_error(None, context, "checkpoint", exc)
        return CheckpointResult(job.epoch, record_file=session.sink.log_file,
                                error="%s: %s" % (type(exc).__name__, exc))
    return CheckpointResult(job.epoch, report=report, record_file=session.sink.log_file,
                            peak_rss_mib=_peak_rss_mib(), device=_device_info())


def _device_info():
    """Where this process explains, read inside it: Paddle's device, the cards it sees."""
    import paddle

    return {"device": paddle.get_device(), "gpus": gpu_count(),
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _peak_rss_mib():
    """This process's peak resident memory in MiB (None where ``resource`` is missing)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    except Exception:
        return None


def main(fd):
    from multiprocessing.connection import Connection

    logging.basicConfig(level=logging.INFO, format="[explain worker] %(levelname)s %(message)s")
    try:  # training comes first when both want a core
        os.nice(int(os.environ.get("PADDLEX_INTERPRET_WORKER_NICE", "10")))
    except (OSError, ValueError, AttributeError):
        pass
    conn = Connection(int(fd))
    state = None
    while True:
        try:
            kind, payload = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            break  # the parent went away
        if kind == "init":
            import paddlex_interpret  # noqa: F401  (the PaddleX compat alias, before paddlex)

            state = _ChildState(payload)
        elif kind == "checkpoint":
            reply = _run_job(state, payload)
            try:
                data = pickle.dumps(("reply", reply), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # an unpicklable report: send the numbers only
                if reply.report is not None:
                    reply.report.explanations = {}
                try:
                    data = pickle.dumps(("reply", reply), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:
                    data = pickle.dumps(("reply", CheckpointResult(
                        reply.epoch, error="unpicklable report: %s" % exc)))
            conn.send_bytes(data)
        elif kind == "close":
            final = None
            if state is not None:
                state.session.close()
                final = {"codebook": state.session.codebook,
                         "global_weights": state.session.global_weights}
            try:
                conn.send_bytes(pickle.dumps(("closed", final), protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:
                conn.send_bytes(pickle.dumps(("closed", None)))
            break
    if state is not None:
        state.session.close()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
