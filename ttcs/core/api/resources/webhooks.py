"""``/webhooks`` (placeholder until the sender lands)."""
