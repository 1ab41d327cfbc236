"""``lbhessian miniature``: write the miniature of a config (core/miniature.py): the same experiments, modes,
data sets, networks, batch labels, eps grids and stop rules with only the sizes shrunk, results under
``<results>/miniature``. Run it with ``snakemake --configfile <out>`` (``make miniature`` does both)."""

import sys
from pathlib import Path

import yaml

from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_text, write_text
from lbhessian.core.miniature import miniature


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def main(*, config, out, local_dir=None):
    try:
        source = yaml.safe_load(read_text(config, "config file"))
    except yaml.YAMLError as e:
        raise LbhError(f"{config}: not valid YAML ({str(e).splitlines()[0]})") from None
    for item in local_dir or []:
        dataset, sep, directory = item.partition("=")
        if not sep or not dataset or not directory:
            raise LbhError(f"miniature --local-dir: expected DATASET=DIR, got {item!r}")
        source.setdefault("data", {}).setdefault("local_dirs", {})[dataset] = directory
    mini = miniature(source, str(config))
    header = f"# The miniature of {config} (written by `lbhessian miniature`; edit {config}, not this file)\n"
    text = header + yaml.dump(mini, Dumper=_NoAliases, sort_keys=False, default_flow_style=None)
    path = Path(out)
    if not path.is_file() or path.read_text() != text:  # unchanged: no new mtime, so the report rules stay done
        write_text(path, text)
    print(out)
    print(f"{out}: written; run it with snakemake --configfile {out}", file=sys.stderr)
