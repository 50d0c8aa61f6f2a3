"""The version of flowforge: one place, read by the package, its metadata and its runs."""

__version__ = "0.1.0"
