"""Report stage: pareto.csv, plots, report.html."""
