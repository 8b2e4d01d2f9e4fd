#!/usr/bin/python3
"""A Fashion-MNIST feed-forward network in plain PyTorch trained with ddtrain.optim.SAPTS
(additive trust region over data subdomains), next to torch.optim.Adam, for the same number of
epochs.

Every mini-batch (same shuffle on every rank) is cut into `--subdomains` micro-batches
(default: the number of ranks); rank r evaluates micro-batches r, r + P, ...: the closure takes
the micro-batch index and returns the mean loss over it. The data are Debian's
dataset-fashion-mnist (/usr/share/datasets/fashion-mnist; --data for another IDX directory).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/mnist_sapts.py --epochs 2
    mpirun -np 2 -x PYTHONPATH=build/python -x OMP_NUM_THREADS=1 /usr/bin/python3 \\
        examples/python/mnist_sapts.py --epochs 2 --optimizers sapts
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch

import ddtrain


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.tensor(images, dtype=torch.float32).reshape(len(images), -1) / 255.0
    return (x - 0.2860) / 0.3530, torch.tensor(labels, dtype=torch.long)


def ffnn(hidden, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def train(name, args, comm, data):
    (x, y), (x_test, y_test) = data
    model = ffnn(args.hidden, args.seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    subdomains = args.subdomains or comm.size
    if name == "sapts":
        opt = ddtrain.optim.SAPTS(model, subdomains=subdomains, comm=comm)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.adam_lr)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    steps = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=generator)
        for batch in order.split(args.batch_size):
            if len(batch) < subdomains:
                continue
            if name == "sapts":
                micro = batch.chunk(subdomains)

                def closure(i):
                    loss = loss_fn(model(x[micro[i]]), y[micro[i]])
                    loss.backward()
                    return loss

                opt.step(closure, weights=[len(m) for m in micro])
            else:
                opt.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                opt.step()
            steps += 1
    elapsed = time.perf_counter() - start
    return dict(optimizer=name, ranks=comm.size, subdomains=subdomains if name == "sapts" else "-",
                steps=steps, seconds=elapsed, accuracy=accuracy(model, x_test, y_test))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", nargs="+", default=["sapts", "adam"], choices=["sapts", "adam"])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--subdomains", type=int, default=0, help="micro-batches per mini-batch (0: ranks)")
    parser.add_argument("--adam-lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    comm = ddtrain.init()
    data = load(args.data, "train"), load(args.data, "test")
    if comm.rank == 0:
        print("| optimizer | ranks | micro-batches | steps | train s | test accuracy |")
        print("|---|---|---|---|---|---|")
    for name in args.optimizers:
        if name == "adam" and comm.size > 1:
            continue
        row = train(name, args, comm, data)
        if comm.rank == 0:
            print("| {optimizer} | {ranks} | {subdomains} | {steps} | {seconds:.1f} | {accuracy:.4f} |".format(**row),
                  flush=True)


if __name__ == "__main__":
    main()
