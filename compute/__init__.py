"""ringstack compute package (built in later issues)."""
