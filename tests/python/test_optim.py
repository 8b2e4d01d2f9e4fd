# Serial tests of the Python optimizers on problems whose answer is known, exact resume and
# errors. Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python
import io
import math

import pytest
import torch

import ddtrain


def rosenbrock_setup():
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0]))

    def loss_fn():
        return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2

    return x, loss_fn


def run(opt, closure, steps):
    for _ in range(steps):
        opt.step(closure)
        if opt.last_step["termination"] != "running":
            break
    return opt.last_step


@pytest.mark.parametrize("make", [
    lambda p, c: ddtrain.optim.LBFGS(p, history=10, comm=c),
    lambda p, c: ddtrain.optim.BFGS(p, update="bfgs", comm=c),
    lambda p, c: ddtrain.optim.BFGS(p, update="ssbroyden2", comm=c),
], ids=["lbfgs", "bfgs", "ssbroyden2"])
def test_rosenbrock_minimum(make, self_comm):
    x, loss_fn = rosenbrock_setup()
    opt = make([x], self_comm)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    last = run(opt, closure, 500)
    assert last["termination"] == "converged", last
    assert torch.allclose(x.detach(), torch.ones(2), rtol=0, atol=1e-10), x
    assert loss_fn().item() < 1e-20


@pytest.mark.parametrize("solver", ["lbfgs", "bfgs"])
def test_least_squares_solution(solver, self_comm):
    torch.manual_seed(1)
    X = torch.randn(50, 4)
    w_true = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y = X @ w_true + 0.25
    model = torch.nn.Linear(4, 1)
    opt = (ddtrain.optim.LBFGS(model.parameters(), comm=self_comm) if solver == "lbfgs"
           else ddtrain.optim.BFGS(model.parameters(), comm=self_comm))

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss

    run(opt, closure, 200)
    assert torch.allclose(model.weight.detach(), w_true.T, rtol=0, atol=1e-10)
    assert abs(model.bias.item() - 0.25) < 1e-10


def test_step_returns_the_loss_at_the_new_parameters(self_comm):
    x, loss_fn = rosenbrock_setup()
    opt = ddtrain.optim.LBFGS([x], comm=self_comm)

    def closure():
        loss = loss_fn()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.dtype == torch.float64 and loss.dim() == 0
    assert loss.item() == loss_fn().item()
    assert loss.item() < 24.2  # f(-1.2, 1) = 24.2
    assert opt.last_step["gradient_evaluations"] >= 1


def test_parameters_become_views_of_one_flat_tensor(self_comm):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    opt = ddtrain.optim.LBFGS(model.parameters(), comm=self_comm)
    flat = opt.flat_parameters
    assert flat.numel() == sum(p.numel() for p in model.parameters())
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b)
        assert flat.data_ptr() <= p.data_ptr() < flat.data_ptr() + flat.numel() * flat.element_size()
    assert isinstance(opt, torch.optim.Optimizer)


def test_max_iter_runs_several_iterations(self_comm):
    x, loss_fn = rosenbrock_setup()
    opt = ddtrain.optim.LBFGS([x], comm=self_comm, max_iter=200)

    def closure():
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    assert opt.last_step["termination"] == "converged"
    assert torch.allclose(x.detach(), torch.ones(2), atol=1e-10)


def mlp():
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, 1))


def regression_data():
    X = torch.linspace(-1, 1, 64).unsqueeze(1)
    return X, torch.sin(3 * X)


def regression_closure(opt, model):
    """The closure of the mean squared error of `model` on regression_data()."""
    X, y = regression_data()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("make", [
    lambda m, c: ddtrain.optim.LBFGS(m.parameters(), comm=c),
    lambda m, c: ddtrain.optim.BFGS(m.parameters(), comm=c),
    lambda m, c: ddtrain.optim.PLBFGS(m, subdomains=3, variant="additive", local_steps=5, comm=c),
    lambda m, c: ddtrain.optim.PLBFGS(m, subdomains=2, variant="multiplicative", local_steps=3, comm=c),
    lambda m, c: ddtrain.optim.PLBFGS(m, subdomains=3, variant="multiplicative", local_steps=3, local_solver="bfgs",
                                      global_solver="bfgs", comm=c),
], ids=["lbfgs", "bfgs", "plbfgs-additive", "plbfgs-multiplicative", "plbfgs-dense"])
def test_exact_resume(make, self_comm):
    def train(model, opt, steps):
        closure = regression_closure(opt, model)
        return [opt.step(closure).item() for _ in range(steps)]

    model = mlp()
    opt = make(model, self_comm)
    train(model, opt, 6)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    losses = train(model, opt, 6)
    expected = [p.detach().clone() for p in model.parameters()]

    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = mlp()
    resumed.load_state_dict(saved["model"])
    opt2 = make(resumed, self_comm)
    opt2.load_state_dict(saved["opt"])
    assert train(resumed, opt2, 6) == losses
    for p, e in zip(resumed.parameters(), expected):
        assert torch.equal(p.detach(), e)


def test_plbfgs_partition_from_children_skips_activations(self_comm):
    model = mlp()
    opt = ddtrain.optim.PLBFGS(model, subdomains=3, comm=self_comm)
    assert opt.layers == ["0", "2", "4"]
    assert opt.partition.startswith("3 subdomains")
    closure = regression_closure(opt, model)
    first = opt.step(closure).item()
    for _ in range(15):
        last = opt.step(closure).item()
    assert last < 0.5 * first
    with pytest.raises(ddtrain.InvalidArgument, match="only 3 children"):
        ddtrain.optim.PLBFGS(mlp(), subdomains=4, comm=self_comm)


def test_plbfgs_partition_by_parameter_names(self_comm):
    model = mlp()
    names = [n for n, _ in model.named_parameters()]
    opt = ddtrain.optim.PLBFGS(model, partition=[names[:2], names[2:]], comm=self_comm)
    assert opt.partition.startswith("2 subdomains")
    with pytest.raises(ddtrain.InvalidArgument, match="nope"):
        ddtrain.optim.PLBFGS(mlp(), partition=[["nope"]], comm=self_comm)


@pytest.mark.parametrize("variant", ["additive", "multiplicative"])
def test_plbfgs_dense_blocks_and_global_h_fit_a_regression(variant, self_comm):
    model = mlp()
    opt = ddtrain.optim.PLBFGS(model, subdomains=3, variant=variant, local_steps=3, local_solver="bfgs",
                               local_update="ssbfgs-ab", global_solver="bfgs", global_update="ssbroyden2",
                               memory_limit_bytes=10**8, comm=self_comm)
    closure = regression_closure(opt, model)
    first = opt.step(closure).item()
    for _ in range(30):
        last = opt.step(closure).item()
    assert last < 1e-3 * first
    counters = opt.counters  # the dense local and global memories were used
    assert counters["local_scaled_updates"] > 0 and "scaled_global_updates" in counters, counters


def test_plbfgs_refuses_keywords_that_do_not_apply(self_comm):
    cases = [
        (dict(local_update="bfgs"), "local_update applies to local_solver bfgs only"),
        (dict(local_solver="bfgs", local_history=5), "local_history applies to local_solver lbfgs"),
        (dict(global_solver="bfgs", history=5), "history applies to global_solver lbfgs"),
        (dict(global_update="ssbroyden1"), "global_update applies to global_solver bfgs only"),
        (dict(variant="multiplicative", accumulate="blocking"), "accumulate applies to variant additive only"),
        (dict(memory_limit_bytes=10**6), "memory_limit_bytes applies to plbfgs with local_solver bfgs"),
        (dict(accumulate="sometimes"), "unknown accumulate 'sometimes'"),
        (dict(local_memory="forget"), "unknown local_memory 'forget'"),
        (dict(global_solver="dense"), "dense"),
    ]
    for keywords, message in cases:
        with pytest.raises(ddtrain.InvalidArgument, match=message):
            ddtrain.optim.PLBFGS(mlp(), subdomains=3, comm=self_comm, **keywords)


def test_plbfgs_dense_memory_over_the_limit_is_refused_before_the_first_step(self_comm):
    model = mlp()
    opt = ddtrain.optim.PLBFGS(model, subdomains=3, local_solver="bfgs", global_solver="bfgs",
                               memory_limit_bytes=1000, comm=self_comm)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ddtrain.InvalidArgument, match="memory_limit_bytes is 0.001 MB; use global_solver lbfgs"):
        opt.step(regression_closure(opt, model))
    assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


def test_sapts_decreases_a_classification_loss(self_comm):
    torch.manual_seed(5)
    X = torch.randn(120, 2)
    y = (X[:, 0] * X[:, 1] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt = ddtrain.optim.SAPTS(model, subdomains=3, comm=self_comm)
    loss_fn = torch.nn.CrossEntropyLoss()
    full = lambda: loss_fn(model(X), y).item()  # noqa: E731
    start = full()
    for epoch in range(15):
        for batch in torch.arange(120).split(40):
            micro = batch.chunk(3)

            def closure(i):
                loss = loss_fn(model(X[micro[i]]), y[micro[i]])
                loss.backward()
                return loss

            opt.step(closure, weights=[len(m) for m in micro])
    assert full() < 0.7 * start


# ---- errors ------------------------------------------------------------------------------------

def test_error_hierarchy():
    assert issubclass(ddtrain.InvalidArgument, ddtrain.Error)
    assert issubclass(ddtrain.InvalidArgument, ValueError)
    assert issubclass(ddtrain.NumericalError, ddtrain.Error)
    assert issubclass(ddtrain.CommError, ddtrain.Error)
    assert issubclass(ddtrain.IoError, ddtrain.Error)


def test_bad_options_name_the_keyword(self_comm):
    x = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ddtrain.InvalidArgument, match="history must be >= 1, got 0"):
        ddtrain.optim.LBFGS([x], history=0, comm=self_comm)
    with pytest.raises(ValueError, match="lr must be > 0"):
        ddtrain.optim.LBFGS([x], lr=-1, comm=self_comm)
    with pytest.raises(ddtrain.InvalidArgument, match="ssbroyden3"):
        ddtrain.optim.BFGS([x], update="ssbroyden3", comm=self_comm)
    with pytest.raises(ddtrain.InvalidArgument, match="history"):
        ddtrain.optim.LBFGS([x], history="ten", comm=self_comm)
    with pytest.raises(ddtrain.InvalidArgument, match="empty parameter list"):
        ddtrain.optim.LBFGS([], comm=self_comm)
    with pytest.raises(TypeError):
        ddtrain.optim.LBFGS([x], histroy=5, comm=self_comm)


def test_closure_exception_propagates(self_comm):
    x, loss_fn = rosenbrock_setup()
    opt = ddtrain.optim.LBFGS([x], comm=self_comm)

    class Mine(Exception):
        pass

    def closure():
        raise Mine("from the closure")

    with pytest.raises(Mine, match="from the closure"):
        opt.step(closure)

    # The optimizer is still usable afterwards.
    def good():
        loss = loss_fn()
        loss.backward()
        return loss

    assert opt.step(good).item() < 24.2


def test_non_scalar_and_missing_losses(self_comm):
    x = torch.nn.Parameter(torch.zeros(3))
    opt = ddtrain.optim.LBFGS([x], comm=self_comm)

    def vector():
        loss = (x - 1) ** 2
        loss.sum().backward()
        return loss

    with pytest.raises(ddtrain.InvalidArgument, match=r"scalar loss.*shape \[3\]"):
        opt.step(vector)
    with pytest.raises(ddtrain.InvalidArgument, match="None"):
        opt.step(lambda: None)
    with pytest.raises(ddtrain.InvalidArgument, match="closure"):
        opt.step()


def test_nan_loss_is_a_numerical_error(self_comm):
    x = torch.nn.Parameter(torch.zeros(2))
    opt = ddtrain.optim.BFGS([x], comm=self_comm)

    def closure():
        loss = (x ** 2).sum() * float("nan")
        loss.backward()
        return loss

    with pytest.raises(ddtrain.NumericalError, match="not finite"):
        opt.step(closure)


def test_load_state_dict_checks_what_it_loads(self_comm):
    x = torch.nn.Parameter(torch.zeros(2))
    lbfgs = ddtrain.optim.LBFGS([x], comm=self_comm)
    bfgs = ddtrain.optim.BFGS([torch.nn.Parameter(torch.zeros(2))], comm=self_comm)
    with pytest.raises(ddtrain.InvalidArgument, match="solver 'lbfgs'"):
        bfgs.load_state_dict(lbfgs.state_dict())
    with pytest.raises(ddtrain.InvalidArgument, match="3 parameters"):
        other = ddtrain.optim.LBFGS([torch.nn.Parameter(torch.zeros(3))], comm=self_comm)
        lbfgs.load_state_dict(other.state_dict())
    state = lbfgs.state_dict()
    state["state"]["ddtrain"] = b"garbage"
    with pytest.raises(ddtrain.IoError):
        lbfgs.load_state_dict(state)


def test_init_gives_rank_and_size():
    comm = ddtrain.init()
    assert 0 <= comm.rank < comm.size
    assert comm.backend in ("self", "mpi")
    assert ddtrain.init() is comm


def test_plbfgs_looks_into_a_single_container_child(self_comm):
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Identity()
            self.net = mlp()

        def forward(self, x):
            return self.net(self.scale(x))

    opt = ddtrain.optim.PLBFGS(Wrapped(), subdomains=3, comm=self_comm)
    assert opt.layers == ["net.0", "net.2", "net.4"]
