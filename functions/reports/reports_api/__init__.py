"""The reports function's parts: the reports (reports.py), their CSV form (csv_rows.py), the
report settings (settings.py) and what the routes share (context.py)."""
