"""Lead scoring: a per-tenant model, and scores that decay with time without any job."""
