"""The report writers: report.md, summary.json, tables, plots, README findings.

write_report(run_dir) (bench.analysis.report.markdown) is what `bench run` calls at the end and
`bench report RUN_DIR` calls to rebuild."""

from bench.analysis.report.markdown import PLOTS_DIR, REPORT_FILE, SUMMARY_FILE, write_report  # noqa: F401
