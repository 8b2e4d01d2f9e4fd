"""ddtrain for PyTorch users: ddtrain's solvers as torch.optim-style optimizers.

    import torch, ddtrain
    comm = ddtrain.init()          # MPI when launched by mpirun/srun, else one process
    opt = ddtrain.optim.LBFGS(model.parameters(), history=10)
    def closure():                 # this rank's mean loss over its shard
        opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss
    loss = opt.step(closure)       # one outer iteration

See docs/library-guide.md, section "Python", for the full API.
"""
import os as _os
import sys as _sys

import torch as _torch  # noqa: F401  (loads LibTorch and torch's Python bindings first)


def _preload_mpi():
    # Open MPI loads its components with dlopen and they need libmpi's symbols: a Python
    # extension is loaded RTLD_LOCAL, so make libmpi global first (as mpi4py does).
    import ctypes
    for name in ("libmpi.so.40", "libmpi.so"):
        try:
            ctypes.CDLL(name, mode=_os.RTLD_NOW | ctypes.RTLD_GLOBAL)
            return
        except OSError:
            continue


_preload_mpi()

from . import _core  # noqa: E402


class Error(RuntimeError):
    """Base of every error ddtrain raises (the C++ library's ddtrain::Error)."""


class InvalidArgument(Error, ValueError):
    """A bad option value or combination, a closure that returns something else than a scalar
    loss, a partition that does not fit the model."""


class IoError(Error, OSError):
    """A state could not be read or written."""


class CommError(Error):
    """A collective failed, or another rank failed (its own exception is raised there)."""


class NumericalError(Error, ArithmeticError):
    """The computation cannot continue, e.g. the loss is NaN or infinite at the current
    parameters."""


_core._set_exception_classes(Error, InvalidArgument, IoError, CommError, NumericalError)

Communicator = _core.Communicator
__version__ = _core.__version__

_world = None


def _abort_on_uncaught_exception(comm):
    # An uncaught exception on one rank would leave the others waiting in a collective: print
    # it and end the whole job (mpi4py's `-m mpi4py` does the same).
    previous = _sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        _sys.stderr.flush()
        _sys.stdout.flush()
        comm.abort(1)

    _sys.excepthook = hook


def init(backend="auto", abort_on_error=True):
    """The world communicator (call once, before creating optimizers).

    backend: "auto" (MPI when the process was started by mpirun/srun, else a single process),
    "mpi" or "self". Returns a Communicator with `rank`, `size`, `backend`, `barrier()`,
    `allreduce_sum(tensor)`, `broadcast(tensor, root=0)` and `abort(code)`. With more than one
    rank and `abort_on_error`, an uncaught Python exception ends the whole job (MPI_Abort)
    instead of leaving the other ranks waiting. Calling init() again returns the same
    communicator.
    """
    global _world
    if _world is None:
        _world = _core.make_communicator(backend)
        if abort_on_error and _world.size > 1:
            _abort_on_uncaught_exception(_world)
    elif backend not in ("auto", _world.backend):
        raise InvalidArgument(
            f"ddtrain.init(backend={backend!r}): already initialised with backend {_world.backend!r}")
    return _world


def world():
    """The communicator of init() (initialising with backend "auto" if needed)."""
    return init()


from . import optim  # noqa: E402

__all__ = ["init", "world", "optim", "Communicator", "Error", "InvalidArgument", "IoError",
           "CommError", "NumericalError"]
