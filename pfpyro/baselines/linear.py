"""A softmax tagger on frozen word features: the classifier inside every baseline.

Each word is tagged independently: ``p(y | h) = softmax(W h + b)`` on its (standardised)
encoder feature ``h``. It is trained with Adam on mini-batches of sentences to minimise the
cross-entropy averaged over the real words of the batch, divided once by their count (the
authors' code divided by the batch size twice, docs/design.md §10). Early stopping, when a dev
set is given, keeps the epoch with the lowest dev cross-entropy.

Sentences are stored as one flat table of words plus each sentence's offset, so pooling many
pairs (JM) costs no padding and a mini-batch is just the words of the chosen sentences.

With a trainable encoder top (``top=``, :mod:`pfpyro.encode.top`) the tagger trains its own
copy of the encoder's top layers with the softmax, as PF does: a mini-batch is then the same
sentences' subword states, padded together, and the top gives their words' features.
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
from pfpyro.data.batch import PairTensors, feature_moments, sentence_chunks
from pfpyro.data.subwords import SubwordStates
from pfpyro.device import resolve_device
from pfpyro.encode.top import EncoderTop, word_features


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
        features = torch.cat([p.words() for p in pairs])
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

    def __init__(self, feature_dim: int, num_classes: int, top: EncoderTop | None = None):
        super().__init__()
        self.top = top  # the encoder's top layers when they are trained, else None
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

    def input_logits(self, inputs: Tensor | SubwordStates) -> Tensor:
        """Logits [N, T, c] of word features, or of subword states through the trained top."""
        return self.logits(word_features(inputs, self.top))

    @torch.no_grad()
    def predict_proba(
        self, features: Tensor | SubwordStates, mask: Tensor, batch_size: int = 256
    ) -> Tensor:
        """[N, T, e] features (or subword states), [N, T] mask -> [N, T, c] probabilities
        (padding rows finite)."""
        given = features.first if isinstance(features, SubwordStates) else features
        if given.shape[:2] != mask.shape or (given.dim() != 3 and given is features):
            raise ValueError(
                f"features {tuple(given.shape)} must be [N, T, e] with mask "
                f"{tuple(mask.shape)} as [N, T]"
            )
        device = self.mean.device
        out = torch.empty(*mask.shape, self.num_classes)
        lo = 0
        for chunk, _ in sentence_chunks(features, mask, batch_size, device):
            probs = self.input_logits(chunk).softmax(-1).cpu()
            out[lo : lo + len(probs)] = probs
            lo += len(probs)
        return out

    @torch.no_grad()
    def mean_loss(self, pairs: PairTensors | Sequence[PairTensors] | WordTable) -> float:
        """Cross-entropy per real word (nats) on labelled data."""
        if self.top is not None and not isinstance(pairs, WordTable):
            return self._top_mean_loss([pairs] if isinstance(pairs, PairTensors) else pairs)
        table = pairs if isinstance(pairs, WordTable) else WordTable.of(pairs)
        device = self.mean.device
        total = 0.0
        for lo in range(0, table.labels.numel(), 65536):
            x = table.features[lo : lo + 65536].to(device)
            y = table.labels[lo : lo + 65536].to(device)
            total += float(nn.functional.cross_entropy(self.logits(x), y, reduction="sum"))
        return total / max(table.labels.numel(), 1)

    def _top_mean_loss(self, pairs: Sequence[PairTensors], batch_size: int = 64) -> float:
        device, total, words = self.mean.device, 0.0, 0
        for pair in pairs:
            for lo in range(0, len(pair), batch_size):
                batch = pair.batch(range(lo, min(lo + batch_size, len(pair))), device)
                logits = self.input_logits(batch.inputs)[batch.mask]
                labels = batch.labels[batch.mask]
                total += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
                words += labels.numel()
        return total / max(words, 1)

    @classmethod
    def fit(
        cls,
        train: PairTensors | Sequence[PairTensors],
        dev: PairTensors | Sequence[PairTensors] | None = None,
        *,
        num_classes: int,
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
        **overrides,
    ) -> LinearTagger:
        """Train a tagger on ``train`` (one pair, or several pooled), seeded.

        ``config`` sets the hyperparameters; keyword ``overrides`` (e.g. ``epochs=5, lr=1e-2,
        batch_size=16, max_steps=100``) replace single fields of it. With ``top`` (pretrained
        encoder layers) the tagger trains a copy of it too, on the pairs' subword states.
        """
        config = dataclasses.replace(config or LinearConfig(), **overrides)
        with torch_threads(config.threads):
            return cls._fit(train, dev, num_classes, config, seed, top)

    @classmethod
    def _fit(
        cls,
        train: PairTensors | Sequence[PairTensors],
        dev: PairTensors | Sequence[PairTensors] | None,
        num_classes: int,
        config: LinearConfig,
        seed: int,
        top: EncoderTop | None = None,
    ) -> LinearTagger:
        train = [train] if isinstance(train, PairTensors) else list(train)
        dev = [dev] if isinstance(dev, PairTensors) else dev
        if top is not None and any(p.subwords is None for p in [*train, *(dev or [])]):
            raise ValueError("a tagger that trains the encoder top needs the pairs' subwords")
        table = WordTable.of(train)
        if len(table) == 0:
            raise ValueError("no training data: every sentence is empty")
        if int(table.labels.min()) < 0 or int(table.labels.max()) >= num_classes:
            raise ValueError(f"training labels must lie in [0, {num_classes})")
        dev_table = WordTable.of(dev) if dev is not None else None
        if dev_table is not None and len(dev_table) == 0:
            dev_table = None

        device = resolve_device(config.device)
        model = cls(table.features.shape[-1], num_classes, copy.deepcopy(top))
        if config.standardize:
            # The top starts at the frozen encoder's layers, so these are its first outputs'.
            model.mean, model.scale = feature_moments(table.features)
        model.to(device)
        groups = [{"params": model.linear.parameters()}]
        if model.top is not None:
            groups.append({"params": model.top.parameters(), "lr": config.top_lr,
                           "weight_decay": 0.0})  # fmt: skip
            refs = sentence_refs(train)
        # The dev loss of a tagger with a top needs the dev pairs' subwords, not their table.
        dev_data = dev_table if model.top is None or dev_table is None else dev
        optimiser = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
        generator = torch.Generator().manual_seed(seed)
        record, best_state, bad_epochs = model.record, None, 0
        for epoch in range(config.epochs):
            order = torch.randperm(len(table), generator=generator)
            epoch_loss, epoch_words = 0.0, 0
            for lo in range(0, len(order), config.batch_size):
                chosen = order[lo : lo + config.batch_size]
                if model.top is None:
                    words = table.word_index(chosen)
                    y = table.labels[words].to(device)
                    logits = model.logits(table.features[words].to(device))
                else:
                    batch = gather_sentences(train, refs[chosen], device)
                    y = batch.labels[batch.mask]
                    logits = model.input_logits(batch.subwords)[batch.mask]
                # Summed over the batch's words, divided once by their number.
                loss = nn.functional.cross_entropy(logits, y, reduction="sum")
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
            if dev_data is not None:
                record.dev_loss.append(model.mean_loss(dev_data))
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


def sentence_refs(pairs: Sequence[PairTensors]) -> Tensor:
    """(pair, sentence) of every sentence with words, in :class:`WordTable`'s order [n, 2]."""
    refs = [
        torch.stack([torch.full_like(index, p), index], dim=-1)
        for p, pair in enumerate(pairs)
        for index in [torch.nonzero(pair.mask.any(-1)).flatten()]
    ]
    return torch.cat(refs)


def gather_sentences(
    pairs: Sequence[PairTensors], refs: Tensor, device: torch.device
) -> PairTensors:
    """The sentences ``refs`` [(pair, sentence), ...] of ``pairs`` as one padded batch."""
    parts = [pairs[p].batch(refs[refs[:, 0] == p, 1], device) for p in refs[:, 0].unique().tolist()]
    return PairTensors.concat(parts)


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
