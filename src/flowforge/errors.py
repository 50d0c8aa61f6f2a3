"""The base class of errors about the user's inputs: files, folders, options."""


class InputError(ValueError):
    """A problem with a file, folder or value the user supplied.

    Its message names the problem and the fix; the command line prints it as one line.
    """
