"""The report page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
selenium) opens results/report.html, clicks to the claims, a figure and the per-run table, and fails on a
JavaScript error or an empty view. Installs the browser with apt-get where it can (as the SLURM tests install
SLURM); skips only where no browser can be installed, and fails instead when CI=true."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lbhessian.report.figures import FIGURES
from testing_helpers import synthetic_claims, synthetic_results

# A real browser (installed with apt where it can be): part of `make test`, not of `make check`.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["chromium", "chromium-driver"]


def _unavailable(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"no browser for the report test on CI: {why}")
    pytest.skip(f"no browser can be installed here, report browser test skipped: {why}")


def _install() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages when missing."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        _unavailable("chromium is not installed and apt-get cannot install it (no apt-get, or not root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=900)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            _unavailable(f"apt-get could not install {' '.join(PACKAGES)}: {done.stderr[-300:]}")
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _install()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (envs/requirements-dev.txt pins it)")
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """results/report.html made by the real `page` step from synthetic runs, every figure kind and claims.json."""
    from lbhessian.report.figures import make_figures
    from lbhessian.steps import page

    root = tmp_path_factory.mktemp("report")
    df = synthetic_results(root, diverged={(256, 1)})
    exp, res = "mnist5k_M1", root / "results"
    png = [res / f"figures/{exp}/{k}.png" for k in FIGURES]
    settings = {"headline_eps": 0.1, "claims": {}, "config": {}, "path": None}
    make_figures(df, exp, FIGURES, png, [p.with_suffix(".pdf") for p in png], settings, base=root)
    (res / "claims.json").write_text(json.dumps(synthetic_claims()))
    captions = [str(REPO / f"workflow/report/fig_{k}.rst") for k in FIGURES]
    page.main(REPO / "params.yaml", res / "summary.csv", res / "claims.json", [exp], FIGURES, png, captions,
              res / "report.html")  # fmt: skip
    return res / "report.html"


def _shown(driver):
    """The one view on screen, checked not empty: it has text and height."""
    from selenium.webdriver.common.by import By

    views = [v for v in driver.find_elements(By.CSS_SELECTOR, "section.view") if v.is_displayed()]
    assert len(views) == 1, [v.get_attribute("id") for v in views]
    assert len(views[0].text) > 80 and views[0].size["height"] > 150, views[0].get_attribute("id")
    return views[0]


def test_report_in_a_browser_reaches_claims_figure_and_runs(browser, report):
    """Catches: views that never show (CSS :target broken), a link to nothing, an image that does not decode,
    a caption not under its figure, a per-run table missing runs, and any JavaScript error."""
    from selenium.webdriver.common.by import By

    d = browser
    d.get(report.as_uri())
    home = _shown(d)
    assert home.get_attribute("id") == "verdicts"
    assert len(home.find_elements(By.CSS_SELECTOR, "tbody tr")) == 2  # the two claims of claims.json
    assert "holds" in home.text and "[-7 %, -3 %]" in home.text

    home.find_element(By.LINK_TEXT, "check 1a").click()
    view = _shown(d)
    assert view.get_attribute("id") == "checks" and d.find_element(By.ID, "checks-1").is_displayed()

    d.find_element(By.LINK_TEXT, "Verdicts").click()
    _shown(d).find_element(By.LINK_TEXT, "figure").click()
    fig = d.find_element(By.ID, "fig-mnist5k_M1-lambda1_vs_batch")
    assert _shown(d).get_attribute("id") == "figures-mnist5k_M1" and fig.is_displayed()
    img = fig.find_element(By.TAG_NAME, "img")
    assert d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 300
    assert "lambda_1" in fig.find_element(By.TAG_NAME, "figcaption").text

    d.find_element(By.LINK_TEXT, "Every run").click()
    view = _shown(d)
    assert view.get_attribute("id") == "tables" and d.find_element(By.ID, "runs-mnist5k_M1").is_displayed()
    runs = d.find_element(By.ID, "run-mnist5k_M1-training")
    assert len(runs.find_elements(By.CSS_SELECTOR, "tbody tr")) == 10 and "diverged" in runs.text

    d.find_element(By.LINK_TEXT, "Experiment").click()
    assert "at least twice as sharp" in _shown(d).text
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
