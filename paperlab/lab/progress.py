"""Training progress on stderr: a rich bar on a terminal, one line per epoch in a log or a pipe."""

from __future__ import annotations

import sys


class EpochLines:
    def __init__(self, label: str, epochs: int, steps_per_epoch: int):
        self.label, self.epochs = label, epochs

    def step(self) -> None:
        pass

    def epoch(self, log) -> None:
        left = (self.epochs - log.epoch) * log.epoch_seconds
        print(f"{self.label:<8} epoch {log.epoch:>3}/{self.epochs}  loss {log.train_loss:.4f}  "
              f"val error {log.val_error:>5}  {log.samples_per_s:>9,.0f} samples/s  ~{left:,.0f}s left",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class RichBar(EpochLines):
    def __init__(self, label: str, epochs: int, steps_per_epoch: int):
        super().__init__(label, epochs, steps_per_epoch)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[stats]}"), console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task(f"{label} epoch 1/{epochs}", total=epochs * steps_per_epoch, stats="")
        self.progress.start()

    def step(self) -> None:
        self.progress.advance(self.task)

    def epoch(self, log) -> None:
        self.progress.update(self.task, description=f"{self.label} epoch {min(log.epoch + 1, self.epochs)}/{self.epochs}",
                             stats=f"loss {log.train_loss:.4f}  val error {log.val_error}  "
                                   f"{log.samples_per_s:,.0f} samples/s")

    def close(self) -> None:
        self.progress.stop()


class Silent(EpochLines):
    """A worker other than rank 0 under torchrun: rank 0 speaks for all."""
    def epoch(self, log) -> None:
        pass


def for_terminal(label: str | None, epochs: int, steps_per_epoch: int) -> EpochLines:
    """Progress for `label`; None: say nothing (a rank other than 0)."""
    kind = Silent if label is None else RichBar if sys.stderr.isatty() else EpochLines
    return kind(label, epochs, steps_per_epoch)
