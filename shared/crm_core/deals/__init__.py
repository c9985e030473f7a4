"""Deals and pipelines (issue 19): the pipeline model, deals, their history, board and forecast."""
