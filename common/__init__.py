"""ringstack common package (built in later issues)."""
