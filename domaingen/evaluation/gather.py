"""Collecting per-process evaluation records on the main process."""
from typing import List, Optional

from detectron2.utils import comm


def gather_on_main(records: list, distributed: bool) -> Optional[List]:
    """All processes' ``records`` concatenated on the main process; ``None`` on the others."""
    if not distributed:
        return records
    comm.synchronize()
    gathered = comm.gather(records, dst=0)
    if not comm.is_main_process():
        return None
    return [r for per_rank in gathered for r in per_rank]
