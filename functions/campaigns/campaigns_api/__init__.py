"""The campaigns function's routes."""
