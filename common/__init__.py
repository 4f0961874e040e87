"""Shared server plumbing: config loading, timestamps, API constraints, storage policies,
Swift's HTTP rules (Range, conditional requests) and status lines, WSGI serving.

Everything above the ring may import from here; nothing here imports any other ringstack
package.
"""
