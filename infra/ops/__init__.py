"""The commands that act on a stage, local or deployed (`crm events`, `crm tenant`, `crm user`,
`crm token`, `crm webhook send`, `crm seed`): through AWS's APIs and the HTTP API only, never
through the local cloud's code (tests/unit/test_layers.py keeps it so)."""
