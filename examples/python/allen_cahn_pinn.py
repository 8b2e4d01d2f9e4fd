#!/usr/bin/python3
"""An Allen-Cahn PINN in plain PyTorch, trained with ddtrain's optimizers and with PyTorch's own,
each for the same wall-time budget.

    u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0,  x in [-1, 1] periodic, t in [0, 1],  u(x, 0) = x^2 cos(pi x)

Hard constraints: u(x, t) = x^2 cos(pi x) + t N(cos(pi x), sin(pi x), t) (exact initial
condition, periodic in x), N a tanh network (--depth hidden layers of --width). The loss is the
mean squared PDE residual at --nf uniformly drawn collocation points (derivatives by
torch.autograd.grad). Under mpirun every rank takes its share of the SAME points (the serial
problem) and its closure returns the mean over its share: ddtrain's optimizers then compute the
serial iterates; the torch.optim ones run on rank 0's process only when there is one rank.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/allen_cahn_pinn.py \\
        --optimizers bfgs plbfgs torch-lbfgs adam --time-limit 30 --reference allen_cahn.mat
    mpirun -np 2 ... examples/python/allen_cahn_pinn.py --optimizers bfgs plbfgs --time-limit 30

--reference: a .mat file from `build/ddtrain reference allen_cahn --out allen_cahn.mat` (needs
scipy); the relative L2 error on its 512 x 201 grid is reported. Prints one row per optimizer.
"""
import argparse
import math
import time

import torch

import ddtrain


class Pinn(torch.nn.Module):
    def __init__(self, depth, width):
        super().__init__()
        layers, inputs = [], 3
        for _ in range(depth):
            layers += [torch.nn.Linear(inputs, width), torch.nn.Tanh()]
            inputs = width
        layers.append(torch.nn.Linear(inputs, 1))
        self.net = torch.nn.Sequential(*layers)  # PLBFGS's subdomains: the Linear children
        for p in self.parameters():
            torch.nn.init.xavier_normal_(p) if p.dim() == 2 else torch.nn.init.zeros_(p)

    def forward(self, x, t):
        features = torch.cat([torch.cos(math.pi * x), torch.sin(math.pi * x), t], 1)
        return x * x * torch.cos(math.pi * x) + t * self.net(features)


def residual(model, x, t):
    x = x.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    u = model(x, t)
    ones = torch.ones_like(u)
    u_x, u_t = torch.autograd.grad(u, (x, t), ones, create_graph=True)
    u_xx = torch.autograd.grad(u_x, x, ones, create_graph=True)[0]
    return u_t - 1e-4 * u_xx + 5 * u ** 3 - 5 * u


def collocation(nf, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(nf, 2, generator=g, dtype=torch.float64).to(dtype)
    return points[:, :1] * 2 - 1, points[:, 1:]


def load_reference(path, dtype):
    import scipy.io
    ref = scipy.io.loadmat(path)
    x = torch.tensor(ref["x"], dtype=torch.float64).reshape(-1)
    t = torch.tensor(ref["tt"], dtype=torch.float64).reshape(-1)
    uu = torch.tensor(ref["uu"], dtype=torch.float64)
    if uu.shape != (x.numel(), t.numel()):
        uu = uu.t()
    X = x.repeat_interleave(t.numel()).unsqueeze(1).to(dtype)
    T = t.repeat(x.numel()).unsqueeze(1).to(dtype)
    return X, T, uu.reshape(-1)


def make_optimizer(name, model, comm, args):
    if name == "bfgs":
        return ddtrain.optim.BFGS(model.parameters(), update="ssbroyden2", comm=comm)
    if name == "plbfgs":
        return ddtrain.optim.PLBFGS(model, subdomains=args.subdomains, variant=args.variant,
                                    local_steps=args.local_steps, local_solver=args.local_solver,
                                    global_solver=args.global_solver, comm=comm)
    if name == "lbfgs":
        return ddtrain.optim.LBFGS(model.parameters(), history=args.history, comm=comm)
    if name == "torch-lbfgs":
        return torch.optim.LBFGS(model.parameters(), lr=1, max_iter=args.chunk, max_eval=10 ** 9,
                                 tolerance_grad=1e-12, tolerance_change=1e-12, history_size=args.history,
                                 line_search_fn="strong_wolfe")
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=args.adam_lr)
    raise SystemExit(f"unknown optimizer {name}")


def train(name, args, comm, dtype, reference):
    torch.manual_seed(args.seed)
    model = Pinn(args.depth, args.width).to(dtype)
    x, t = collocation(args.nf, dtype, args.seed)
    # This rank's share of the serial point set (strong scaling).
    share = [range(r, args.nf, comm.size) for r in range(comm.size)][comm.rank]
    x, t = x[share.start::share.step], t[share.start::share.step]
    opt = make_optimizer(name, model, comm, args)
    if name in ("bfgs", "plbfgs", "lbfgs"):
        opt.shard_size = x.shape[0]
    evaluations = [0]

    def closure():
        evaluations[0] += 1
        opt.zero_grad()
        loss = residual(model, x, t).pow(2).mean()
        loss.backward()
        return loss

    iterations, start = 0, time.perf_counter()
    status = "time limit"
    while time.perf_counter() - start < args.time_limit:
        opt.step(closure)
        if isinstance(opt, torch.optim.LBFGS):
            iterations = opt.state[opt._params[0]]["n_iter"]
        else:
            iterations += 1
        if isinstance(opt, ddtrain.optim._Optimizer) and opt.last_step["termination"] != "running":
            status = opt.last_step["termination"]
            break
    elapsed = time.perf_counter() - start
    loss = residual(model, x, t).pow(2).mean().item()
    if comm.size > 1:  # the global mean over all shards (equal weights by shard size)
        pair = torch.tensor([loss * x.shape[0], x.shape[0]], dtype=torch.float64)
        comm.allreduce_sum(pair)
        loss = (pair[0] / pair[1]).item()
    error = float("nan")
    if reference is not None:
        X, T, u_ref = reference
        with torch.no_grad():
            u = torch.cat([model(a, b) for a, b in zip(X.split(16384), T.split(16384))]).double().reshape(-1)
        error = ((u - u_ref).norm() / u_ref.norm()).item()
    return dict(optimizer=name, ranks=comm.size, iterations=iterations, evaluations=evaluations[0],
                seconds=elapsed, loss=loss, error=error, status=status)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", nargs="+", default=["bfgs", "plbfgs", "torch-lbfgs", "adam"],
                        choices=["bfgs", "plbfgs", "lbfgs", "torch-lbfgs", "adam"])
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds of training per optimizer")
    parser.add_argument("--nf", type=int, default=2000, help="collocation points (in total)")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history", type=int, default=10, help="L-BFGS pairs (ddtrain and torch)")
    parser.add_argument("--subdomains", type=int, default=3, help="PLBFGS subdomains")
    parser.add_argument("--local-steps", type=int, default=5, help="PLBFGS local steps")
    parser.add_argument("--variant", default="additive", choices=["additive", "multiplicative"], help="PLBFGS variant")
    parser.add_argument("--local-solver", default="lbfgs", choices=["lbfgs", "bfgs", "adam", "sgd"],
                        help="PLBFGS local solver (bfgs: a dense inverse Hessian per subdomain)")
    parser.add_argument("--global-solver", default="lbfgs", choices=["lbfgs", "bfgs"],
                        help="PLBFGS global stage (bfgs: one dense inverse Hessian)")
    parser.add_argument("--chunk", type=int, default=10, help="torch.optim.LBFGS iterations per step() call")
    parser.add_argument("--adam-lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: default)")
    parser.add_argument("--reference", help="reference .mat (ddtrain reference allen_cahn --out FILE)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    comm = ddtrain.init()
    dtype = getattr(torch, args.dtype)
    reference = load_reference(args.reference, dtype) if args.reference else None
    if comm.rank == 0:
        print("| optimizer | ranks | iterations | evaluations | train s | loss | rel. L2 error | stopped by |")
        print("|---|---|---|---|---|---|---|---|")
    for name in args.optimizers:
        if name in ("torch-lbfgs", "adam") and comm.size > 1:
            if comm.rank == 0:
                print(f"| {name} | {comm.size} | (torch.optim is not data-parallel; run it with one process) |")
            continue
        row = train(name, args, comm, dtype, reference)
        if comm.rank == 0:
            print("| {optimizer} | {ranks} | {iterations} | {evaluations} | {seconds:.1f} | {loss:.3e} | "
                  "{error:.3e} | {status} |".format(**row), flush=True)


if __name__ == "__main__":
    main()
