"""Constants and helpers shared by the tests (fixtures live in conftest.py)."""
import os

QUICK_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "quick",
                            "diverse_weather_clip_rcnn.yaml")
# Small and fast: tests check behaviour, the quickstart shows accuracy.
FAST_OPTS = [
    "DATALOADER.NUM_WORKERS", "0",
    "SOLVER.IMS_PER_BATCH", "2",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "DATASETS.TEST", "('synthetic_dw_daytime_clear_test',)",
]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_on_cpu(worker, args, nprocs=2):
    """Run ``worker(*args)`` in ``nprocs`` gloo processes through Detectron2's ``launch``.

    The free port is chosen before the processes bind it, so another program can take it in
    between: one retry on a fresh port keeps that race from failing a test; a real failure
    fails twice.
    """
    from detectron2.engine import launch

    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # spawned ranks use GLOO on CPU
    try:
        for attempt in range(2):
            try:
                return launch(worker, nprocs, dist_url=f"tcp://127.0.0.1:{free_port()}",
                              args=args)
            except Exception:
                if attempt:
                    raise
    finally:
        if previous is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
