"""What a training run leaves behind as it goes: history.csv rows and progress lines."""

import csv
import sys

from lbhessian.core.io import read_text, write_text

# epoch: epochs done (a fraction for a run that the stop rule ended within an epoch); track_matvecs: Hessian-
# vector products of that row's lambda_1 (fewer when warm-started from the previous row's eigenvector).
HISTORY_FIELDS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "lambda1",
    "grad_norm",
    "track_matvecs",
]


def write_history(path, history):
    lines = [",".join(HISTORY_FIELDS)]
    for row in history:
        lines.append(",".join("" if row.get(k) is None else repr(row[k]) for k in HISTORY_FIELDS))
    write_text(path, "\n".join(lines) + "\n")


def read_history(path):
    lines = read_text(path, "history").splitlines()
    return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(lines)]


class Progress:
    """A progress bar on a terminal, one plain line per epoch in logs ("epoch 3/4": of all epochs of the run,
    also when it resumed)."""

    def __init__(self, total_epochs, steps_left, label):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=steps_left, desc=label, unit="step", leave=False)
        self.label, self.total = label, total_epochs

    def step(self):
        if self.bar:
            self.bar.update()

    def epoch(self, row):
        line = (
            f"{self.label} epoch {row['epoch']:g}/{self.total} lr {row['lr']:.4g} "
            f"train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f} "
            f"test_acc {row['test_acc']:.4f} {row['seconds']:.1f}s"
        )
        if row.get("lambda1") is not None:
            line += f" lambda_1 {row['lambda1']:.4g}"
        if self.bar:
            self.bar.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar:
            self.bar.close()
