"""ringstack block package (built in later issues)."""
