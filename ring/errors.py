"""Typed errors of the ring package; the CLI and servers map these to messages and statuses."""


class RingError(Exception):
    """Base of every error the ring package raises on purpose."""


class RingBuilderError(RingError):
    """A builder operation that cannot be done as asked (bad value, impossible topology)."""


class RingFileError(RingError):
    """A builder or ring file that is missing, corrupt, truncated or of an unknown version."""


class RingValidationError(RingError):
    """A ring whose assignment breaks an invariant (unassigned slot, two replicas on a device)."""
