"""Tests of storage_node: mirrors the package."""
