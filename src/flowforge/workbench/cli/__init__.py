"""The ``flowforge`` command line."""
