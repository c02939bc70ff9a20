"""API keys, roles, tenants, per-key rate limits and the audit log."""
