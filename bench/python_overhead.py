#!/usr/bin/python3
"""Per-iteration overhead of ddtrain.optim.LBFGS against torch.optim.LBFGS on the SAME PyTorch
closure (issue 24, item 5).

Both run L-BFGS with 10 pairs and a strong-Wolfe line search on a fully connected tanh network
fitting sin(3x) sin(2y) (mean squared error over N points). torch.optim.LBFGS runs its
iterations inside one step() call (max_iter = --iterations, tolerances 0 so it never stops
early); ddtrain runs one step() per iteration. Closure calls are counted on both sides (the
line-search evaluations), and the time of the closure alone is measured, so that the table
separates the solver's own cost from the evaluations:

  per iteration      wall time / iterations
  evals / iteration  closure calls / iterations
  overhead / eval    (wall time - calls x closure time) / calls: what the optimizer adds to
                     each evaluation (copies, vector algebra, the line search)

Usage: PYTHONPATH=build/python OMP_NUM_THREADS=1 /usr/bin/python3 bench/python_overhead.py
       [--width 20 --depth 3 --points 256 --iterations 200 --repeats 3 --dtype float64]
Prints one CSV row per optimizer and configuration.
"""
import argparse
import statistics
import time

import torch

import ddtrain


def make_problem(width, depth, points, dtype, seed=0):
    torch.manual_seed(seed)
    layers, inputs = [], 2
    for _ in range(depth):
        layers += [torch.nn.Linear(inputs, width), torch.nn.Tanh()]
        inputs = width
    layers.append(torch.nn.Linear(inputs, 1))
    model = torch.nn.Sequential(*layers).to(dtype)
    X = (torch.rand(points, 2, dtype=dtype) * 2 - 1)
    y = torch.sin(3 * X[:, :1]) * torch.sin(2 * X[:, 1:])
    return model, X, y


def closure_for(model, X, y, opt, counter):
    def closure():
        counter[0] += 1
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss
    return closure


def final_loss(model, X, y):
    # torch.optim.LBFGS.step returns the loss at the START of the call: evaluate both here.
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(X), y).item()


def time_closure(model, X, y, repeats=200):
    params = list(model.parameters())
    for _ in range(10):
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
    start = time.perf_counter()
    for _ in range(repeats):
        for p in params:
            p.grad = None
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
    return (time.perf_counter() - start) / repeats


def run_torch(args, dtype):
    model, X, y = make_problem(args.width, args.depth, args.points, dtype)
    counter = [0]
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=args.iterations, max_eval=10 ** 9,
                            tolerance_grad=0, tolerance_change=0, history_size=10,
                            line_search_fn="strong_wolfe")
    closure = closure_for(model, X, y, opt, counter)
    start = time.perf_counter()
    opt.step(closure)
    elapsed = time.perf_counter() - start
    iterations = opt.state[opt._params[0]]["n_iter"]
    return elapsed, iterations, counter[0], final_loss(model, X, y), model, X, y


def run_ddtrain(args, dtype, comm):
    model, X, y = make_problem(args.width, args.depth, args.points, dtype)
    counter = [0]
    opt = ddtrain.optim.LBFGS(model.parameters(), history=10, gradient_tolerance=0, step_tolerance=0, comm=comm)
    closure = closure_for(model, X, y, opt, counter)
    iterations = 0
    start = time.perf_counter()
    for _ in range(args.iterations):
        opt.step(closure)
        iterations += 1
        if opt.last_step["termination"] != "running":
            break
    elapsed = time.perf_counter() - start
    return elapsed, iterations, counter[0], final_loss(model, X, y), model, X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--points", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    comm = ddtrain._core.make_communicator("self")
    print("optimizer,width,depth,points,parameters,iterations,evals_per_iteration,ms_per_iteration,"
          "closure_ms,overhead_ms_per_eval,final_loss")
    base_args = args
    for width in args.width:
        for points in args.points:
            rows = {}
            for name in ("torch", "ddtrain"):
                runs = []
                for _ in range(args.repeats):
                    a = argparse.Namespace(**vars(base_args))
                    a.width, a.points = width, points
                    runs.append(run_torch(a, dtype) if name == "torch" else run_ddtrain(a, dtype, comm))
                elapsed = statistics.median(r[0] for r in runs)
                _, iterations, calls, loss, model, X, y = runs[0]
                closure_s = time_closure(model, X, y)
                params = sum(p.numel() for p in model.parameters())
                overhead = (elapsed - calls * closure_s) / calls
                rows[name] = elapsed / iterations
                print(f"{name},{width},{args.depth},{points},{params},{iterations},{calls / iterations:.3f},"
                      f"{1e3 * elapsed / iterations:.3f},{1e3 * closure_s:.3f},{1e3 * overhead:.4f},{loss:.6e}",
                      flush=True)
            print(f"# width {width}, points {points}: ddtrain / torch time per iteration = "
                  f"{rows['ddtrain'] / rows['torch']:.2f}", flush=True)


if __name__ == "__main__":
    main()
