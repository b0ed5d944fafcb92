"""Test support: real brokers and databases started per test session on their own ports."""
