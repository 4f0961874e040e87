"""ringstack proxy package (built in later issues)."""
