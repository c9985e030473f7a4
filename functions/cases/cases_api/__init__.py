"""The cases function's routes."""
