"""Process launching: Detectron2's ``launch`` on GPUs or CPUs (gloo), and ``torchrun``."""
import inspect
import logging
import os

import torch
import torch.distributed as dist
from detectron2.engine import launch as d2_launch
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)


# torch 2.14 renamed DDP's broadcast_buffers (now deprecated, with a warning) forward_sync_buffers.
SYNC_BUFFERS = ("forward_sync_buffers" if "forward_sync_buffers" in
                inspect.signature(DistributedDataParallel.__init__).parameters
                else "broadcast_buffers")


def create_ddp_model(model: torch.nn.Module, sync_buffers: bool = True,
                     **kwargs) -> torch.nn.Module:
    """Wrap ``model`` in DDP when there are several processes; unlike Detectron2's version this
    passes GPU ``device_ids`` only for CUDA models, so CPU (gloo) training works too.
    ``sync_buffers`` False: buffers are not copied from rank 0 before every forward."""
    if comm.get_world_size() == 1:
        return model
    if next(model.parameters()).device.type == "cuda":
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    return DistributedDataParallel(model, **{SYNC_BUFFERS: sync_buffers}, **kwargs)


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


def launch(main_func, args) -> None:
    """Run ``main_func(args)`` as Detectron2's ``default_argument_parser`` arguments ask.

    ``--dist-url env://`` inside ``torchrun`` joins the group torchrun set up; anything else goes
    through Detectron2's ``launch`` (``--num-gpus N`` spawns N processes, on CPU with gloo when
    there is no GPU).
    """
    if args.dist_url == "env://" and "WORLD_SIZE" in os.environ:
        _run_torchrun_worker(main_func, args)
        return
    d2_launch(main_func, args.num_gpus, num_machines=args.num_machines,
              machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
