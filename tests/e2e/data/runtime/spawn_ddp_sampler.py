"""DDP on 2 processes that the script starts itself (mp.spawn), each on its own half of the data.

The shape of the PyTorch DDP tutorial with a DistributedSampler, on CPU (gloo). It does not seed:
``migrate validate`` seeds each process, so both build the same data and model. Each process
prints what it computed (``tests/runtime/test_spawned.py`` compares that with what was recorded);
an optional argument makes it fail at that step.

Run: python spawn_ddp_sampler.py [FAIL_AT_STEP]
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def say(line):
    # One write per line: the two processes share the output, and print() may split a line.
    os.write(1, (line + "\n").encode())


def train(rank, world_size, port, fail_at):
    say(f"CHILD rank={rank} seed={torch.initial_seed()} WORLD_SIZE={os.environ.get('WORLD_SIZE')}")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    x = torch.randn(96, 4)
    data = TensorDataset(x, x.sum(1, keepdim=True))
    loader = DataLoader(data, batch_size=8, sampler=DistributedSampler(data, shuffle=True))
    model = DDP(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step, (xb, yb) in enumerate(loader, 1):
        if step == fail_at:
            raise RuntimeError(f"broken on purpose at step {step}")
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        say(f"LOSS rank={rank} step={step} value={loss.item()!r}")
    dist.destroy_process_group()


def free_port():
    # Not a port the kernel picks (bind to 0): those come from its ephemeral range (32768 and up),
    # where any other program's next outgoing connection may take it before rank 0 listens on it,
    # and rank 1 then talks gloo to a stranger (SIGABRT). Below that range, nobody is handed it.
    import random
    import socket

    for port in random.Random().sample(range(20000, 30000), 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


if __name__ == "__main__":
    port = free_port()
    fail_at = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    mp.spawn(train, args=(2, port, fail_at), nprocs=2, join=True)
