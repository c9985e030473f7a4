"""The `crm` command: the local cloud, tenant and user admin, deploy helpers."""
