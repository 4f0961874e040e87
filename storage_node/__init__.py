"""ringstack storage_node package (built in later issues)."""
