"""Process launching: Detectron2's ``launch`` on GPUs or CPUs (gloo), and ``torchrun``."""
import functools
import os
import warnings

import torch
import torch.distributed as dist
from detectron2.engine import launch as d2_launch
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel


def create_ddp_model(model: torch.nn.Module, sync_buffers: bool = True,
                     **kwargs) -> torch.nn.Module:
    """Wrap ``model`` in DDP when there are several processes; unlike Detectron2's version this
    passes GPU ``device_ids`` only for CUDA models, so CPU (gloo) training works too.
    ``sync_buffers`` False: buffers are not copied from rank 0 before every forward."""
    if comm.get_world_size() == 1:
        return model
    if next(model.parameters()).device.type == "cuda":
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    # torch 2.14 deprecates broadcast_buffers for forward_sync_buffers, whose False still syncs
    # the buffers at construction: keep the behaviour every multi-process test was run with.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated", FutureWarning)
        return DistributedDataParallel(model, broadcast_buffers=sync_buffers, **kwargs)


def _run_torchrun_worker(main_func, args) -> None:
    """Join the process group ``torchrun`` describes in the environment, then run ``main_func``."""
    has_gpu = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if has_gpu else "gloo", init_method="env://")
    comm.create_local_process_group(int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    if has_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    comm.synchronize()
    try:
        main_func(args)
    finally:
        dist.destroy_process_group()


def _run_then_leave_the_group(main_func, args):
    """``main_func(args)``, then (when it returned on every process) a barrier and the process
    group's orderly destruction: Detectron2's workers leave it to interpreter exit, where gloo's
    teardown can race with another rank and abort ("terminate called without an active
    exception")."""
    result = main_func(args)
    if dist.is_available() and dist.is_initialized():
        comm.synchronize()
        dist.destroy_process_group()
    return result


def launch(main_func, args) -> None:
    """Run ``main_func(args)`` as Detectron2's ``default_argument_parser`` arguments ask.

    ``--dist-url env://`` inside ``torchrun`` joins the group torchrun set up; anything else goes
    through Detectron2's ``launch`` (``--num-gpus N`` spawns N processes, on CPU with gloo when
    there is no GPU).
    """
    if args.dist_url == "env://" and "WORLD_SIZE" in os.environ:
        _run_torchrun_worker(main_func, args)
        return
    d2_launch(functools.partial(_run_then_leave_the_group, main_func), args.num_gpus,
              num_machines=args.num_machines, machine_rank=args.machine_rank,
              dist_url=args.dist_url, args=(args,))
