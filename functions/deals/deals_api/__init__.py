"""The deals function's routes."""
