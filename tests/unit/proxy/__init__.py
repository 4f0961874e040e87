"""Tests of the proxy server core (controllers, backend, auth, pipeline) against fake nodes."""
