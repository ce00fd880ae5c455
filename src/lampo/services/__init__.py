"""Use cases that tie the domain rules to storage."""
