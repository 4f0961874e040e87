"""Shared server plumbing: config loading, timestamps, API constraints, WSGI serving.

Everything above the ring may import from here; nothing here imports any other ringstack
package.
"""
