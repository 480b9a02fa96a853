"""Analysis of a run folder: records -> frame -> fits -> claims -> plots -> report.md.

frame.py   records.jsonl + meta.json -> pandas DataFrame with derived columns
fits.py    power-law fits (Theil-Sen + bootstrap CI), local slopes, the two-term NNLS model
claims.py  which exponents the theory predicts, the asymptotic-range rule, the verdicts
plots.py   matplotlib (Agg) figures, one function per figure
report.py  write_report(run_dir): report.md, summary.json, plots/*.png
compare.py two runs case by case: time ratio, Mann-Whitney U, regressions
"""
