"""Numbers as a person reads them on the report page: 2-3 significant digits, in the units of the quantity.

claims.json keeps numbers for machines (accuracies as fractions, slopes of log2 values, slopes per unit eps);
``quantity`` turns one check's effect and interval into what it means: a factor ("4.4x"), percentage points
("+1.8 pp per doubling of batch"), a factor per 0.1 eps, a share of runs. p-values get two significant digits
and say which way the one-sided test points."""

import math
import re

EPS_STEP = 0.1  # slopes on the training eps are shown per this much eps (MNIST's range is 0.05-0.3)


def finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def sig(v, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, plain (no exponent) between 1e-3 and 1e5; "-" for none."""
    if not finite(v):
        return "-"
    v = float(v)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        decimals = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
        text = f"{round(v, decimals):.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text  # 0.0200 -> 0.02, 4.00 -> 4
        return "0" if float(text) == 0 else text
    mant, exp = f"{v:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}e{int(exp)}"


def signed(v, digits: int = 2) -> str:
    text = sig(v, digits)
    return text if text.startswith("-") or text in ("-", "0") else f"+{text}"


def pct(fraction, digits: int = 3) -> str:
    """An accuracy (a fraction) in %: 0.708 -> "70.8 %"."""
    return "-" if not finite(fraction) else f"{sig(100 * float(fraction), digits)} %"


def p_value(p, alternative: str = "") -> str:
    """ "p = 0.012 (one-sided, H1: > 0)"; "p < 0.001" below a thousandth; "" when there is none."""
    if not finite(p):
        return ""
    text = "p < 0.001" if p < 1e-3 else f"p = {sig(p, 2)}"
    return f"{text} ({alternative})" if alternative else text


# check id pattern -> (transform of effect and interval ends, unit text, signed?)
QUANTITIES = [
    # slope of log2 y on log2 batch: y multiplies by 2**slope per doubling of the batch
    (r"^(1a|5b|5c)$", lambda v: 2.0**v, "x per doubling of batch", False),
    # slope of log2 lambda_1 on the training eps: a factor per EPS_STEP of training eps
    (r"^7a\b", lambda v: 2.0 ** (EPS_STEP * v), f"x per {EPS_STEP:g} training eps", False),
    # accuracy (fraction) per doubling of the batch, in percentage points
    (r"^5a\b", lambda v: 100 * v, "pp per doubling of batch", True),
    # accuracy per unit training eps: percentage points per EPS_STEP
    (r"^7[bc]\b", lambda v: 100 * EPS_STEP * v, f"pp per {EPS_STEP:g} training eps", True),
    # test accuracy difference (fraction): percentage points
    (r"^4$", lambda v: 100 * v, "pp", True),
    # share of runs
    (r"^3b$", lambda v: 100 * v, "% of runs", False),
]


def quantity(check: dict):
    """(transform, unit, signed) of one check's effect: by its check id, else by claims.json's ``unit``."""
    cid = str(check.get("check") or "")
    for pattern, fn, unit, sign in QUANTITIES:
        if re.search(pattern, cid):
            return fn, unit, sign
    unit = str(check.get("unit") or "")
    if unit == "x":
        return float, "x", False
    if "fraction" in unit or "accuracy" in unit:
        return lambda v: 100 * v, "pp", True
    return float, unit, False


def _value(v, fn, unit, sign) -> str:
    if not finite(v):
        return "-"
    x = fn(float(v))
    text = signed(x) if sign else sig(x, 2 if abs(x) < 1e-3 and x != 0 else 3)
    return f"{text}x" if unit.startswith("x") else text


def effect(check: dict) -> str:
    """The effect and its 95% interval in plain units: "4.4x [3.2x, 6.0x]", "+1.8 pp per doubling of batch
    [-0.5, +4.1]"; "-" when the check has no estimate."""
    fn, unit, sign = quantity(check)
    e = check.get("effect")
    if not finite(e):
        return "-"
    text = _value(e, fn, unit, sign)
    tail = unit[1:].strip() if unit.startswith("x") else unit
    lo, hi = check.get("ci_low"), check.get("ci_high")
    ci = f" [{_value(lo, fn, unit, sign)}, {_value(hi, fn, unit, sign)}]" if finite(lo) and finite(hi) else ""
    return f"{text}{' ' + tail if tail else ''}{ci}"


def threshold(check: dict) -> str:
    """The threshold phrase of claims.json with its numbers in the effect's units where they are plain."""
    text = str(check.get("threshold") if check.get("threshold") is not None else "-")
    fn, unit, sign = quantity(check)
    m = re.fullmatch(r"95% interval (above|below) (-?[\d.e+-]+)(.*)", text)
    if not m or unit in ("", "x"):
        return text
    tail = unit[1:].strip() if unit.startswith("x") else unit
    return f"95% interval {m.group(1)} {_value(float(m.group(2)), fn, unit, sign)} {tail}{m.group(3)}"


def means_by_batch(detail: str, check: dict) -> str:
    """'mean bs16 0.708 -> bs256 0.726' (a check's detail) in the check's units: "70.8 % at batch 16,
    72.6 % at 256"; "" when the detail holds no such pair."""
    m = re.search(r"mean bs(\d+) (\S+) -> bs(\d+) (\S+)", detail or "")
    if not m:
        return ""
    acc = "fraction" in str(check.get("unit") or "") or re.match(r"^(4|5a|7[bc])\b", str(check.get("check") or ""))
    show = pct if acc else sig
    try:
        a, b = float(m.group(2)), float(m.group(4))
    except ValueError:
        return ""
    return f"{show(a)} at batch {m.group(1)}, {show(b)} at {m.group(3)}"


def check_p(check: dict) -> str:
    """One check's p-value with its alternative in the effect's units: "p = 0.9 (one-sided, H1: > 1x per
    doubling of batch)" for a slope of log2 values whose claims.json alternative reads "H1: > 0"."""
    alt = str(check.get("p_alternative") or "")
    m = re.fullmatch(r"one-sided, H1: ([<>]) (-?[\d.e+-]+)", alt)
    if m:
        fn, unit, sign = quantity(check)
        tail = unit[1:].strip() if unit.startswith("x") else unit
        alt = f"one-sided, H1: {m.group(1)} {_value(float(m.group(2)), fn, unit, sign)}" + (f" {tail}" if tail else "")
    return p_value(check.get("p_value"), alt)
