"""When a run stops (``train.stop``), and whether what the claims compare had stopped moving there.

Rules: ``epochs`` (a budget) or ``target_loss`` (the first evaluation whose training loss on the whole training
set is at or below the target, with ``stop.epochs`` as the cap). Two settings make the end point a settled one:

- ``stop.anneal``: once an evaluation's training loss is at or below ``at_loss``, the lr is multiplied by
  ``factor`` for the rest of the run (the paper's recipes also end at a decayed lr). At a full lr the loss of a
  small batch oscillates and its lambda_1 jumps between epochs; the target is then only accepted after the
  settling phase has begun, so the run ends on a smooth descent rather than at a lucky dip.
- ``stop.check_samples``: the stop rule is evaluated each time this many training samples have passed (in whole
  optimizer steps), not only at the end of an epoch: a batch-16 epoch is 38 steps of 600 images, enough to
  overshoot a 0.01 target to 0.0004 (seen in pilots), which would compare sharpness at a 25 times lower loss.

``settledness`` measures it afterwards: the relative change of lambda_1 and of the training loss over the run's
last evaluations (``stop.settle.window`` of them: the last stop checks, a few optimizer steps apart with
``check_samples``), written to metrics.json and summary.csv; an unsettled run is named in the claims. The weights
of those evaluations are kept during training and lambda_1 is measured on each at the end (on the tracking
sample), so the check costs ``window`` small solves whether or not lambda_1 is tracked during training.
"""

from __future__ import annotations

import copy
import math

from lbhessian.curvature import track as track_curvature


class StopRule:
    """The mutable state of one run's stop rule; ``state()`` / ``restore()`` carry it through a resume."""

    def __init__(self, stop: dict, batch_size: int):
        self.rule = stop["rule"]
        self.target = stop["target_loss"] if self.rule == "target_loss" else None
        anneal = stop.get("anneal") or {}
        self.anneal_at = anneal.get("at_loss")
        self.factor = float(anneal["factor"]) if anneal else 1.0  # the schema fills the default in
        samples = stop.get("check_samples")
        self.check_steps = math.ceil(samples / batch_size) if samples else None
        self.settling_from: int | None = None  # optimizer step at which the settling phase began
        self.reached = False

    def lr_scale(self) -> float:
        return self.factor if self.settling_from is not None else 1.0

    def checks_at(self, step: int) -> bool:
        """Whether the stop rule is evaluated after global optimizer step ``step`` (besides epoch ends): every
        ``check_steps`` from the start, so that the settling phase too begins near ``at_loss`` (checked only at
        epoch ends, one batch-16 epoch took the loss from 0.05 past the target, leaving a settling phase of 4
        steps: every such pilot run was unsettled)."""
        return bool(self.check_steps) and step % self.check_steps == 0

    def observe(self, loss: float, step: int) -> bool:
        """Record an evaluation of the whole training loss after ``step`` optimizer steps; True: stop here."""
        began = self.settling_from is not None and self.settling_from < step
        if self.anneal_at is not None and self.settling_from is None and loss <= self.anneal_at:
            self.settling_from = step
        if self.target is not None and loss <= self.target and (self.anneal_at is None or began):
            self.reached = True
        return self.reached

    def state(self) -> dict:
        return {"settling_from": self.settling_from, "reached": self.reached}

    def restore(self, state: dict | None) -> None:
        if state:
            self.settling_from, self.reached = state["settling_from"], state["reached"]


def relative_change(values) -> float:
    """(max - min) / |last| of finite values; NaN with fewer than two."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if len(v) < 2 or v[-1] == 0:
        return math.nan
    return (max(v) - min(v)) / abs(v[-1])


def settledness(points: list[dict], settle: dict) -> dict:
    """Relative change of lambda_1 and of the training loss over ``points``, the run's last ``settle["window"]``
    evaluations ({"step", "train_loss", "lambda1"}), and whether both are within ``settle["max_lambda_change"]``
    and ``settle["max_loss_change"]``. ``settled`` is None with fewer than two points (nothing to compare)."""
    lam = relative_change([p["lambda1"] for p in points])
    loss = relative_change([p["train_loss"] for p in points])
    settled = None
    if math.isfinite(lam) and math.isfinite(loss):
        settled = lam <= settle["max_lambda_change"] and loss <= settle["max_loss_change"]
    steps = [p["step"] for p in points]
    return {
        "settle_lambda1_change": lam,
        "settle_loss_change": loss,
        "settled": settled,
        "settle_steps": (steps[-1] - steps[0]) if len(steps) > 1 else 0,
        "settle_points": points,
    }


def settle_points(model, recent, x, y, iters) -> list[dict]:
    """lambda_1 (tracking solve, warm-started from the previous point) at each kept evaluation's weights."""
    probe, vector, points = copy.deepcopy(model), None, []
    for kept in recent:
        probe.load_state_dict(kept["state"])
        measured = track_curvature(probe, x, y, iters, v0=vector)
        vector = measured["vector"]
        points.append({"step": kept["step"], "train_loss": kept["train_loss"], "lambda1": measured["lambda1"]})
    return points
