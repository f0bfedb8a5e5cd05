"""The subword states a trainable encoder top reads (:mod:`pfpyro.encode.top`), per sentence.

A sentence longer than the encoder's window was encoded in several windows; its windows are
stored one after another in one row, and ``segments`` numbers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: One sentence's cached layout: states [S, e], segment of each subword [S], and the position
#: of each word's first subword in that sequence [n_words].
SentenceSubwords = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class SubwordStates:
    """A lower layer's states of every subword of N sentences (see the module notes).

    ``states`` [N, S, e] (fp16 in a pair's store, fp32 in a batch), ``segments`` [N, S] the
    window of each subword within its sentence (−1 at padding), ``first`` [N, T] the position
    of each word's first subword in its sentence's row (0 at padding).
    """

    states: Tensor
    segments: Tensor
    first: Tensor

    def __post_init__(self) -> None:
        n, s = self.segments.shape
        if self.states.shape[:2] != (n, s) or self.first.shape[0] != n:
            raise ValueError(
                f"states {tuple(self.states.shape)}, segments {tuple(self.segments.shape)} and "
                f"first {tuple(self.first.shape)} disagree on [N, S]"
            )

    @classmethod
    def from_arrays(cls, sentences: Sequence[SentenceSubwords], length: int) -> SubwordStates:
        """Pad per-sentence ``(states, segments, first)`` into [N, S, e], [N, S], [N, length]."""
        if not sentences:
            raise ValueError("no sentences")
        dim = int(sentences[0][0].shape[-1])
        longest = max(max(len(seg) for _, seg, _ in sentences), 1)
        states = torch.zeros(len(sentences), longest, dim, dtype=torch.float16)
        segments = torch.full((len(sentences), longest), -1, dtype=torch.long)
        first = torch.zeros(len(sentences), length, dtype=torch.long)
        for k, (state, segment, positions) in enumerate(sentences):
            s, n = len(segment), len(positions)
            states[k, :s] = torch.as_tensor(np.asarray(state)).to(torch.float16)
            segments[k, :s] = torch.as_tensor(np.asarray(segment), dtype=torch.long)
            first[k, :n] = torch.as_tensor(np.asarray(positions), dtype=torch.long)
        return cls(states, segments, first)

    def __len__(self) -> int:
        return int(self.segments.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.states.shape[-1])

    def select(self, index: Tensor | Sequence[int] | slice) -> SubwordStates:
        """The sentences at ``index``, as stored."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return SubwordStates(self.states[index], self.segments[index], self.first[index])

    def batch(
        self, index: Tensor | Sequence[int] | slice, length: int, device: torch.device | None = None
    ) -> SubwordStates:
        """The sentences at ``index``, words cut to ``length`` and subwords to the longest
        sentence's, states in fp32 on ``device``."""
        chosen = self.select(index)
        longest = max(int((chosen.segments >= 0).sum(-1).max()) if len(chosen) else 0, 1)
        return SubwordStates(
            chosen.states[:, :longest].to(device=device, dtype=torch.float32),
            chosen.segments[:, :longest].to(device),
            chosen.first[:, :length].to(device),
        )

    def to(self, device: torch.device) -> SubwordStates:
        return SubwordStates(
            self.states.to(device), self.segments.to(device), self.first.to(device)
        )


__all__ = ["SentenceSubwords", "SubwordStates"]
