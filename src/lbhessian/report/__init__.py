"""Report layer: the summary table of all runs, claim verdicts, figures, tables and their writers."""
