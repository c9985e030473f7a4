"""The `crm` command and what it runs: the local cloud (local/), the commands that act on a
stage (ops/), and what is built from the source (build/); see docs/decisions.md, 71."""
