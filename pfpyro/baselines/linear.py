"""A softmax tagger on frozen word features: the classifier inside every baseline.

Each word is tagged independently: ``p(y | h) = softmax(W h + b)`` on its (standardised)
encoder feature ``h``. It is trained with Adam on mini-batches of sentences to minimise the
cross-entropy averaged over the real words of the batch, divided once by their count (the
authors' code divided by the batch size twice, DESIGN §8). Early stopping, when a dev set is
given, keeps the epoch with the lowest dev cross-entropy.

Sentences are stored as one flat table of words plus each sentence's offset, so pooling many
pairs (JM) costs no padding and a mini-batch is just the words of the chosen sentences.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pfpyro.config import LinearConfig
from pfpyro.data.batch import PairTensors, feature_moments
from pfpyro.device import resolve_device


@dataclass
class WordTable:
    """The real words of one or more pairs: features [W, e] (fp16), labels [W], offsets.

    Sentence ``s`` owns rows ``starts[s] : starts[s] + lengths[s]``.
    """

    features: Tensor
    labels: Tensor
    starts: Tensor
    lengths: Tensor

    @classmethod
    def of(cls, pairs: PairTensors | Sequence[PairTensors]) -> WordTable:
        pairs = [pairs] if isinstance(pairs, PairTensors) else list(pairs)
        if not pairs:
            raise ValueError("no training data: an empty list of pairs")
        features = torch.cat([p.features[p.mask] for p in pairs])
        labels = torch.cat([p.labels[p.mask] for p in pairs])
        lengths = torch.cat([p.mask.sum(-1) for p in pairs])
        lengths = lengths[lengths > 0]  # a sentence without words has nothing to learn
        starts = torch.cumsum(lengths, 0) - lengths
        return cls(features, labels, starts, lengths)

    def __len__(self) -> int:
        return int(self.lengths.numel())

    def word_index(self, sentences: Tensor) -> Tensor:
        """The row indices of the words of ``sentences``, in order."""
        lengths = self.lengths[sentences]
        first = torch.repeat_interleave(self.starts[sentences], lengths)
        offset_in_batch = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        return first + torch.arange(int(lengths.sum())) - offset_in_batch


@dataclass
class TrainingRecord:
    """What happened in :meth:`LinearTagger.fit`: per-epoch losses, steps, the chosen epoch."""

    train_loss: list[float] = field(default_factory=list)
    dev_loss: list[float] = field(default_factory=list)
    steps: int = 0
    best_epoch: int = -1


class LinearTagger(nn.Module):
    """Softmax regression from e-dimensional word features to ``num_classes`` labels."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(feature_dim, num_classes)
        nn.init.zeros_(self.linear.weight)  # a convex problem: zero is a fine, seedless start
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("scale", torch.ones(feature_dim))
        self.record = TrainingRecord()

    @property
    def num_classes(self) -> int:
        return self.linear.out_features

    def logits(self, features: Tensor) -> Tensor:
        """[..., e] features -> [..., c] logits."""
        return self.linear((features.to(self.mean.dtype) - self.mean) / self.scale)

    @torch.no_grad()
    def predict_proba(self, features: Tensor, mask: Tensor, batch_size: int = 256) -> Tensor:
        """[N, T, e] features, [N, T] mask -> [N, T, c] probabilities (padding rows finite)."""
        if features.dim() != 3 or features.shape[:2] != mask.shape:
            raise ValueError(
                f"features {tuple(features.shape)} must be [N, T, e] with mask "
                f"{tuple(mask.shape)} as [N, T]"
            )
        device = self.mean.device
        out = torch.empty(*mask.shape, self.num_classes)
        for lo in range(0, features.shape[0], batch_size):
            chunk = features[lo : lo + batch_size].to(device)
            out[lo : lo + batch_size] = self.logits(chunk).softmax(-1).cpu()
        return out

    @torch.no_grad()
    def mean_loss(self, pairs: PairTensors | Sequence[PairTensors] | WordTable) -> float:
        """Cross-entropy per real word (nats) on labelled data."""
        table = pairs if isinstance(pairs, WordTable) else WordTable.of(pairs)
        device = self.mean.device
        total = 0.0
        for lo in range(0, table.labels.numel(), 65536):
            x = table.features[lo : lo + 65536].to(device)
            y = table.labels[lo : lo + 65536].to(device)
            total += float(nn.functional.cross_entropy(self.logits(x), y, reduction="sum"))
        return total / max(table.labels.numel(), 1)

    @classmethod
    def fit(
        cls,
        train: PairTensors | Sequence[PairTensors],
        dev: PairTensors | Sequence[PairTensors] | None = None,
        *,
        num_classes: int,
        config: LinearConfig | None = None,
        seed: int = 0,
        **overrides,
    ) -> LinearTagger:
        """Train a tagger on ``train`` (one pair, or several pooled), seeded.

        ``config`` sets the hyperparameters; keyword ``overrides`` (e.g. ``epochs=5, lr=1e-2,
        batch_size=16, max_steps=100``) replace single fields of it.
        """
        config = dataclasses.replace(config or LinearConfig(), **overrides)
        with torch_threads(config.threads):
            return cls._fit(train, dev, num_classes, config, seed)

    @classmethod
    def _fit(
        cls,
        train: PairTensors | Sequence[PairTensors],
        dev: PairTensors | Sequence[PairTensors] | None,
        num_classes: int,
        config: LinearConfig,
        seed: int,
    ) -> LinearTagger:
        table = WordTable.of(train)
        if len(table) == 0:
            raise ValueError("no training data: every sentence is empty")
        if int(table.labels.min()) < 0 or int(table.labels.max()) >= num_classes:
            raise ValueError(f"training labels must lie in [0, {num_classes})")
        dev_table = WordTable.of(dev) if dev is not None else None
        if dev_table is not None and len(dev_table) == 0:
            dev_table = None

        device = resolve_device(config.device)
        model = cls(table.features.shape[-1], num_classes)
        if config.standardize:
            model.mean, model.scale = feature_moments(table.features)
        model.to(device)
        optimiser = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        generator = torch.Generator().manual_seed(seed)
        record, best_state, bad_epochs = model.record, None, 0
        for epoch in range(config.epochs):
            order = torch.randperm(len(table), generator=generator)
            epoch_loss, epoch_words = 0.0, 0
            for lo in range(0, len(order), config.batch_size):
                words = table.word_index(order[lo : lo + config.batch_size])
                x = table.features[words].to(device)
                y = table.labels[words].to(device)
                # Summed over the batch's words, divided once by their number.
                loss = nn.functional.cross_entropy(model.logits(x), y, reduction="sum")
                loss = loss / y.numel()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                record.steps += 1
                epoch_loss += float(loss.detach()) * y.numel()
                epoch_words += y.numel()
                if config.max_steps is not None and record.steps >= config.max_steps:
                    break
            record.train_loss.append(epoch_loss / max(epoch_words, 1))
            if dev_table is not None:
                record.dev_loss.append(model.mean_loss(dev_table))
                if (
                    record.best_epoch < 0
                    or record.dev_loss[-1] < record.dev_loss[record.best_epoch]
                ):
                    record.best_epoch, bad_epochs = epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
            else:
                record.best_epoch = epoch
            out_of_steps = config.max_steps is not None and record.steps >= config.max_steps
            if out_of_steps or bad_epochs >= config.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        return model.eval()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged), then restore them."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
