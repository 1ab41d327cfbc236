"""Training one run: the SGD loop (loop) and its optimizer (sgd), the stop rule and its settledness check
(stopping), the run with resume, signals and outputs (run), and its history records (records)."""

from lbhessian.training.loop import evaluate, lr_at, resolve_batch_size, run_epoch, scaled_lr, speed_options, train_step
from lbhessian.training.records import HISTORY_FIELDS, read_history
from lbhessian.training.run import TrainFiles, train_run
from lbhessian.training.stopping import StopRule, settledness

__all__ = [
    "HISTORY_FIELDS",
    "StopRule",
    "TrainFiles",
    "evaluate",
    "lr_at",
    "read_history",
    "resolve_batch_size",
    "run_epoch",
    "scaled_lr",
    "settledness",
    "speed_options",
    "train_step",
    "train_run",
]
