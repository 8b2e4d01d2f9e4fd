#!/usr/bin/python3
"""The Allen-Cahn PINN of ddtrain, written as a plain PyTorch program (the comparison side of
bench/run_allen_cahn_vs_pytorch.sh and bench/allen_cahn_equal_time.sh).

Same equation (u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0), same hard constraints
(u = x^2 cos(pi x) exp(-c t) + t N(cos(k pi x), sin(k pi x) for k = 1..K, t), c = --ic-decay,
default 0, K = --fourier-modes, default 1), same networks, same number of uniformly
drawn collocation points and precision. Derivatives by nested torch.autograd.grad
(create_graph), the usual PyTorch PINN; --derivatives taylor runs the forward Taylor-mode
residual instead (the algorithm ddtrain uses by default), to separate algorithm from framework.

Networks (--model, --depth, --width; Xavier-normal weights, zero biases; ddtrain's --model):
  resnet  (default) lift Linear(2K+1, width) + tanh, then depth-1 residual blocks
          h + tanh(W h + b), linear output; depth 6, width 40 by default
  fc      depth hidden Linear(., width) + tanh layers, linear output
  modified-mlp  the gated MLP of jaxpi (ddtrain::ModifiedMlp): U = tanh(W_u f + b_u),
          V = tanh(W_v f + b_v), then depth gated layers h <- z U + (1 - z) V with
          z = tanh(W_l h + b_l) (h = f before the first), linear output
All take the features f = (cos(k pi x), sin(k pi x) for k = 1..K, t) and all have a Taylor-mode
forward_jet (value, d/dx, d/dt, d2/dx2 pushed through each layer).

Modes:
  bench       time one L-BFGS iteration (torch.optim.LBFGS, strong_wolfe, --history pairs, many
              iterations per step() call) and one Adam step per N_f; prints CSV rows
              --device cpu|cuda|cuda:N (default cpu): model and points on that device (the same
                points and initial weights as on the CPU); on CUDA every clock is read after
                torch.cuda.synchronize(). No CUDA device: one error line, exit status 2.
              --compile: the loss (residual + mean square, as a function of the points) through
                torch.compile (dynamic shapes: one compilation serves every N_f; --compile-mode
                picks its mode); the first call (the compilation) falls in the untimed L-BFGS
                warm-up. The rows are then the compiled ones only. Where torch has no
                torch.compile (1.13) or it fails (e.g. the double backward of --derivatives
                autograd), a '#' line says why and the rows are skipped (exit status 0).
  time-limit  train for --time-limit seconds of training time, then print one JSON line with
              the rel. L2 error on the reference grid of --reference (a .mat file with x, tt, uu
              as written by `ddtrain reference allen_cahn`). The error is also evaluated every
              --metric-every seconds of training time (the evaluations are not on the training
              clock); "time_to" in the JSON gives the first training time at which it was
              <= 1e-2, 1e-3 and 1e-4 (null if never), "metric_history" all [time, error] pairs.
              --optimizer lbfgs (default): torch.optim.LBFGS, strong_wolfe, --history pairs,
                lr 1, tolerance_grad 1e-12, tolerance_change 1e-9, --chunk iterations per
                step() call (time limit, metric and RAD are checked between step() calls; with
                --rad-every K the chunk becomes gcd(--chunk, K)).
              --optimizer adam: torch.optim.Adam with --lr, one step per closure.
              --rad-every K (0 = off): every K iterations/steps redraw the N_f collocation
                points by RAD: 10 N_f uniform candidates, p = |r|/mean|r| + --rad-c, N_f drawn
                without replacement (torch.multinomial); the optimizer (L-BFGS memory, Adam
                moments) is kept.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch


def _init_xavier(module):
    for p in module.parameters():
        if p.dim() == 2:
            torch.nn.init.xavier_normal_(p)
        else:
            torch.nn.init.zeros_(p)


def _jet_linear(layer, s):
    """Affine layer on a jet: the bias only enters the value, the weights act on every part."""
    z = s.reshape(-1, s.shape[-1]) @ layer.weight.t()
    z = z.view(s.shape[0], s.shape[1], -1)
    return torch.cat([(z[0] + layer.bias).unsqueeze(0), z[1:]])


def _jet_tanh(z):
    """tanh on a jet [value, d/dx, d/dt, d2/dx2]."""
    a = torch.tanh(z[0])
    d1 = 1 - a * a
    d2 = -2 * a * d1
    return torch.cat([a.unsqueeze(0), d1 * z[1:3], (d1 * z[3] + d2 * z[1] * z[1]).unsqueeze(0)])


class ResNet(torch.nn.Module):
    def __init__(self, inputs=3, outputs=1, depth=6, width=40):
        super().__init__()
        self.units = torch.nn.ModuleList(
            [torch.nn.Linear(inputs if k == 0 else width, width) for k in range(depth)])
        self.output = torch.nn.Linear(width, outputs)
        _init_xavier(self)

    def forward(self, x):
        h = torch.tanh(self.units[0](x))
        for unit in self.units[1:]:
            h = h + torch.tanh(unit(h))
        return self.output(h)

    def forward_jet(self, stacked):
        """Taylor mode: stacked = (4, n, k) = [value, d/dx, d/dt, d2/dx2]."""
        h = _jet_tanh(_jet_linear(self.units[0], stacked))
        for unit in self.units[1:]:
            h = h + _jet_tanh(_jet_linear(unit, h))
        return _jet_linear(self.output, h)


class FC(torch.nn.Module):
    def __init__(self, inputs=3, outputs=1, depth=6, width=40):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            [torch.nn.Linear(inputs if k == 0 else width, width) for k in range(depth)])
        self.output = torch.nn.Linear(width, outputs)
        _init_xavier(self)

    def forward(self, x):
        h = x
        for layer in self.layers:
            h = torch.tanh(layer(h))
        return self.output(h)

    def forward_jet(self, stacked):
        """Taylor mode: stacked = (4, n, k) = [value, d/dx, d/dt, d2/dx2]."""
        h = stacked
        for layer in self.layers:
            h = _jet_tanh(_jet_linear(layer, h))
        return _jet_linear(self.output, h)


def _jet_product(a, b):
    """Elementwise product of two jets (Leibniz): (ab)' = a' b + a b', (ab)'' = a'' b + 2 a' b' + a b''."""
    a0, b0 = a[0], b[0]
    return torch.cat([(a0 * b0).unsqueeze(0), a[1:3] * b0 + a0 * b[1:3],
                      (a[3] * b0 + 2 * a[1] * b[1] + a0 * b[3]).unsqueeze(0)])


class ModifiedMLP(torch.nn.Module):
    """ddtrain::ModifiedMlp: the same layers, order of parameters and forward."""

    def __init__(self, inputs=3, outputs=1, depth=6, width=40):
        super().__init__()
        self.encoder_u = torch.nn.Linear(inputs, width)
        self.encoder_v = torch.nn.Linear(inputs, width)
        self.gates = torch.nn.ModuleList(
            [torch.nn.Linear(inputs if k == 0 else width, width) for k in range(depth)])
        self.output = torch.nn.Linear(width, outputs)
        _init_xavier(self)

    def forward(self, x):
        u, v = torch.tanh(self.encoder_u(x)), torch.tanh(self.encoder_v(x))
        u_minus_v = u - v
        h = x
        for gate in self.gates:
            h = v + torch.tanh(gate(h)) * u_minus_v  # z u + (1 - z) v
        return self.output(h)

    def forward_jet(self, stacked):
        """Taylor mode: stacked = (4, n, k) = [value, d/dx, d/dt, d2/dx2]."""
        u = _jet_tanh(_jet_linear(self.encoder_u, stacked))
        v = _jet_tanh(_jet_linear(self.encoder_v, stacked))
        u_minus_v = u - v
        h = stacked
        for gate in self.gates:
            h = v + _jet_product(_jet_tanh(_jet_linear(gate, h)), u_minus_v)
        return _jet_linear(self.output, h)


MODELS = {"resnet": ResNet, "fc": FC, "modified-mlp": ModifiedMLP}


def parse_device(text):
    """--device cpu|cuda|cuda:N as a torch.device, or (None, why not) where it cannot be used."""
    if text == "cpu":
        return torch.device("cpu"), None
    if text != "cuda" and not (text.startswith("cuda:") and text[5:].isdigit()):
        return None, f"--device '{text}' is not a device (accepted: cpu, cuda, cuda:N)"
    if not torch.cuda.is_available():
        return None, (f"--device {text}: no CUDA device is available (torch {torch.__version__}, "
                      f"built with CUDA {torch.version.cuda}, or no GPU is present)")
    index = 0 if text == "cuda" else int(text[5:])
    if index >= torch.cuda.device_count():
        return None, f"--device {text}: no such GPU ({torch.cuda.device_count()} present)"
    return torch.device("cuda", index), None


def synchronizer(device):
    """A function that waits for the device's queued work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def uniform_points(n, dtype):
    return torch.rand(n, 2, dtype=dtype) * torch.tensor([2.0, 1.0], dtype=dtype) \
        - torch.tensor([1.0, 0.0], dtype=dtype)


class AllenCahn:
    nu, r = 1e-4, 5.0

    def __init__(self, nf, dtype, seed, derivatives, model="resnet", depth=6, width=40, ic_decay=0.0,
                 fourier_modes=1, device=torch.device("cpu")):
        torch.manual_seed(seed)
        self.ic_decay = ic_decay  # carrier x^2 cos(pi x) exp(-c t), as ddtrain's --ic-decay
        self.frequencies = [k * math.pi for k in range(1, fourier_modes + 1)]  # k pi, k = 1..K
        # Drawn on the CPU whatever the device: the same weights and points everywhere.
        self.model = MODELS[model](inputs=2 * fourier_modes + 1, depth=depth, width=width).to(dtype)
        self.model.to(device)
        self.dtype = dtype
        self.points = uniform_points(nf, dtype).to(device)
        self.derivatives = derivatives
        self.loss_at = self.mean_square_residual  # replaced by its torch.compile'd form (--compile)

    def features(self, x, t):
        """(cos(k pi x), sin(k pi x) for k = 1..K, t): ddtrain's order, cos and sin per k."""
        trig = [f(w * x) for w in self.frequencies for f in (torch.cos, torch.sin)]
        return torch.cat(trig + [t], 1)

    def predict(self, xt):
        x, t = xt[:, :1], xt[:, 1:]
        features = self.features(x, t)
        carrier = x * x * torch.cos(math.pi * x) * torch.exp(-self.ic_decay * t)
        return (carrier + t * self.model(features)).reshape(-1)

    def residual_autograd(self, points):
        xt = points.clone().requires_grad_(True)
        u = self.predict(xt)
        du = torch.autograd.grad(u, xt, torch.ones_like(u), create_graph=True)[0]
        u_x, u_t = du[:, 0], du[:, 1]
        u_xx = torch.autograd.grad(u_x, xt, torch.ones_like(u_x), create_graph=True)[0][:, 0]
        return u_t - self.nu * u_xx + self.r * (u ** 3 - u)

    def residual_taylor(self, points):
        x, t = points[:, :1], points[:, 1:]
        pi = math.pi
        c, s = torch.cos(pi * x), torch.sin(pi * x)
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        # Per k (w = k pi): d/dx (cos w x, sin w x) = w (-sin, cos), d2/dx2 = -w^2 (cos, sin).
        value, dx, dt, dxx = [], [], [], []
        for w in self.frequencies:
            cw, sw = (c, s) if w == pi else (torch.cos(w * x), torch.sin(w * x))
            value += [cw, sw]
            dx += [-w * sw, w * cw]
            dt += [zero, zero]
            dxx += [-w * w * cw, -w * w * sw]
        stacked = torch.stack([torch.cat(value + [t], 1), torch.cat(dx + [zero], 1),
                               torch.cat(dt + [one], 1), torch.cat(dxx + [zero], 1)])
        n = self.model.forward_jet(stacked)
        x2 = x * x
        e = torch.exp(-self.ic_decay * t)
        u = x2 * c * e + t * n[0]
        u_t = n[0] + t * n[2] - self.ic_decay * x2 * c * e
        u_xx = (2 * c - 4 * pi * x * s - pi * pi * x2 * c) * e + t * n[3]
        return (u_t - self.nu * u_xx + self.r * (u ** 3 - u)).reshape(-1)

    def residual(self, points):
        if self.derivatives == "taylor":
            return self.residual_taylor(points)
        return self.residual_autograd(points)

    def mean_square_residual(self, points):
        return self.residual(points).square().mean()

    def loss(self):
        return self.loss_at(self.points)

    def abs_residual(self, points, block=16384):
        """|r| at points, without a graph (in blocks to bound memory)."""
        out = []
        for chunk in points.split(block):
            if self.derivatives == "taylor":
                with torch.no_grad():
                    out.append(self.residual_taylor(chunk).abs())
            else:
                with torch.enable_grad():
                    out.append(self.residual_autograd(chunk).detach().abs())
        return torch.cat(out)

    def resample_rad(self, c):
        """RAD (k = 1): nf points out of 10 nf uniform candidates, p = |r|/mean|r| + c."""
        nf = self.points.shape[0]
        candidates = uniform_points(10 * nf, self.dtype).to(self.points.device)
        r = self.abs_residual(candidates).double()
        p = r / r.mean() + c
        index = torch.multinomial(p, nf, replacement=False)
        self.points = candidates[index].contiguous()


def lbfgs(problem, max_iter, history=10):
    # ddtrain's L-BFGS defaults: 10 pairs, initial step 1, strong Wolfe with 25 evaluations.
    return torch.optim.LBFGS(problem.model.parameters(), lr=1.0, max_iter=max_iter, max_eval=None,
                             tolerance_grad=1e-12, tolerance_change=1e-9, history_size=history,
                             line_search_fn="strong_wolfe")


def closure_of(problem, optimizer):
    def closure():
        optimizer.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss
    return closure


def make_problem(args, nf, dtype, device=torch.device("cpu")):
    return AllenCahn(nf, dtype, args.seed, args.derivatives, args.model, args.depth, args.width,
                     args.ic_decay, args.fourier_modes, device)


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class CompiledProblems:
    """--compile: one problem whose loss goes through torch.compile, reloaded with the weights and
    points of a fresh make_problem() for every measurement (one compiled function, not one per
    problem object: new objects would make torch.compile recompile, and after its cache limit
    silently run eager)."""

    def __init__(self, args, dtype, device):
        self.args, self.dtype, self.device = args, dtype, device
        self.problem = make_problem(args, 1, dtype, device)
        self.problem.loss_at = torch.compile(self.problem.mean_square_residual, dynamic=True,
                                             mode=args.compile_mode)

    def __call__(self, nf):
        fresh = make_problem(self.args, nf, self.dtype, self.device)
        with torch.no_grad():
            for mine, theirs in zip(self.problem.model.parameters(), fresh.model.parameters()):
                mine.copy_(theirs)
        self.problem.points = fresh.points
        return self.problem


def bench_row(args, nf, new_problem, sync):
    """One CSV row: the L-BFGS iteration and the Adam step at nf points."""
    problem = new_problem(nf)
    # L-BFGS: one step() call running many iterations (PyTorch's fastest way to drive it).
    opt = lbfgs(problem, args.lbfgs_iterations, args.history)
    closure = closure_of(problem, opt)
    t0 = time.perf_counter()
    opt.step(closure)  # warm-up (allocations, first-iteration scaling; with --compile the compilation)
    sync()
    if args.compile and nf == args.nf[0]:
        print(f"# --compile, --derivatives {args.derivatives}: warm-up at N_f {nf} "
              f"(compilation included) {time.perf_counter() - t0:.1f} s", flush=True)
    n_iter0, evals0 = opt.state[opt._params[0]]["n_iter"], opt.state[opt._params[0]]["func_evals"]
    t0, c0 = time.perf_counter(), time.process_time()
    opt.step(closure)
    sync()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    state = opt.state[opt._params[0]]
    iterations = state["n_iter"] - n_iter0
    evaluations = state["func_evals"] - evals0
    # Adam: median of single steps.
    problem = new_problem(nf)
    adam = torch.optim.Adam(problem.model.parameters(), lr=args.lr)
    closure = closure_of(problem, adam)
    times = []
    for k in range(args.adam_steps + 2):
        if k == 2:
            sync()
            c1 = time.process_time()
        t1 = time.perf_counter()
        adam.step(closure)
        if k >= 2:
            sync()
            times.append(time.perf_counter() - t1)
    adam_cpu = (time.process_time() - c1) / args.adam_steps
    return (f"{nf},{1e3 * seconds / max(iterations, 1):.3f},{evaluations / max(iterations, 1):.2f},"
            f"{1e3 * statistics.median(times):.3f},{1e3 * cpu / max(iterations, 1):.3f},"
            f"{1e3 * adam_cpu:.3f}")


def bench(args, dtype, device):
    where = ""
    if device.type == "cuda":
        where = f", device {device} ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"
    compiled = f", torch.compile (mode {args.compile_mode}, dynamic shapes)" if args.compile else ""
    print(f"# pytorch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"derivatives {args.derivatives}{where}{compiled}")
    parameters = sum(p.numel() for p in make_problem(args, 1, dtype).model.parameters())
    print(f"# model {args.model}, depth {args.depth}, width {args.width} ({parameters} parameters), "
          f"fourier-modes {args.fourier_modes}, ic-decay {args.ic_decay:g}")
    print("# nf,lbfgs_ms_per_iteration,lbfgs_evaluations_per_iteration,adam_ms_per_step,"
          "lbfgs_cpu_ms_per_iteration,adam_cpu_ms_per_step")
    sync = synchronizer(device)
    if not args.compile:
        for nf in args.nf:
            print(bench_row(args, nf, lambda n: make_problem(args, n, dtype, device), sync), flush=True)
        return
    # --compile: any failure of torch.compile (missing, tracing, compiling, running) is reported
    # on a '#' line and skips the rows (it would fail the same way at the other sizes).
    skip = f"# --compile, --derivatives {args.derivatives}: "
    if not hasattr(torch, "compile"):
        print(f"{skip}torch {torch.__version__} has no torch.compile (it came with 2.0); rows skipped")
        return
    nf = args.nf[0]
    try:
        compiled_problems = CompiledProblems(args, dtype, device)
        for nf in args.nf:
            print(bench_row(args, nf, compiled_problems, sync), flush=True)
    except Exception as error:  # noqa: BLE001
        print(f"{skip}torch.compile failed at N_f {nf} ({_first_line(error)}); rows skipped", flush=True)


THRESHOLDS = (("1e-2", 1e-2), ("1e-3", 1e-3), ("1e-4", 1e-4))


def time_limited(args, dtype):
    import scipy.io
    ref = scipy.io.loadmat(args.reference)
    x = torch.tensor(ref["x"], dtype=torch.float64).reshape(-1)
    t = torch.tensor(ref["tt"], dtype=torch.float64).reshape(-1)
    uu = torch.tensor(ref["uu"], dtype=torch.float64)  # (nx, nt)
    if uu.shape != (x.numel(), t.numel()):
        uu = uu.t()
    grid = torch.stack([x.repeat_interleave(t.numel()), t.repeat(x.numel())], 1).to(dtype)
    ref_values = uu.reshape(-1)
    ref_norm = ref_values.norm()

    problem = make_problem(args, args.nf[0], dtype)

    def rel_l2():
        with torch.no_grad():
            pred = torch.cat([problem.predict(chunk) for chunk in grid.split(16384)]).double()
            return ((pred - ref_values).norm() / ref_norm).item()

    chunk = args.chunk
    if args.optimizer == "lbfgs":
        if args.rad_every > 0:
            chunk = math.gcd(chunk, args.rad_every)
        opt = lbfgs(problem, chunk, args.history)
    else:
        opt = torch.optim.Adam(problem.model.parameters(), lr=args.lr)
    closure = closure_of(problem, opt)

    steps = evaluations = resamples = 0  # Adam counters (L-BFGS keeps its own in its state)
    next_rad = args.rad_every
    time_to = {name: None for name, _ in THRESHOLDS}
    history = []
    loss = float("nan")
    trained = 0.0  # training seconds before the current segment
    next_metric = args.metric_every if args.metric_every > 0 else math.inf
    segment = time.perf_counter()
    while True:
        if args.optimizer == "lbfgs":
            loss = opt.step(closure)
            iterations = opt.state[opt._params[0]]["n_iter"]
        else:
            loss = opt.step(closure)
            steps += 1
            evaluations += 1
            iterations = steps
        if args.rad_every > 0 and iterations >= next_rad:
            problem.resample_rad(args.rad_c)
            resamples += 1
            next_rad = (iterations // args.rad_every + 1) * args.rad_every
        now = trained + time.perf_counter() - segment
        done = now >= args.time_limit
        if done or now >= next_metric:
            metric = rel_l2()  # off the training clock
            history.append([round(now, 3), metric])
            for name, value in THRESHOLDS:
                if time_to[name] is None and metric <= value:
                    time_to[name] = round(now, 3)
            while next_metric <= now:
                next_metric += args.metric_every
            trained = now
            segment = time.perf_counter()
        if done:
            break

    if args.optimizer == "lbfgs":
        state = opt.state[opt._params[0]]
        iterations, evaluations = state["n_iter"], state["func_evals"]
    else:
        iterations = steps
    print(json.dumps({"side": "pytorch", "model": args.model, "depth": args.depth, "ic_decay": args.ic_decay,
                      "fourier_modes": args.fourier_modes,
                      "width": args.width, "optimizer": args.optimizer,
                      "history": args.history if args.optimizer == "lbfgs" else None,
                      "lr": args.lr if args.optimizer == "adam" else None,
                      "chunk": chunk if args.optimizer == "lbfgs" else None,
                      "rad_every": args.rad_every, "rad_c": args.rad_c, "resamples": resamples,
                      "precision": args.precision, "derivatives": args.derivatives,
                      "nf": args.nf[0], "threads": torch.get_num_threads(),
                      "wall_s": round(trained, 2), "iterations": iterations,
                      "evaluations": evaluations, "loss": float(loss), "metric": history[-1][1],
                      "time_to": time_to, "metric_history": history}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["bench", "time-limit"], default="bench")
    p.add_argument("--nf", type=int, nargs="+", default=[2000, 10000, 40000])
    p.add_argument("--precision", choices=["float32", "float64"], default="float32")
    p.add_argument("--derivatives", choices=["autograd", "taylor"], default="autograd")
    p.add_argument("--model", choices=sorted(MODELS), default="resnet")
    p.add_argument("--depth", type=int, default=6,
                   help="resnet: lift + depth-1 blocks; fc: hidden layers; modified-mlp: gated layers")
    p.add_argument("--width", type=int, default=40)
    p.add_argument("--fourier-modes", type=int, default=1,
                   help="K: the network takes cos(k pi x), sin(k pi x) for k = 1..K and t (ddtrain's --fourier-modes)")
    p.add_argument("--ic-decay", type=float, default=0.0,
                   help="carry the initial condition as x^2 cos(pi x) exp(-c t) (ddtrain's --ic-decay)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lbfgs-iterations", type=int, default=20, help="bench: iterations timed")
    p.add_argument("--adam-steps", type=int, default=21, help="bench: Adam steps timed")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                   help="time-limit mode: optimizer")
    p.add_argument("--history", type=int, default=10, help="L-BFGS pairs kept")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--time-limit", type=float, default=120.0,
                   help="time-limit mode: training seconds")
    p.add_argument("--chunk", type=int, default=10, help="time-limit mode: iterations per step()")
    p.add_argument("--metric-every", type=float, default=10.0,
                   help="time-limit mode: training seconds between rel. L2 evaluations")
    p.add_argument("--rad-every", type=int, default=0,
                   help="time-limit mode: RAD resampling every K iterations (0 = off)")
    p.add_argument("--rad-c", type=float, default=0.0, help="RAD: p = |r|/mean|r| + c")
    p.add_argument("--reference", default="ref.mat", help="time-limit mode: reference .mat")
    p.add_argument("--device", default="cpu", help="bench mode: cpu | cuda | cuda:N")
    p.add_argument("--compile", action="store_true", help="bench mode: the loss through torch.compile")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="bench mode: torch.compile's mode (with --compile)")
    args = p.parse_args()
    if args.depth < 1 or args.width < 1 or args.history < 1 or args.chunk < 1 or args.rad_every < 0:
        p.error("--depth, --width, --history and --chunk must be >= 1, --rad-every >= 0")
    if not 1 <= args.fourier_modes <= 64:
        p.error("--fourier-modes must be in [1, 64]")
    if args.mode != "bench" and (args.device != "cpu" or args.compile):
        p.error("--device and --compile apply to --mode bench")
    device, why_not = parse_device(args.device)
    if device is None:
        print(f"pytorch_allen_cahn.py: error: {why_not}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    if args.mode == "bench":
        bench(args, dtype, device)
    else:
        time_limited(args, dtype)


if __name__ == "__main__":
    sys.exit(main())
