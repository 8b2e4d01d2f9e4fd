# Loss integrity: P ranks, each with its (unequal) shard and a closure returning its shard's mean
# loss, give the serial iterates to rounding in float64. Registered in ctest under
# `mpirun -np 2` (python_tests_mpi_np2); serially it compares the solver with itself.
import pytest
import torch

import ddtrain

N = 37  # odd: the shards differ in size


def data():
    g = torch.Generator().manual_seed(7)
    X = torch.rand(N, 2, generator=g) * 2 - 1
    return X, torch.sin(2 * X[:, :1]) * torch.cos(X[:, 1:])


def model():
    torch.manual_seed(11)
    return torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Tanh(), torch.nn.Linear(10, 10), torch.nn.Tanh(),
                               torch.nn.Linear(10, 1))


def shard(comm):
    counts = [N // comm.size + (1 if r < N % comm.size else 0) for r in range(comm.size)]
    begin = sum(counts[:comm.rank])
    return slice(begin, begin + counts[comm.rank]), counts[comm.rank]


def trajectory(make, comm, steps):
    X, y = data()
    part, n = shard(comm)
    X, y = X[part], y[part]
    net = model()
    opt = make(net, comm)
    opt.shard_size = n

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), y)  # this rank's mean
        loss.backward()
        return loss

    points, losses = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        points.append(torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone())
    return losses, points


SOLVERS = {
    "lbfgs": lambda m, c: ddtrain.optim.LBFGS(m.parameters(), history=5, comm=c),
    "bfgs": lambda m, c: ddtrain.optim.BFGS(m.parameters(), update="ssbroyden2", comm=c),
    "plbfgs": lambda m, c: ddtrain.optim.PLBFGS(m, subdomains=3, variant="additive", local_steps=3, comm=c),
    "plbfgs-dense": lambda m, c: ddtrain.optim.PLBFGS(m, subdomains=3, variant="additive", local_steps=3,
                                                      local_solver="bfgs", global_solver="bfgs", comm=c),
}
# Relative agreement with the serial run. The shards' means are summed in another order than the
# serial mean, and the dense blocks of plbfgs-dense amplify that rounding step by step (measured:
# 5e-14 at the first step, 2e-10 at the sixth, 1e-9 at the tenth; bfgs stays near 1e-14).
TOLERANCE = {"plbfgs-dense": 1e-8}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_ranks_give_the_serial_iterates(name, world, self_comm):
    steps = 8
    serial_losses, serial_points = trajectory(SOLVERS[name], self_comm, steps)
    losses, points = trajectory(SOLVERS[name], world, steps)
    assert serial_losses[-1] < 0.5 * serial_losses[0]
    rel = TOLERANCE.get(name, 1e-10)
    for k in range(steps):
        assert losses[k] == pytest.approx(serial_losses[k], rel=rel, abs=1e-14), k
        assert torch.allclose(points[k], serial_points[k], rtol=10 * rel, atol=0.1 * rel), \
            (k, (points[k] - serial_points[k]).abs().max().item())
    # Every rank holds the same iterate, bit for bit.
    mine = points[-1].clone()
    world.broadcast(mine, 0)
    assert torch.equal(mine, points[-1])


def test_a_failing_rank_raises_everywhere_without_hanging(world):
    net = model()
    opt = ddtrain.optim.LBFGS(net.parameters(), comm=world)
    X, y = data()

    class Boom(Exception):
        pass

    def closure():
        if world.rank == world.size - 1:
            raise Boom("closure failed on the last rank")
        loss = torch.nn.functional.mse_loss(net(X), y)
        loss.backward()
        return loss

    if world.rank == world.size - 1:
        with pytest.raises(Boom):
            opt.step(closure)
    else:
        with pytest.raises(ddtrain.CommError, match="rank %d failed" % (world.size - 1)):
            opt.step(closure)

    # All ranks are still in step: a correct closure works afterwards.
    def good():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), y)
        loss.backward()
        return loss

    assert opt.step(good).item() >= 0


def test_nan_on_one_rank_is_an_error_on_every_rank(world):
    net = model()
    opt = ddtrain.optim.LBFGS(net.parameters(), comm=world)
    X, y = data()

    def closure():
        loss = torch.nn.functional.mse_loss(net(X), y)
        if world.rank == 0:
            loss = loss * float("nan")
        loss.backward()
        return loss

    with pytest.raises(ddtrain.NumericalError):
        opt.step(closure)
