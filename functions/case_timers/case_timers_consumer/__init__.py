"""The case_timers function's handlers."""
