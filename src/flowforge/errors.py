"""Every error flowforge raises on purpose, in one hierarchy.

``FlowforgeError`` is the base of them all. Each also derives from the built-in
exception a caller would expect (``ValueError`` for bad input, ``RuntimeError`` for a
failed collective, ...), so ``except ValueError`` keeps working. Messages name the
problem and the fix in one line; the command line prints an ``InputError`` as that
line, without a traceback, and exits with code 2.

::

    FlowforgeError
    ├── InputError (ValueError)          a file, folder, option or value the user supplied
    │   ├── RunError                     a run folder missing, incomplete or unbuildable
    │   ├── CheckpointError              a weights or checkpoint file missing or damaged
    │   ├── DataFileError                a points file that cannot be read or does not fit
    │   ├── LaunchError                  processes started in a way training cannot use
    │   └── NoDensityError               a density asked of a distribution known by samples only
    ├── DivergedError (FloatingPointError)  training produced a non-finite loss
    ├── DistributedError (RuntimeError)  a collective failed: a peer died, hung or vanished
    ├── FlowCheckError (AssertionError)  a layer broke the flow contract (``check_flow``)
    └── NoLikelihoodError (TypeError)    a likelihood asked of a model without one (a GAN)
"""


class FlowforgeError(Exception):
    """The base of every error flowforge raises on purpose."""


class InputError(FlowforgeError, ValueError):
    """A problem with a file, folder, option or value the user supplied.

    Its message names the problem and the fix; the command line prints it as one line.
    """


class RunError(InputError):
    """A run folder that is missing, incomplete, or describes a model flowforge cannot build."""


class CheckpointError(InputError):
    """A weights or checkpoint file is missing, truncated, corrupt or of the wrong kind."""


class DataFileError(InputError):
    """A points file that cannot be read or does not fit the model: says which and why."""


class LaunchError(InputError):
    """The processes were started in a way data-parallel training cannot use (the same
    message on every process; the fix is in how they are launched or fed)."""


class NoDensityError(InputError):
    """A density (``log_prob``, an entropy) was asked of a distribution flowforge knows only
    by its samples; such a data set is scored by sample distances."""


class DivergedError(FlowforgeError, FloatingPointError):
    """Training produced a NaN or infinite loss; the message says where and what to try."""


class DistributedError(FlowforgeError, RuntimeError):
    """A collective operation failed: another process died, hung or could not be reached."""


class FlowCheckError(FlowforgeError, AssertionError):
    """A layer broke the flow contract; the message says which part and by how much."""


class NoLikelihoodError(FlowforgeError, TypeError):
    """``log_prob`` of a model that defines no density (a GAN): it can only be sampled."""
