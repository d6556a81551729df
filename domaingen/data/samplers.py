"""Training samplers and loaders whose stream can resume where an interrupted run stopped."""
import copy
import itertools

from detectron2.data.common import AspectRatioGroupedDataset
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


class EagerGroupedLoader:
    """Detectron2's aspect-ratio grouped loader whose iterator creates the inner DataLoader's
    iterator at once, not at the first batch: creating it draws from torch's RNG, which the
    Trainer seeds per step, so it must happen before the first seeding."""

    def __init__(self, grouped: AspectRatioGroupedDataset):
        self.grouped = grouped

    def __iter__(self):
        grouped = copy.copy(self.grouped)
        grouped.dataset = iter(grouped.dataset)
        return iter(grouped)
