"""Word features from a frozen Hugging Face encoder: one vector per word, its first subword's.

:class:`WordEncoder` tokenises pre-split words (``is_split_into_words``), runs the encoder
under ``torch.inference_mode`` on length-sorted batches and returns, for each sentence, a
float16 array ``[n_words, hidden]`` holding the last hidden state of each word's first
subword, in the input order.

Long sentences. A sequence holds at most ``max_subwords`` subwords, special tokens included.
A longer sentence is encoded in several windows cut at word boundaries: the first window
holds as many words as fit; every later window starts with up to half a window of the
preceding words as left context (their vectors are discarded) and then as many new words as
fit. Every word gets exactly one vector, from the window where it is new. The sentences that
needed more than one window are counted (:attr:`WordEncoder.cut_sentences`) and logged. A
single word longer than a window keeps only its first subwords (its vector is its first
subword's, so nothing it contributes is lost but its own right context).

Odd words. A word that tokenises to no subword at all (a lone zero-width space, a control
character) is fed as the unknown token, so it still gets a vector of its own.

Speed. Tokenisation is one batched call into ``tokenizers`` (Rust); windows are sorted by
length before batching, so padding stays small; the gather of first subwords happens on the
device. What remains is the encoder's own forward pass (see ``experiments/bench/encode.py``).
The number of torch threads is left to torch (one per physical core); the library does not
change that process-wide setting.

Identity. :attr:`WordEncoder.identity` is a sha256 over the model folder's files (weights,
config, tokenizer; :mod:`pfpyro.encode.identity`), with the runtime and precision's scheme
when they are not torch fp32.

Precision. ``precision="int8"`` quantises the encoder's linear layers dynamically (int8
weights, activations quantised per batch; ``torch.ao.quantization.quantize_dynamic``), on the
CPU only. Its features differ slightly from fp32's, so its identity differs too and the two
are cached apart; ``experiments/bench/encode.py`` measures its speed and a probe's accuracy
on its features against fp32's.

Runtime. ``runtime="onnx"`` runs the same model with ONNX Runtime on the CPU
(:mod:`pfpyro.encode.onnx_runtime`): exported into the cache on first use, then loaded without
transformers; its features (fp32, or its own int8) are cached apart from torch's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pfpyro.config import ENCODER_PRECISIONS, ENCODER_RUNTIMES, EncoderConfig
from pfpyro.data.sentence import Sentence
from pfpyro.device import resolve_device
from pfpyro.encode.cache import FeatureCache
from pfpyro.encode.identity import folder_identity, local_model_folder
from pfpyro.encode.offline import resolve_encoder_path
from pfpyro.encode.onnx_runtime import (
    ONNX_INT8_SCHEME,
    EncoderMeta,
    OnnxEncoder,
    compiled_dir,
    is_compiled,
)
from pfpyro.encode.top import EncoderTop, SentenceSubwords
from pfpyro.errors import ConfigError, PfpyroError
from pfpyro.progress import is_terminal, progress_bar

logger = logging.getLogger(__name__)

#: The library's default encoder for users with a model hub (the paper's mBERT). The demo,
#: the tests and the default config use :data:`pfpyro.encode.OFFLINE_ENCODER` instead.
DEFAULT_ENCODER = "bert-base-multilingual-cased"

#: What the features are; part of every cache key, bumped when the extraction changes.
FEATURE_KIND = "first-subword/last-layer/windows-v1"

#: The cache kind of every subword's state at one layer (for a trainable encoder top).
SUBWORD_KIND = "all-subwords/layer-{layer}/windows-v1"

Words = Sequence[str]


# --------------------------------------------------------------------------- planning


def plan_windows(
    counts: Sequence[int], budget: int, context: int | None = None
) -> list[tuple[int, int, int]]:
    """Cut a sentence with ``counts[i]`` subwords per word into windows of ``budget``.

    Returns ``(context_start, start, end)`` per window: words ``[context_start, start)`` are
    left context, words ``[start, end)`` are encoded there. The ``[start, end)`` ranges tile
    ``[0, n)``; each window's subwords sum to at most ``budget``; left context is at most
    ``context`` (default ``budget // 2``) subwords. Each count must be in ``[1, budget]``.
    """
    if context is None:
        context = budget // 2
    if any(c < 1 or c > budget for c in counts):
        raise ValueError(f"subword counts must lie in [1, {budget}]")
    windows = []
    start, n = 0, len(counts)
    while start < n:
        ctx, used = start, 0
        if start > 0:
            while ctx > 0 and used + counts[ctx - 1] <= context:
                ctx -= 1
                used += counts[ctx]
        while used + counts[start] > budget:  # room for at least one new word
            used -= counts[ctx]
            ctx += 1
        end, total = start, used
        while end < n and total + counts[end] <= budget:
            total += counts[end]
            end += 1
        windows.append((ctx, start, end))
        start = end
    return windows


@dataclass
class EncodingPlan:
    """Model inputs for a list of sentences: windows, and batches of them sorted by length.

    ``rows[k]`` are the output rows (in the concatenation of all sentences' words) that
    window ``k`` fills; ``targets[k]`` the positions of their first subwords in ``ids[k]``.
    """

    lengths: list[int]
    ids: list[list[int]] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # the sentence of each window
    cut_sentences: int = 0

    @property
    def num_words(self) -> int:
        return sum(self.lengths)

    def batch_inputs(self, batch: int, pad_id: int) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` of batch ``batch``, padded on the right."""
        members = self.batches[batch]
        width = max(len(self.ids[k]) for k in members)
        ids = torch.full((len(members), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(members), width), dtype=torch.long)
        for row, k in enumerate(members):
            n = len(self.ids[k])
            ids[row, :n] = torch.tensor(self.ids[k], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def batch_gather(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(batch row, position) of every word's first subword in the batch, and its row
        in the output."""
        members = self.batches[batch]
        which = np.concatenate([np.full(len(self.targets[k]), r) for r, k in enumerate(members)])
        where = np.concatenate([self.targets[k] for k in members])
        rows = np.concatenate([self.rows[k] for k in members])
        return torch.from_numpy(which), torch.from_numpy(where), rows


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a sequence (e.g. ``[CLS]``/``[SEP]``)."""
    bare = tokenizer(["x"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    full = tokenizer(["x"], is_split_into_words=True, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise ConfigError(f"cannot find where {type(tokenizer).__name__} adds its special tokens")


#: How ``precision="int8"`` quantises, part of its identity: features of another scheme are
#: other features.
INT8_SCHEME = "int8/dynamic/per-channel-symmetric"

#: What enters a features' identity besides the model folder, by (runtime, precision): the
#: torch fp32 features are the model's own ("" keeps their identity the folder's).
FEATURE_SCHEMES = {
    ("torch", "fp32"): "",
    ("torch", "int8"): INT8_SCHEME,
    ("onnx", "fp32"): "onnx-fp32",
    ("onnx", "int8"): ONNX_INT8_SCHEME,
}


def quantized_int8(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` with its linear layers dynamically quantised to int8 (CPU only)."""
    import warnings

    if device.type != "cpu":
        raise ConfigError(f"encoder precision int8 runs on the CPU only, not on {device}")
    with warnings.catch_warnings():
        # torch 2.13 warns that torch.ao.quantization and its quantised tensor types are
        # deprecated (torchao is their successor); they work, and we say so in the docs.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # One scale per output channel: per-tensor scales lost 3 points of a Turkish POS
        # probe (experiments/bench/encode.py), per-channel 2.2.
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})


# --------------------------------------------------------------------------- encoder


class WordEncoder:
    """First-subword word features of a frozen encoder (see the module notes)."""

    def __init__(
        self,
        name_or_path: str = DEFAULT_ENCODER,
        device: str | torch.device | None = None,
        max_subwords: int = 250,
        batch_size: int = 32,
        cache: FeatureCache | None = None,
        progress: bool = True,
        precision: str = "fp32",
        runtime: str = "torch",
    ) -> None:
        if precision not in ENCODER_PRECISIONS:
            raise ConfigError(
                f"encoder precision {precision!r} is unknown; known: "
                f"{', '.join(ENCODER_PRECISIONS)}"
            )
        if runtime not in ENCODER_RUNTIMES:
            raise ConfigError(
                f"encoder runtime {runtime!r} is unknown; known: {', '.join(ENCODER_RUNTIMES)}"
            )
        self.precision = precision
        self.runtime = runtime
        self.name = name_or_path
        self.path = resolve_encoder_path(name_or_path)
        if runtime == "onnx":  # unset means the CPU here: ONNX Runtime runs on nothing else
            if device is not None and torch.device(device).type != "cpu":
                raise ConfigError(f"encoder runtime onnx runs on the CPU only, not on {device}")
            device = "cpu"
        self.device = resolve_device(str(device) if device is not None else None)
        self.batch_size = int(batch_size)
        self.cache = cache
        self.progress = progress
        self.cut_sentences = 0
        self.max_subwords = int(max_subwords)
        self.model: torch.nn.Module | None = None  # the torch runtime's model
        self.session: OnnxEncoder | None = None  # the onnx runtime's session
        self._identity: str | None = None
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if runtime == "onnx":
            self.meta = self._load_onnx()
        else:
            self.meta = self._load_torch()
        self.backend = (
            self.session.backend if self.session is not None else self.tokenizer.backend_tokenizer
        )
        self.prefix, self.suffix = self.meta.prefix, self.meta.suffix
        self.unk_id, self.pad_id = self.meta.unk_id, self.meta.pad_id
        limit = self.meta.limit
        specials = len(self.prefix) + len(self.suffix)
        if self.max_subwords <= specials or (limit and self.max_subwords > limit):
            raise ConfigError(
                f"max_subwords must lie in [{specials + 1}, {limit or 'the model limit'}] for "
                f"encoder {name_or_path!r}, got {max_subwords}"
            )

    def _load_torch(self) -> EncoderMeta:
        """Load the transformers model and its fast tokenizer (and quantise for int8)."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        try:
            config = AutoConfig.from_pretrained(self.path)
            limit = int(getattr(config, "max_position_embeddings", 0) or 0)
            if limit and self.max_subwords > limit:  # checked before the slow loads
                raise ConfigError(
                    f"max_subwords must be at most {limit} for encoder {self.name!r}, "
                    f"got {self.max_subwords}"
                )
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            # transformers' bar redraws with carriage returns: on a terminal only.
            with _transformers_progress(self.progress and is_terminal()):
                self.model = AutoModel.from_pretrained(self.path, config=config)
        except OSError as error:
            raise ConfigError(f"cannot load encoder {self.name!r}: {error}") from error
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"encoder {self.name!r}: a fast (tokenizers) tokenizer is needed")
        self.model.to(self.device).eval()
        if self.precision == "int8":
            self.model = quantized_int8(self.model, self.device)
        prefix, suffix = special_tokens(self.tokenizer)
        unk = self.tokenizer.unk_token_id
        pad = self.tokenizer.pad_token_id
        model_max = int(getattr(self.tokenizer, "model_max_length", 0) or 0)
        if 0 < model_max < 1_000_000:
            limit = min(limit, model_max) if limit else model_max
        return EncoderMeta(
            hidden_size=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            limit=limit,
            prefix=prefix,
            suffix=suffix,
            unk_id=int(unk if unk is not None else (suffix or prefix or [0])[0]),
            pad_id=int(pad if pad is not None else 0),
        )

    def _load_onnx(self) -> EncoderMeta:
        """Load the model's ONNX export (:mod:`pfpyro.encode.onnx_runtime`), exporting it from
        the torch encoder into the cache first if it is not there yet."""
        folder = ensure_compiled(
            self.path, self.precision, progress=self.progress, max_subwords=self.max_subwords
        )
        self.session = OnnxEncoder(folder, torch.get_num_threads())
        if self.session.meta.limit and self.max_subwords > self.session.meta.limit:
            raise ConfigError(
                f"max_subwords must be at most {self.session.meta.limit} for encoder "
                f"{self.name!r}, got {self.max_subwords}"
            )
        return self.session.meta

    @property
    def feature_dim(self) -> int:
        return self.meta.hidden_size

    @property
    def identity(self) -> str:
        """sha256 of the model folder's weights, config and tokenizer files (memoised); for
        int8 or ONNX Runtime, of that and the scheme (their features are cached apart)."""
        if self._identity is None:
            identity = folder_identity(local_model_folder(self.path))
            scheme = FEATURE_SCHEMES[self.runtime, self.precision]
            if scheme:
                identity = hashlib.sha256(f"{identity}/{scheme}".encode()).hexdigest()
            self._identity = identity
        return self._identity

    @property
    def budget(self) -> int:
        """Subwords of words per window (``max_subwords`` less the special tokens)."""
        return self.max_subwords - len(self.prefix) - len(self.suffix)

    # -- planning ----------------------------------------------------------------------

    def plan(self, sentences: Sequence[Words | Sentence]) -> EncodingPlan:
        """Tokenise, align and window ``sentences``; batches are sorted by length."""
        word_lists = _word_lists(sentences)
        plan = EncodingPlan([len(words) for words in word_lists])
        nonempty = [i for i, words in enumerate(word_lists) if words]
        backend = self.backend
        backend.no_padding()  # the wrapper sets these per call; we want whole sentences
        backend.no_truncation()
        encodings = backend.encode_batch(
            [word_lists[i] for i in nonempty], is_pretokenized=True, add_special_tokens=False
        )
        offsets = np.concatenate([[0], np.cumsum(plan.lengths)])
        budget = self.budget
        for i, encoding in zip(nonempty, encodings, strict=True):
            pieces = _word_pieces(encoding.ids, encoding.word_ids, len(word_lists[i]))
            pieces = [p[:budget] if p else [self.unk_id] for p in pieces]
            counts = [len(p) for p in pieces]
            windows = plan_windows(counts, budget)
            plan.cut_sentences += len(windows) > 1
            for ctx, start, end in windows:
                ids = list(self.prefix)
                targets = []
                for w in range(ctx, end):
                    if w >= start:
                        targets.append(len(ids))
                    ids += pieces[w]
                ids += self.suffix
                plan.ids.append(ids)
                plan.targets.append(np.asarray(targets, dtype=np.int64))
                plan.rows.append(np.arange(offsets[i] + start, offsets[i] + end))
                plan.owners.append(i)
        order = sorted(range(len(plan.ids)), key=lambda k: -len(plan.ids[k]))
        plan.batches = [
            order[b : b + self.batch_size] for b in range(0, len(order), self.batch_size)
        ]
        return plan

    # -- encoding ----------------------------------------------------------------------

    def encode(self, sentences: Sequence[Words | Sentence]) -> list[np.ndarray]:
        """float16 ``[n_words, feature_dim]`` per sentence, in input order (cached if a
        :class:`FeatureCache` was given)."""
        word_lists = _word_lists(sentences)
        if self.cache is None:
            return self._compute(word_lists)
        return self.cache.get_or_compute(
            self.identity, self.max_subwords, word_lists, self._compute, kind=FEATURE_KIND
        )

    @classmethod
    def from_config(
        cls,
        section: EncoderConfig | Mapping[str, object],
        *,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> WordEncoder:
        """The encoder a config's ``encoder:`` section names (or a run.json's record of it;
        a setting it lacks takes :class:`~pfpyro.config.EncoderConfig`'s default), with the
        feature cache: the one way the pipeline and :func:`pfpyro.load` build it. ``device``
        is the caller's, not the section's: a loaded run picks its own."""
        if isinstance(section, EncoderConfig):
            section = dataclasses.asdict(section)
        defaults = dataclasses.asdict(EncoderConfig())
        values = {**defaults, **{k: v for k, v in section.items() if k in defaults}}
        return cls(
            values["name"],
            device=device,
            max_subwords=values["max_subwords"],
            batch_size=values["batch_size"],
            cache=FeatureCache(),
            progress=progress,
            precision=values["precision"],
            runtime=values["runtime"],
        )

    def encode_flat(self, sentences: Sequence[Words | Sentence]) -> np.ndarray:
        """The words' features of :meth:`encode`, stacked in order, ``[n_words, dim]``; from
        the cache, memory-mapped (the store keeps a pair this way, :mod:`pfpyro.encode.store`)."""
        word_lists = _word_lists(sentences)
        if not word_lists:
            return np.zeros((0, self.feature_dim), dtype=np.float16)
        if self.cache is None:
            return self._compute_flat(word_lists)
        return self.cache.get_or_compute_flat(
            self.identity,
            self.max_subwords,
            word_lists,
            self._compute,
            kind=FEATURE_KIND,
            fill=self._fill,  # a miss is encoded straight into its cache entry
            dim=self.feature_dim,
        )

    @property
    def num_layers(self) -> int:
        return self.meta.num_layers

    def top(self, k: int) -> EncoderTop:
        """A trainable copy of the encoder's last ``k`` layers (:mod:`pfpyro.encode.top`)."""
        self._need_torch_fp32("a trainable encoder top")
        return EncoderTop.from_model(self.model, k)

    def _need_torch_fp32(self, what: str) -> None:
        if self.precision != "fp32":
            raise ConfigError(f"{what} needs precision fp32, not {self.precision}")
        if self.runtime != "torch":
            raise ConfigError(f"{what} needs runtime torch, not {self.runtime}")

    def encode_subwords(
        self, sentences: Sequence[Words | Sentence], layer: int
    ) -> list[SentenceSubwords]:
        """Per sentence, the states of all its windows' subwords at ``layer`` (0: embeddings),
        their windows and each word's first subword position (:mod:`pfpyro.encode.top`); the
        states are cached like the features, under their own kind."""
        self._need_torch_fp32("the states of a lower layer")
        if not 0 <= layer < self.num_layers:
            raise ConfigError(f"layer must lie in [0, {self.num_layers}), got {layer}")
        word_lists = _word_lists(sentences)
        plan = self.plan(word_lists)
        layouts = subword_layouts(plan)
        rows = [len(segments) for segments, _ in layouts]

        def compute(lists: list[list[str]]) -> list[np.ndarray]:
            return self._compute_subwords(plan, rows, layer)

        if self.cache is None:
            states = compute(word_lists)
        else:
            kind = SUBWORD_KIND.format(layer=layer)
            states = self.cache.get_or_compute(
                self.identity, self.max_subwords, word_lists, compute, kind=kind, rows=rows
            )
        return [(s, seg, first) for s, (seg, first) in zip(states, layouts, strict=True)]

    def _compute_subwords(
        self, plan: EncodingPlan, rows: Sequence[int], layer: int
    ) -> list[np.ndarray]:
        starts = np.concatenate([[0], np.cumsum(rows)])
        out = np.empty((int(starts[-1]), self.feature_dim), dtype=np.float16)
        # Where each window's subwords go: right after the earlier windows of its sentence.
        offset, filled = [], dict.fromkeys(range(len(rows)), 0)
        for k, owner in enumerate(plan.owners):
            offset.append(int(starts[owner]) + filled[owner])
            filled[owner] += len(plan.ids[k])
        bar = progress_bar(total=plan.num_words, unit="word", unit_scale=True,
                           enabled=self.progress, desc=f"encoding layer {layer}")  # fmt: skip
        with bar, torch.inference_mode():
            for b, members in enumerate(plan.batches):
                inputs = {
                    k: v.to(self.device) for k, v in plan.batch_inputs(b, self.pad_id).items()
                }
                hidden = self.model(**inputs, output_hidden_states=True).hidden_states[layer]
                hidden = hidden.to(torch.float16).cpu().numpy()
                for r, k in enumerate(members):
                    n = len(plan.ids[k])
                    out[offset[k] : offset[k] + n] = hidden[r, :n]
                bar.update(sum(len(plan.rows[k]) for k in members))
        return np.split(out, starts[1:-1]) if rows else []

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden states ``[batch, length, hidden]`` of one batch of model inputs."""
        if self.session is not None:
            arrays = {k: v.numpy() for k, v in inputs.items()}
            return torch.from_numpy(self.session(arrays["input_ids"], arrays["attention_mask"]))
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        output = self.model(**inputs)
        return output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]

    def _compute(self, word_lists: list[list[str]]) -> list[np.ndarray]:
        lengths = [len(words) for words in word_lists]
        features = self._compute_flat(word_lists)
        return np.split(features, np.cumsum(lengths)[:-1]) if lengths else []

    def _compute_flat(self, word_lists: list[list[str]]) -> np.ndarray:
        features = np.empty((sum(map(len, word_lists)), self.feature_dim), dtype=np.float16)
        self._fill(word_lists, features)
        return features

    def _fill(self, word_lists: list[list[str]], features: np.ndarray) -> None:
        """Write the words' features, stacked in order, into ``features`` batch by batch (a
        cache entry being written, :meth:`FeatureCache.streaming`, or an array)."""
        plan = self.plan(word_lists)
        bar = progress_bar(
            total=plan.num_words, unit="word", unit_scale=True, desc="encoding",
            enabled=self.progress,
        )  # fmt: skip
        with bar, torch.inference_mode():
            for b in range(len(plan.batches)):
                hidden = self.forward(plan.batch_inputs(b, self.pad_id))
                which, where, rows = plan.batch_gather(b)
                vectors = hidden[which.to(hidden.device), where.to(hidden.device)]
                features[rows] = vectors.to(torch.float16).cpu().numpy()
                bar.update(len(rows))
        if plan.cut_sentences:
            self.cut_sentences += plan.cut_sentences
            logger.warning(
                "%d of %d sentences are longer than %d subwords; their later words were "
                "encoded in further windows with left context",
                plan.cut_sentences,
                len(word_lists),
                self.max_subwords,
            )


def ensure_compiled(
    name_or_path: str,
    precision: str,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    max_subwords: int = 250,
) -> Path:
    """The encoder's ONNX Runtime export folder (:mod:`pfpyro.encode.onnx_runtime`), exported from
    the torch encoder first when it is missing or incomplete (or when ``force``)."""
    from pfpyro.encode.onnx_export import compile_encoder

    identity = folder_identity(local_model_folder(resolve_encoder_path(name_or_path)))
    folder = compiled_dir(identity, precision, cache_dir)
    if force or not is_compiled(folder, identity, precision):
        source = WordEncoder(
            name_or_path, device="cpu", max_subwords=max_subwords, progress=progress
        )
        compile_encoder(
            source.model, source.backend, source.meta, folder, identity, precision, progress
        )
    return folder


def subword_layouts(plan: EncodingPlan) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sentence of ``plan``: the window of each of its subwords (its windows one after
    another) and the position of each word's first subword in that sequence."""
    starts = np.concatenate([[0], np.cumsum(plan.lengths)])
    segments: list[list[np.ndarray]] = [[] for _ in plan.lengths]
    first = [np.zeros(n, dtype=np.int64) for n in plan.lengths]
    used = [0] * len(plan.lengths)
    for k, owner in enumerate(plan.owners):
        window = len(segments[owner])
        segments[owner].append(np.full(len(plan.ids[k]), window, dtype=np.int64))
        first[owner][plan.rows[k] - starts[owner]] = used[owner] + plan.targets[k]
        used[owner] += len(plan.ids[k])
    return [
        (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64), positions)
        for parts, positions in zip(segments, first, strict=True)
    ]


@contextlib.contextmanager
def _transformers_progress(shown: bool) -> Iterator[None]:
    """transformers' own progress bars ("Loading weights") on or off within, as they were
    after: ``progress=False`` (the commands' ``--quiet``) means no bar from anyone."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if shown else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()


def _word_lists(sentences: Sequence[Words | Sentence]) -> list[list[str]]:
    """Sentences as lists of words; Sentence objects give their ``.words``."""
    if isinstance(sentences, (str, Sentence)):
        raise PfpyroError("encode() takes a list of sentences, not a single sentence")
    out = []
    for i, sentence in enumerate(sentences):
        words = sentence.words if isinstance(sentence, Sentence) else sentence
        if isinstance(words, str):
            raise PfpyroError(f"sentence {i} is a string; expected a list of words")
        words = list(words)
        for j, word in enumerate(words):
            if not isinstance(word, str):
                raise PfpyroError(f"sentence {i}, word {j}: expected a str, found {word!r}")
        out.append(words)
    return out


def _word_pieces(ids: Sequence[int], word_ids: Sequence[int | None], n: int) -> list[list[int]]:
    """Subword ids grouped by the word they belong to (empty lists for words with none)."""
    pieces: list[list[int]] = [[] for _ in range(n)]
    for token, word in zip(ids, word_ids, strict=True):
        if word is not None:
            pieces[word].append(token)
    return pieces


__all__ = [
    "DEFAULT_ENCODER",
    "FEATURE_KIND",
    "EncodingPlan",
    "WordEncoder",
    "ensure_compiled",
    "plan_windows",
    "special_tokens",
    "subword_layouts",
]
