#!/usr/bin/python3
"""The Allen-Cahn PINN of ddtrain, written as a plain PyTorch program (the comparison side of
bench/run_allen_cahn_vs_pytorch.sh).

Same equation (u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0), same hard constraints
(u = x^2 cos(pi x) + t N(cos(pi x), sin(pi x), t)), same network (ResNet: lift, depth-1 residual
tanh blocks, linear output; Xavier-normal weights, zero biases), same number of uniformly drawn
collocation points and precision. Derivatives by nested torch.autograd.grad (create_graph), the
usual PyTorch PINN; --derivatives taylor runs the forward Taylor-mode residual instead (the
algorithm ddtrain uses by default), to separate algorithm from framework.

Modes:
  bench       time one L-BFGS iteration (torch.optim.LBFGS, strong_wolfe, many iterations per
              step() call) and one Adam step per N_f; prints CSV rows
  time-limit  train with L-BFGS for --time-limit seconds, then print the rel. L2 error on the
              reference grid of --reference (a .mat file with x, tt, uu as written by
              `ddtrain reference allen_cahn`) as JSON
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch


class ResNet(torch.nn.Module):
    def __init__(self, inputs=3, outputs=1, depth=6, width=40):
        super().__init__()
        self.units = torch.nn.ModuleList(
            [torch.nn.Linear(inputs if k == 0 else width, width) for k in range(depth)])
        self.output = torch.nn.Linear(width, outputs)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.xavier_normal_(p)
            else:
                torch.nn.init.zeros_(p)

    def forward(self, x):
        h = torch.tanh(self.units[0](x))
        for unit in self.units[1:]:
            h = h + torch.tanh(unit(h))
        return self.output(h)

    def forward_jet(self, stacked):
        """Taylor mode: stacked = (4, n, k) = [value, d/dx, d/dt, d2/dx2]."""
        def linear(layer, s):
            z = s.reshape(-1, s.shape[-1]) @ layer.weight.t()
            z = z.view(s.shape[0], s.shape[1], -1)
            return torch.cat([(z[0] + layer.bias).unsqueeze(0), z[1:]])

        def act(z):
            a = torch.tanh(z[0])
            d1 = 1 - a * a
            d2 = -2 * a * d1
            return torch.cat([a.unsqueeze(0), d1 * z[1:3], (d1 * z[3] + d2 * z[1] * z[1]).unsqueeze(0)])

        h = act(linear(self.units[0], stacked))
        for unit in self.units[1:]:
            h = h + act(linear(unit, h))
        return linear(self.output, h)


class AllenCahn:
    nu, r = 1e-4, 5.0

    def __init__(self, nf, dtype, seed, derivatives):
        torch.manual_seed(seed)
        self.model = ResNet().to(dtype)
        self.points = torch.rand(nf, 2, dtype=dtype) * torch.tensor([2.0, 1.0], dtype=dtype) \
            - torch.tensor([1.0, 0.0], dtype=dtype)
        self.derivatives = derivatives

    def predict(self, xt):
        x, t = xt[:, :1], xt[:, 1:]
        features = torch.cat([torch.cos(math.pi * x), torch.sin(math.pi * x), t], 1)
        return (x * x * torch.cos(math.pi * x) + t * self.model(features)).reshape(-1)

    def residual_autograd(self):
        xt = self.points.clone().requires_grad_(True)
        u = self.predict(xt)
        du = torch.autograd.grad(u, xt, torch.ones_like(u), create_graph=True)[0]
        u_x, u_t = du[:, 0], du[:, 1]
        u_xx = torch.autograd.grad(u_x, xt, torch.ones_like(u_x), create_graph=True)[0][:, 0]
        return u_t - self.nu * u_xx + self.r * (u ** 3 - u)

    def residual_taylor(self):
        x, t = self.points[:, :1], self.points[:, 1:]
        pi = math.pi
        c, s = torch.cos(pi * x), torch.sin(pi * x)
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        stacked = torch.stack([torch.cat([c, s, t], 1), torch.cat([-pi * s, pi * c, zero], 1),
                               torch.cat([zero, zero, one], 1),
                               torch.cat([-pi * pi * c, -pi * pi * s, zero], 1)])
        n = self.model.forward_jet(stacked)
        x2 = x * x
        u = x2 * c + t * n[0]
        u_t = n[0] + t * n[2]
        u_xx = 2 * c - 4 * pi * x * s - pi * pi * x2 * c + t * n[3]
        return (u_t - self.nu * u_xx + self.r * (u ** 3 - u)).reshape(-1)

    def loss(self):
        r = self.residual_taylor() if self.derivatives == "taylor" else self.residual_autograd()
        return r.square().mean()


def lbfgs(problem, max_iter):
    # ddtrain's L-BFGS defaults: 10 pairs, initial step 1, strong Wolfe with 25 evaluations.
    return torch.optim.LBFGS(problem.model.parameters(), lr=1.0, max_iter=max_iter, max_eval=None,
                             tolerance_grad=1e-12, tolerance_change=1e-9, history_size=10,
                             line_search_fn="strong_wolfe")


def closure_of(problem, optimizer):
    def closure():
        optimizer.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss
    return closure


def bench(args, dtype):
    print(f"# pytorch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"derivatives {args.derivatives}")
    print("# nf,lbfgs_ms_per_iteration,lbfgs_evaluations_per_iteration,adam_ms_per_step,"
          "lbfgs_cpu_ms_per_iteration,adam_cpu_ms_per_step")
    for nf in args.nf:
        problem = AllenCahn(nf, dtype, args.seed, args.derivatives)
        # L-BFGS: one step() call running many iterations (PyTorch's fastest way to drive it).
        opt = lbfgs(problem, args.lbfgs_iterations)
        closure = closure_of(problem, opt)
        opt.step(closure)  # warm-up (allocations, first-iteration scaling)
        n_iter0, evals0 = opt.state[opt._params[0]]["n_iter"], opt.state[opt._params[0]]["func_evals"]
        t0, c0 = time.perf_counter(), time.process_time()
        opt.step(closure)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        state = opt.state[opt._params[0]]
        iterations = state["n_iter"] - n_iter0
        evaluations = state["func_evals"] - evals0
        # Adam: median of single steps.
        problem = AllenCahn(nf, dtype, args.seed, args.derivatives)
        adam = torch.optim.Adam(problem.model.parameters(), lr=1e-3)
        closure = closure_of(problem, adam)
        times = []
        for k in range(args.adam_steps + 2):
            if k == 2:
                c1 = time.process_time()
            t1 = time.perf_counter()
            adam.step(closure)
            if k >= 2:
                times.append(time.perf_counter() - t1)
        adam_cpu = (time.process_time() - c1) / args.adam_steps
        print(f"{nf},{1e3 * seconds / max(iterations, 1):.3f},{evaluations / max(iterations, 1):.2f},"
              f"{1e3 * statistics.median(times):.3f},{1e3 * cpu / max(iterations, 1):.3f},"
              f"{1e3 * adam_cpu:.3f}", flush=True)


def time_limited(args, dtype):
    import scipy.io
    ref = scipy.io.loadmat(args.reference)
    x = torch.tensor(ref["x"], dtype=torch.float64).reshape(-1)
    t = torch.tensor(ref["tt"], dtype=torch.float64).reshape(-1)
    uu = torch.tensor(ref["uu"], dtype=torch.float64)  # (nx, nt)
    if uu.shape != (x.numel(), t.numel()):
        uu = uu.t()
    problem = AllenCahn(args.nf[0], dtype, args.seed, args.derivatives)
    opt = lbfgs(problem, args.chunk)
    closure = closure_of(problem, opt)
    start = time.perf_counter()
    while time.perf_counter() - start < args.time_limit:
        loss = opt.step(closure)
    wall = time.perf_counter() - start
    state = opt.state[opt._params[0]]
    with torch.no_grad():
        grid = torch.stack([x.repeat_interleave(t.numel()), t.repeat(x.numel())], 1).to(dtype)
        pred = torch.cat([problem.predict(chunk) for chunk in grid.split(16384)]).double()
        ref_values = uu.reshape(-1)
        rel_l2 = ((pred - ref_values).norm() / ref_values.norm()).item()
    print(json.dumps({"side": "pytorch", "derivatives": args.derivatives, "nf": args.nf[0],
                      "threads": torch.get_num_threads(), "wall_s": round(wall, 2),
                      "iterations": state["n_iter"], "evaluations": state["func_evals"],
                      "loss": float(loss), "metric": rel_l2}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["bench", "time-limit"], default="bench")
    p.add_argument("--nf", type=int, nargs="+", default=[2000, 10000, 40000])
    p.add_argument("--precision", choices=["float32", "float64"], default="float32")
    p.add_argument("--derivatives", choices=["autograd", "taylor"], default="autograd")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lbfgs-iterations", type=int, default=20, help="bench: iterations timed")
    p.add_argument("--adam-steps", type=int, default=21, help="bench: Adam steps timed")
    p.add_argument("--time-limit", type=float, default=120.0, help="time-limit mode: seconds")
    p.add_argument("--chunk", type=int, default=10, help="time-limit mode: iterations per step()")
    p.add_argument("--reference", default="ref.mat", help="time-limit mode: reference .mat")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    if args.mode == "bench":
        bench(args, dtype)
    else:
        time_limited(args, dtype)


if __name__ == "__main__":
    sys.exit(main())
