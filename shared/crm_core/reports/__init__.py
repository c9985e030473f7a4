"""Reports: aggregates kept as records change (contributions.py, aggregates.py), in the
tenant's periods (periods.py), one module per report for what a record contributes."""
