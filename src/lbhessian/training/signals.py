"""Stop signals from a scheduler: noted during training, acted on at the next safe point (after a step)."""

import signal
import threading

# What a scheduler sends before it kills a job: SLURM sends SIGTERM at the time limit and on preemption (and
# profiles/slurm asks for it early with --signal); SIGUSR1 where a cluster's warning signal is that one.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """While active, a stop signal only sets ``received``: training saves its state at the next step."""

    def __init__(self):
        self.received, self._previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
