"""The live servers of the hostile-user suite, one per backend for the session: :mod:`hostile_live`."""

from hostile.hostile_live import fresh_throttle, live  # noqa: F401  (fixtures)
