"""ringstack identity package (built in later issues)."""
