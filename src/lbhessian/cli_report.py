"""Report subcommands (`collect`, `figures`, `tables`, `claims`): thin wrappers over the modules."""

import sys
from pathlib import Path


def cmd_collect(args):
    from .claims import load_report_config
    from .collect import collect, headline_metrics, write_plot_data
    from .errors import LbhError
    from .io import write_json

    settings = load_report_config(args.config)
    base = Path(args.base)
    # Explicit metrics.json files (the workflow's grid) win over globbing the runs directory.
    run_dirs = [Path(m).parent for m in args.metrics_files] if args.metrics_files else None
    if run_dirs is None and not args.runs:
        raise LbhError("collect: give --runs DIR or the runs' metrics.json files")
    df = collect(args.runs, relative_to=base, run_dirs=run_dirs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    if args.metrics:
        write_json(args.metrics, headline_metrics(df, settings["headline_eps"]))
    if args.plots:
        write_plot_data(df, args.plots, base=base, headline_eps=settings["headline_eps"])
    print(f"{args.out}: {len(df)} runs", file=sys.stderr)


def cmd_figures(args):
    from .collect import read_summary
    from .figures import make_figures

    df = read_summary(args.summary)
    written = make_figures(df, args.out, config=args.config, base=args.base, names=args.experiment, kinds=args.kind)
    print(f"{args.out}: {len(written)} figure files", file=sys.stderr)


def cmd_tables(args):
    from .collect import read_summary
    from .tables import write_tables

    written = write_tables(read_summary(args.summary), args.out, names=args.experiment)
    print(f"{args.out}: {len(written)} table files", file=sys.stderr)


def cmd_claims(args):
    from .claims import evaluate, load_report_config, to_html, to_markdown
    from .collect import read_summary
    from .io import write_json, write_text

    result = evaluate(read_summary(args.summary), load_report_config(args.config))
    write_json(args.out, result)
    if args.markdown:
        write_text(args.markdown, to_markdown(result))
    if args.html:
        write_text(args.html, to_html(result))
    verdicts = ", ".join(f"{k}: {v['verdict']}" for k, v in result["claims"].items())
    print(f"{args.out}: {verdicts}", file=sys.stderr)


def register(sub):
    """Add the report subcommands to the main CLI's subparsers."""
    s = sub.add_parser("collect", help="gather every run's outputs into summary.csv (+ headline metrics, plot data)")
    s.add_argument("metrics_files", nargs="*", help="metrics.json of each run to collect (default: all under --runs)")
    s.add_argument("--runs", help="runs directory to search (results/runs) when no metrics.json files are given")
    s.add_argument("--out", required=True, help="summary CSV to write")
    s.add_argument("--metrics", help="headline-metrics JSON for `dvc metrics`")
    s.add_argument("--plots", help="directory for the tidy `dvc plots` CSVs")
    s.add_argument("--config", help="config (for attack.headline_eps)")
    s.add_argument("--base", default=".", help="run_dir column is stored relative to this (default: .)")
    s.set_defaults(func=cmd_collect)

    s = sub.add_parser("figures", help="draw every figure (PNG + PDF) from summary.csv")
    s.add_argument("--summary", required=True)
    s.add_argument("--out", required=True, help="figures directory: {out}/{dataset}_{model}/{kind}.png")
    s.add_argument("--config", help="config (thresholds, headline eps; named in each figure)")
    s.add_argument("--base", default=".", help="directory that summary.csv's run_dir paths are relative to")
    s.add_argument("--experiment", action="append", help="{dataset}_{model} that must get figures (repeatable)")
    s.add_argument("--kind", action="append", help="only this figure kind (repeatable; default all)")
    s.set_defaults(func=cmd_figures)

    s = sub.add_parser("tables", help="per dataset/model tables (CSV, Markdown, HTML) from summary.csv")
    s.add_argument("--summary", required=True)
    s.add_argument("--out", required=True, help="tables directory")
    s.add_argument("--experiment", action="append", help="{dataset}_{model} that must get a table (repeatable)")
    s.set_defaults(func=cmd_tables)

    s = sub.add_parser("claims", help="verdict for each claim of the paper from summary.csv")
    s.add_argument("--summary", required=True)
    s.add_argument("--out", required=True, help="claims JSON")
    s.add_argument("--markdown", help="claims as a Markdown table")
    s.add_argument("--html", help="claims as a self-contained HTML page (for the report)")
    s.add_argument("--config", help="config (report.claims thresholds, attack.headline_eps)")
    s.set_defaults(func=cmd_claims)
