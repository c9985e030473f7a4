"""The deal_rotting consumer."""
