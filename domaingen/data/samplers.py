"""Training samplers whose stream can resume where an interrupted run stopped."""
import itertools

from detectron2.data.samplers import TrainingSampler


class ResumableTrainingSampler(TrainingSampler):
    """Detectron2's TrainingSampler (the same infinite, seeded, per-rank sharded index stream)
    started ``start`` indices into the global stream: set ``start = iteration * total batch``
    before the first batch is drawn and a resumed run sees the batches an uninterrupted run
    would have seen from that iteration on."""

    def __init__(self, size: int, shuffle: bool = True, seed=None):
        super().__init__(size, shuffle=shuffle, seed=seed)
        self.start = 0

    def __iter__(self):
        yield from itertools.islice(self._infinite_indices(), self.start + self._rank, None,
                                    self._world_size)
