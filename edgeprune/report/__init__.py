"""Report stage: pareto.csv, plots, influential filters, report.html and the run manifest."""
