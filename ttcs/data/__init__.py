"""Data files shipped with the hub (sample policies)."""
