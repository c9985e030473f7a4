"""The deal_contacts consumer."""
