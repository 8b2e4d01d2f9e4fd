"""ddtrain's solvers as torch.optim optimizers: LBFGS, BFGS, PLBFGS, SAPTS.

Every optimizer re-points the parameters it is given into views of ONE flat tensor (and their
gradients into one flat gradient), as ddtrain::FlatParameters does in C++: the model keeps
working unchanged, and the solver reads and writes the flat vector without copies.

Data parallelism and loss integrity: with a communicator of size P (ddtrain.init() under
mpirun), every rank passes a closure that returns the MEAN loss over ITS shard; each evaluation
is one fused allreduce of [gradient * n_r, loss * n_r, n_r], so the loss is
sum_r n_r L_r / sum_r n_r (n_r = shard_size, equal weights when not given) and every line-search
and trust-region decision is taken on the same allreduced values on every rank: the iterates
equal the serial ones up to rounding and no rank waits for another. Initial parameters are
broadcast from rank 0 when the optimizer is created.
"""
import math

import torch

from . import _core
from . import InvalidArgument, init

__all__ = ["LBFGS", "BFGS", "PLBFGS", "SAPTS"]


def _named_parameters(params):
    """(name, tensor) pairs from a Module, an iterable of tensors, of (name, tensor) pairs or
    of param-group dicts (one group only)."""
    if isinstance(params, torch.nn.Module):
        return [(n, p) for n, p in params.named_parameters()]
    if isinstance(params, torch.Tensor):
        raise InvalidArgument("params must be an iterable of tensors or a Module, got a single tensor "
                              "(wrap it in a list)")
    items = list(params)
    if items and isinstance(items[0], dict):
        if len(items) != 1:
            raise InvalidArgument("ddtrain optimizers take one parameter group, got %d" % len(items))
        extra = set(items[0]) - {"params"}
        if extra:
            raise InvalidArgument("per-group options are not supported (got %s); pass them as keywords"
                                  % ", ".join(sorted(extra)))
        items = list(items[0]["params"])
    named = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            named.append((item[0], item[1]))
        elif isinstance(item, torch.Tensor):
            named.append(("p%d" % i, item))
        else:
            raise InvalidArgument("params[%d] is a %s, not a tensor" % (i, type(item).__name__))
    return named


class _Optimizer(torch.optim.Optimizer):
    """What all ddtrain optimizers share (not constructed directly)."""

    _solver = None  # the C++ solver's name

    def __init__(self, params, options, comm=None, shard_size=None, full_batch=True, max_iter=1,
                 groups=None, subdomains=0, overlap=0, layer_of=None):
        self._options = dict(options)
        named = _named_parameters(params)
        if not named:
            raise InvalidArgument("the optimizer got an empty parameter list")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise InvalidArgument("max_iter must be an integer >= 1, got %r" % (max_iter,))
        if comm is None:
            comm = init()
        if not isinstance(comm, _core.Communicator):
            raise InvalidArgument("comm must be a ddtrain.Communicator (from ddtrain.init())")
        defaults = dict(options, max_iter=max_iter, shard_size=shard_size, full_batch=full_batch)
        super().__init__([p for _, p in named], defaults)
        self._names = [n for n, _ in named]
        self.max_iter = max_iter
        self._engine = _core.Engine(self._solver, {k: v for k, v in options.items() if v is not None},
                                    named, comm, groups or [], int(subdomains), int(overlap),
                                    None if shard_size is None else float(shard_size), bool(full_batch),
                                    layer_of or {})
        #: The StepSummary of the last iteration as a dict (loss, gradient_norm, step_length,
        #: radius, accepted, evaluation counts, termination, message); None before the first.
        self.last_step = None

    # -- torch.optim API ---------------------------------------------------------------------
    def zero_grad(self, set_to_none=False):
        """Zeroes the flat gradient in place (the gradients stay views of it)."""
        self._engine.zero_grad()

    def step(self, closure=None, **kwargs):
        """Runs max_iter outer iterations (default one; fewer if the solver converges) and returns
        the loss at the new parameters as a 0-dim float64 tensor (allreduced under MPI).

        The closure computes this rank's loss and calls backward(), as for torch.optim.LBFGS;
        ddtrain zeroes the gradients before each call. A closure that raises propagates its
        exception (under MPI the other ranks raise ddtrain.CommError naming the rank); a
        closure that returns a non-scalar raises ddtrain.InvalidArgument; a NaN or infinite
        loss at the current parameters raises ddtrain.NumericalError (NaN at line-search trial
        points only shortens the step). A line search that finds no decrease is not an error:
        see `last_step["termination"]`.
        """
        if closure is None:
            raise InvalidArgument("%s.step() needs a closure that returns the loss" % type(self).__name__)
        if not callable(closure):
            raise InvalidArgument("the closure must be callable")
        summary = None
        for _ in range(self.max_iter):
            summary = self._step_once(closure, **kwargs)
            self.last_step = summary
            if summary["termination"] != "running":
                break
        return torch.tensor(summary["loss"], dtype=torch.float64)

    def _step_once(self, closure, **kwargs):
        if kwargs:
            raise InvalidArgument("unexpected step() arguments: %s" % ", ".join(sorted(kwargs)))
        return self._engine.step(closure)

    def state_dict(self):
        """The solver's whole state (memories, Hessian approximation, radii, counters) for an
        exact resume: save it with the model's state_dict; load both to continue bit for bit."""
        return {
            "state": {"ddtrain": self._engine.state(), "solver": self._solver,
                      "dimension": self._engine.dimension, "steps": self._engine.steps},
            "param_groups": [dict(self.defaults, params=list(range(len(self._names))))],
        }

    def load_state_dict(self, state_dict):
        try:
            state = state_dict["state"]
            blob, solver, dimension = state["ddtrain"], state["solver"], state["dimension"]
        except (KeyError, TypeError):
            raise InvalidArgument("load_state_dict: not a ddtrain optimizer state "
                                  "(expected the dict of state_dict())") from None
        if solver != self._solver:
            raise InvalidArgument("load_state_dict: the state is of solver '%s', this optimizer is '%s'"
                                  % (solver, self._solver))
        if dimension != self._engine.dimension:
            raise InvalidArgument("load_state_dict: the state is for %d parameters, this optimizer has %d"
                                  % (dimension, self._engine.dimension))
        self._engine.load_state(bytes(blob))

    # -- ddtrain extras ----------------------------------------------------------------------
    def reset(self):
        """Forgets the solver's state (memories, radius) as if newly constructed."""
        self._engine.reset()

    @property
    def comm(self):
        return self._engine.comm

    @property
    def shard_size(self):
        """This rank's number of samples (the weight of its mean loss); None: equal weights."""
        return self._engine.shard_size

    @shard_size.setter
    def shard_size(self, n):
        self._engine.shard_size = None if n is None else float(n)

    @property
    def counters(self):
        """Evaluations (global gradient and loss-only) and the solver's event counts."""
        return dict(self._engine.counters())

    @property
    def flat_parameters(self):
        """The one flat tensor the parameters are views of."""
        return self._engine.flat_parameters

    def __repr__(self):
        options = ", ".join("%s=%r" % kv for kv in self._options.items() if kv[1] is not None)
        return "ddtrain.optim.%s(%s)" % (type(self).__name__, options)


def _line_search_options(line_search, c1, c2, line_search_evaluations, tolerance_change):
    return dict(line_search=line_search, c1=c1, c2=c2, line_search_evaluations=line_search_evaluations,
                tolerance_change=tolerance_change)


class LBFGS(_Optimizer):
    """Data-parallel L-BFGS with a strong-Wolfe line search (ddtrain::Lbfgs).

    params: model.parameters() (or a Module, or (name, tensor) pairs). history: memory pairs.
    lr: initial trial step (scaled by 1/|g|_1 on the first iteration). gradient_tolerance,
    step_tolerance, loss_change_tolerance: convergence tests (last_step["termination"] ==
    "converged"). line_search: "strong_wolfe" | "armijo"; c1, c2, line_search_evaluations,
    tolerance_change: its parameters (None: the library's defaults). comm: the communicator
    (default ddtrain.init()). shard_size: this rank's sample count when shards differ.
    full_batch: the closure's data does not change between steps (the loss and gradient at the
    end of a step are reused by the next; pass False for mini-batches). max_iter: outer
    iterations per step() call.
    """

    _solver = "lbfgs"

    def __init__(self, params, history=10, lr=1.0, gradient_tolerance=1e-12, step_tolerance=1e-14,
                 loss_change_tolerance=0.0, line_search="strong_wolfe", c1=None, c2=None,
                 line_search_evaluations=None, tolerance_change=None, comm=None, shard_size=None,
                 full_batch=True, max_iter=1):
        options = dict(history=history, lr=lr, gradient_tolerance=gradient_tolerance,
                       step_tolerance=step_tolerance, loss_change_tolerance=loss_change_tolerance,
                       **_line_search_options(line_search, c1, c2, line_search_evaluations, tolerance_change))
        super().__init__(params, options, comm=comm, shard_size=shard_size, full_batch=full_batch,
                         max_iter=max_iter)


class BFGS(_Optimizer):
    """Dense (full inverse-Hessian) quasi-Newton: BFGS and the self-scaled updates
    (ddtrain::Bfgs). update: "bfgs" | "ssbfgs-ol" | "ssbfgs-ab" | "ssbroyden1" | "ssbroyden2".
    Needs d^2 values of memory for d parameters (refused beyond memory_limit_bytes, default a
    quarter of the RAM); float64 recommended. Other keywords as for LBFGS."""

    _solver = "bfgs"

    def __init__(self, params, update="ssbroyden2", gradient_tolerance=1e-12, step_tolerance=1e-14,
                 curvature_epsilon=1e-10, memory_limit_bytes=0, line_search="strong_wolfe", c1=None,
                 c2=None, line_search_evaluations=None, tolerance_change=None, comm=None,
                 shard_size=None, full_batch=True, max_iter=1):
        options = dict(update=update, gradient_tolerance=gradient_tolerance, step_tolerance=step_tolerance,
                       curvature_epsilon=curvature_epsilon, memory_limit_bytes=memory_limit_bytes,
                       **_line_search_options(line_search, c1, c2, line_search_evaluations, tolerance_change))
        super().__init__(params, options, comm=comm, shard_size=shard_size, full_batch=full_batch,
                         max_iter=max_iter)


def _layer_of(model):
    """Parameter name -> layer: the module's children that hold parameters (an activation holds
    none and is skipped); a module whose parameters all sit in ONE container child (e.g.
    self.net = Sequential(...)) is looked into, down to where there are several."""
    prefix, module = "", model
    while not list(module.named_parameters(recurse=False)):
        holders = [(n, c) for n, c in module.named_children() if any(True for _ in c.parameters())]
        if len(holders) != 1 or not any(True for _ in holders[0][1].children()):
            break
        prefix += holders[0][0] + "."
        module = holders[0][1]
    return {name: prefix + name[len(prefix):].split(".")[0] for name, _ in model.named_parameters()}


def _model_parameters(model, what):
    if isinstance(model, torch.nn.Module):
        return [(n, p) for n, p in model.named_parameters()]
    named = _named_parameters(model)
    if any(n == "p%d" % i for i, (n, _) in enumerate(named)):
        raise InvalidArgument("%s needs the model (a torch.nn.Module) or (name, parameter) pairs, "
                              "to build its subdomains" % what)
    return named


class PLBFGS(_Optimizer):
    """Preconditioned L-BFGS over parameter subdomains (ddtrain::Plbfgs): an additive or
    multiplicative Schwarz preconditioner of local_steps local solves per subdomain, then a
    global L-BFGS step.

    model: the torch.nn.Module. subdomains: number of subdomains, built from the module's
    children that hold parameters (an activation child holds none and is skipped; a model whose
    parameters all sit in one container child, e.g. self.net = Sequential(...), is partitioned
    by that container's children), as balanced
    groups of consecutive children widened by `overlap` children on each side; or `partition`:
    a list of lists of parameter names (as in model.named_parameters()). variant: "additive" |
    "multiplicative". local_solver: "lbfgs" | "adam" | "sgd" | "bfgs" (a dense inverse Hessian
    of each subdomain's block, with the update rule local_update, as BFGS's `update`);
    local_history, local_lr (lbfgs, adam, sgd), local_memory ("keep" | "reset").
    global_solver: "lbfgs" (history pairs, default 10) | "bfgs" (a dense inverse Hessian of all
    parameters, update rule global_update). memory_limit_bytes: what the dense inverse
    Hessians of one rank may use together (local_solver or global_solver "bfgs"; default a
    quarter of the RAM), checked before the first is allocated. combination ("sum" |
    "sequential" | "weighted") and accumulate ("nonblocking" | "blocking"): additive only;
    secant_pair ("preconditioned" | "global"). A keyword that does not apply to the chosen
    variant or solvers is refused. Under MPI every rank solves every subdomain on the
    data-parallel loss (the serial iterates to rounding).
    """

    _solver = "plbfgs"

    def __init__(self, model, subdomains=3, variant="additive", local_steps=5, partition=None, overlap=0,
                 local_solver="lbfgs", local_update=None, local_history=None, local_lr=None, local_memory=None,
                 global_solver=None, global_update=None, history=None, memory_limit_bytes=None,
                 combination=None, accumulate=None, secant_pair=None, weight_iterations=None,
                 gradient_tolerance=1e-12, comm=None, shard_size=None, full_batch=True, max_iter=1):
        named = _model_parameters(model, "PLBFGS")
        groups = None
        if partition is not None:
            groups = [list(group) for group in partition]
            if not all(all(isinstance(n, str) for n in g) for g in groups):
                raise InvalidArgument("partition must be a list of lists of parameter names")
            subdomains = len(groups)
        if not isinstance(subdomains, int) or subdomains < 1:
            raise InvalidArgument("subdomains must be an integer >= 1, got %r" % (subdomains,))
        options = dict(variant=variant, local_steps=local_steps, local_solver=local_solver,
                       local_update=local_update, local_history=local_history, local_lr=local_lr,
                       local_memory=local_memory, global_solver=global_solver, global_update=global_update,
                       history=history, memory_limit_bytes=memory_limit_bytes, combination=combination,
                       accumulate=accumulate, secant_pair=secant_pair, weight_iterations=weight_iterations,
                       gradient_tolerance=gradient_tolerance)
        super().__init__(named, options, comm=comm, shard_size=shard_size, full_batch=full_batch,
                         max_iter=max_iter, groups=groups, subdomains=subdomains, overlap=overlap,
                         layer_of=_layer_of(model) if isinstance(model, torch.nn.Module) else None)

    @property
    def partition(self):
        """The subdomains, described ("3 subdomains: layers 0-1 | 2-3 | 4")."""
        return self._engine.partition

    @property
    def layers(self):
        """The layers the default partition groups (the children that hold parameters)."""
        return self._engine.layers


class SAPTS(_Optimizer):
    """Additive trust region over data subdomains (ddtrain::Sapts): each step splits the
    current mini-batch into `subdomains` micro-batches; rank r solves the micro-batches
    i = r, r + P, ... with local trust-region steps on first-order-consistent local losses,
    the corrections are summed and the combined step is accepted by the global ratio test.

    The closure takes the micro-batch index: closure(i) returns the MEAN loss over micro-batch
    i of the current mini-batch and calls backward(). step(closure, weights=None): weights[i]
    is micro-batch i's sample count (default: equal). subdomains must be >= the number of
    ranks. radius, max_radius, eta1, ... and local_radius, ...: trust-region parameters
    (None: SAPTS's defaults). full_batch defaults to False (a new mini-batch every step).
    """

    _solver = "sapts"

    def __init__(self, model, subdomains=1, local_steps=None, global_steps=None, gradient_tolerance=None,
                 radius=None, min_radius=None, max_radius=None, eta1=None, eta2=None, increase=None,
                 decrease=None, local_radius=None, local_min_radius=None, local_max_radius=None,
                 local_eta1=None, local_eta2=None, local_increase=None, local_decrease=None, comm=None,
                 full_batch=False, max_iter=1):
        named = _named_parameters(model)
        if not isinstance(subdomains, int) or subdomains < 1:
            raise InvalidArgument("subdomains must be an integer >= 1, got %r" % (subdomains,))
        options = dict(local_steps=local_steps, global_steps=global_steps, gradient_tolerance=gradient_tolerance,
                       radius=radius, min_radius=min_radius, max_radius=max_radius, eta1=eta1, eta2=eta2,
                       increase=increase, decrease=decrease, local_radius=local_radius,
                       local_min_radius=local_min_radius, local_max_radius=local_max_radius,
                       local_eta1=local_eta1, local_eta2=local_eta2, local_increase=local_increase,
                       local_decrease=local_decrease)
        super().__init__(named, options, comm=comm, full_batch=full_batch, max_iter=max_iter,
                         subdomains=subdomains)
        self.subdomains = subdomains

    def _step_once(self, closure, weights=None):
        if weights is not None:
            weights = [float(w) for w in weights]
            if not all(math.isfinite(w) and w > 0 for w in weights):
                raise InvalidArgument("weights must be finite and > 0")
        return self._engine.step(closure, weights)
