"""Stochastic variational inference for the parameter-factorization model (paper §3.1, §4.2).

Each step samples one **seen** task–language pair (uniformly, or in proportion to its size),
then a mini-batch of that pair's sentences, and takes one SVI step:

- the step objective is an unbiased estimate of ELBO / P, P the number of seen pairs, where
  ELBO = Σ_ij log p(y_ij | ·) − β (KL(t) + KL(l)) over all seen training data: the likelihood
  is scaled by N_ij / B (the sentences plate) and by 1 / (P π_ij) for a pair drawn with
  probability π_ij, and the KL terms are weighted β / P (:func:`step_weights`). This is the
  paper's estimator up to the constant: its 1/|K| KL weight goes with the *plain* mini-batch
  likelihood; scaling the likelihood to the pair *and* weighting the KL 1/|K| (pfpyro 0.1)
  made the KL |K|/P times too weak. β = ``kl_beta`` (default 1) is deliberate tempering;
- ``num_particles`` Monte Carlo draws (3 in the paper) are vectorised.

With ``pairs_per_step`` P > 1 a step draws P pairs (independently, the same way) and one
mini-batch of each, and takes one SVI step over all of them, vectorised in a ``pairs`` plate
(:meth:`~pfpyro.model.factorization.ParameterFactorization.model_pairs`): its objective is the
mean of the P single-pair objectives on the same draws of t and l, so it is still an unbiased
estimate of ELBO / P_seen, with less variance, and a step has P pairs' work for a GPU.

Every ``eval_every`` steps the plug-in predictor is scored on ``dev`` (a ``scorer`` per pair,
token accuracy by default) and the best parameters are kept and restored at the end;
``patience`` evaluations without improvement stop the run. ``dev`` is either the seen pairs'
own dev data (``dev_role="seen"``) or *validation pairs* held out of training and scored
zero-shot (``dev_role="zero-shot"``: their task and language must each be trained on in another
pair, as for a held-out pair). A partition's held-out pairs never take part: the experiment
runner never loads their data before the final test (docs/design.md §8).

A step is Pyro's SVI written out over module-local parameters (:mod:`pfpyro.model`): the
ELBO's ``loss_and_grads`` on the model and guide modules, then one optimiser step on their
``named_parameters()``. Optimiser: Pyro's ``ClippedAdam`` (a torch optimiser), one parameter
group for the hypernetwork (with ``weight_decay``), one for a trained encoder top (``top_lr``;
``encoder_top=`` gives its pretrained weights), one for the guide's q(t), q(l) when
``latent_lr`` gives them their own rate, and one for the rest. With ``optim.clip: value`` (the
default) it clips as ClippedAdam does, despite its parameter's name by value: each gradient
element is clamped to [-clip_norm, clip_norm] before the Adam update. ``clip: norm`` scales the
whole gradient to a global L2 norm of at most clip_norm instead (:class:`NormClippedAdam`), and
``clip: none`` leaves it as it is. It can also decay the learning rate by ``lr_decay`` per step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.optim.clipped_adam import ClippedAdam
from torch import Tensor

from pfpyro.config import ELBO_NAMES, ModelConfig, OptimConfig, TrainConfig
from pfpyro.data.batch import PairsBatch, PairTensors, feature_moments
from pfpyro.data.pairs import Pair, pair_name
from pfpyro.data.partition import constraint_violations
from pfpyro.data.tasks import label_set
from pfpyro.device import resolve_device
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import CheckpointError, ConfigError, PfpyroError
from pfpyro.evaluate.metrics import token_accuracy
from pfpyro.infer.checkpoint import (
    CHECKPOINT_NAME,
    lightning_checkpoints,
    load_checkpoint,
    load_lightning_checkpoint,
    load_model_json,
    named_params,
    restore,
    rng_state,
    save_checkpoint,
    save_model_json,
    saved_optimizer,
    saved_params,
    set_rng_state,
    snapshot,
)
from pfpyro.infer.logging import RunLogger
from pfpyro.infer.predict import PFPredictor
from pfpyro.model.capabilities import check_components
from pfpyro.model.description import ModelDescription, check_model_config
from pfpyro.model.factorization import (
    MAX_PLATE_NESTING,
    PAIRS_PLATE_NESTING,
    ParameterFactorization,
)
from pfpyro.model.guides import FactorizationGuide
from pfpyro.progress import progress_bar

ELBOS = {"trace": Trace_ELBO, "meanfield": TraceMeanField_ELBO}
assert tuple(ELBOS) == ELBO_NAMES
# Fields that may change between a run and its resumption: they do not touch the arithmetic.
RESUMABLE_CHANGES = frozenset(
    {
        "max_steps",
        "log_every",
        "tensorboard",
        "progress",
        "device",
        "checkpoint_every",
        "keep_checkpoints",
    }
)


class NumericalError(PfpyroError):
    """A non-finite loss: training stops; the last checkpoint written stays as it was."""

    def __init__(self, step: int, pairs: Sequence[Pair], detail: str) -> None:
        self.step = step
        self.pair = pairs[0]
        names = ", ".join(pair_name(p) for p in pairs)
        super().__init__(
            f"step {step}, pair{'s' if len(pairs) > 1 else ''} {names}: {detail}; training "
            "stopped (the last checkpoint, if any, is untouched)"
        )


@dataclass
class TrainResult:
    """The trained model and guide (at their best dev score), and what happened."""

    factorization: ParameterFactorization
    guide: FactorizationGuide
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    best_score: float | None = None


# -- helpers -------------------------------------------------------------------------------
def closed_form_kl(guide: FactorizationGuide) -> tuple[float, float] | None:
    """The guide's KL terms in closed form (:meth:`FactorizationGuide.closed_form_kl`)."""
    return guide.closed_form_kl()


def num_minibatches(sizes: Mapping[Pair, int], batch_size: int) -> int:
    """|K|: mini-batches in one epoch over all seen pairs, Σ ceil(N_ij / B) (paper §4.2)."""
    return sum(math.ceil(n / batch_size) for n in sizes.values())


def pair_probabilities(sizes: Mapping[Pair, int], sampling: str) -> dict[Pair, float]:
    """π_ij, the probability that a step draws pair (i, j): uniform or by size."""
    if sampling == "size":
        total = sum(sizes.values())
        return {pair: n / total for pair, n in sizes.items()}
    return {pair: 1.0 / len(sizes) for pair in sizes}


def step_weights(
    sizes: Mapping[Pair, int], sampling: str, beta: float = 1.0
) -> tuple[dict[Pair, float], float]:
    """(pair_weight per pair, kl_weight) that make a step's objective an unbiased estimate of
    ELBO_β / P over all seen data: E_π[(1 / (P π_ij)) · L_ij] = (1/P) Σ_ij L_ij."""
    count = len(sizes)
    probs = pair_probabilities(sizes, sampling)
    return {pair: 1.0 / (count * p) for pair, p in probs.items()}, beta / count


def accuracy_scorer(task: str, probs: Tensor, labels: Tensor, mask: Tensor) -> float:
    """The default dev scorer: token accuracy, whatever the task."""
    return token_accuracy(labels, probs.argmax(-1), mask)


Scorer = Callable[[str, Tensor, Tensor, Tensor], float]
"""``scorer(task, probs [N, T, c], labels [N, T], mask [N, T]) -> score``, higher is better."""


def evaluate_plugin(
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    data: Mapping[Pair, PairTensors],
    batch_size: int = 256,
    scorer: Scorer = accuracy_scorer,
) -> dict[Pair, float]:
    """The plug-in predictor's ``scorer`` on each pair in ``data``."""
    predictor = PFPredictor(factorization, guide, mode="plugin", batch_size=batch_size)
    scores = {}
    for (task, lang), tensors in data.items():
        probs = predictor.predict_proba(task, lang, tensors.inputs, tensors.mask)
        scores[task, lang] = scorer(task, probs.cpu(), tensors.labels, tensors.mask)
    return scores


def check_data(
    train: Mapping[Pair, PairTensors],
    dev: Mapping[Pair, PairTensors],
    tasks: Sequence[str] | None,
    langs: Sequence[str] | None,
    num_classes: Mapping[str, int] | None,
    dev_role: str = "seen",
) -> tuple[list[str], list[str], dict[str, int], int]:
    """Validate the data against each other; return tasks, langs, classes and feature width."""
    if not train:
        raise ConfigError("no training pairs given")
    if dev_role == "seen":
        leaked = sorted(pair_name(p) for p in dev if p not in train)
        if leaked:
            raise ConfigError(
                f"dev data for pairs not seen in training: {', '.join(leaked)}; seen-dev "
                "selection uses seen pairs only (zero-shot selection takes validation pairs: "
                "dev_role='zero-shot')"
            )
    elif dev_role == "zero-shot":
        trained = sorted(pair_name(p) for p in dev if p in train)
        if trained:
            raise ConfigError(
                f"validation pairs {', '.join(trained)} are also trained on; zero-shot "
                "selection scores pairs held out of training"
            )
        problems = constraint_violations(dev, train)
        if problems:
            raise ConfigError("validation pairs: " + "; ".join(problems))
    else:
        raise ConfigError(f"dev_role must be 'seen' or 'zero-shot', not {dev_role!r}")
    seen_tasks = {task for task, _ in train}
    seen_langs = {lang for _, lang in train}
    task_list = sorted(set(tasks) if tasks is not None else seen_tasks | {t for t, _ in dev})
    lang_list = sorted(set(langs) if langs is not None else seen_langs | {x for _, x in dev})
    if not seen_tasks <= set(task_list):
        raise ConfigError(
            f"tasks {sorted(seen_tasks - set(task_list))} are trained on but not listed"
        )
    if not seen_langs <= set(lang_list):
        raise ConfigError(
            f"languages {sorted(seen_langs - set(lang_list))} are trained on but not listed"
        )
    classes: dict[str, int] = {}
    for task in task_list:
        if num_classes is not None and task in num_classes:
            classes[task] = int(num_classes[task])
            continue
        try:
            classes[task] = len(label_set(task))
        except KeyError:
            raise ConfigError(f"task {task!r} has no label set; pass num_classes") from None
    widths = {tensors.feature_dim for tensors in [*train.values(), *dev.values()]}
    if len(widths) != 1:
        raise ConfigError(f"pairs disagree on the feature width: {sorted(widths)}")
    for split, mapping in (("train", train), ("dev", dev)):
        for (task, lang), tensors in mapping.items():
            if len(tensors) == 0:
                raise ConfigError(f"{split} pair {task}/{lang} has no sentences")
            real = tensors.labels[tensors.mask]
            if real.numel() and (int(real.min()) < 0 or int(real.max()) >= classes[task]):
                raise ConfigError(
                    f"{split} pair {task}/{lang}: label ids must lie in [0, {classes[task]}), "
                    f"found {int(real.min())}..{int(real.max())}"
                )
    return task_list, lang_list, classes, widths.pop()


# -- the training loop -------------------------------------------------------------------------
def train(
    train: Mapping[Pair, PairTensors],
    dev: Mapping[Pair, PairTensors],
    config: TrainConfig,
    *,
    model: ModelConfig | ModelDescription | None = None,
    tasks: Sequence[str] | None = None,
    langs: Sequence[str] | None = None,
    num_classes: Mapping[str, int] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    dev_role: str = "seen",
    scorer: Scorer = accuracy_scorer,
    encoder_top: EncoderTop | None = None,
    init: Callable[[ParameterFactorization], None] | None = None,
) -> TrainResult:
    """Fit q(t), q(l) and the hypernetwork by SVI on the seen pairs ``train``.

    ``model`` is the architecture: a :class:`ModelConfig` (default: the paper's), completed
    here with the data's tasks, languages, label counts and feature moments, or a whole
    :class:`ModelDescription`. ``dev`` drives model selection and early stopping, scored by
    ``scorer``: the seen pairs' own dev data (``dev_role="seen"``) or validation pairs held
    out of ``train`` and scored zero-shot (``dev_role="zero-shot"``). ``tasks`` and ``langs``
    default to those of the training and dev pairs and may add more (a held-out pair needs
    its task and language in the model). With ``out_dir`` a checkpoint, ``model.json`` and
    the log are written there; ``resume=True`` continues from its checkpoint (and starts
    afresh when there is none), ending exactly where an uninterrupted run with the same seed
    would.

    The run seeds Pyro's global random state (torch, ``random``, numpy) with ``config.seed``.
    It trains the parameters of the modules it builds and touches no other model's.
    ``encoder_top`` (the encoder's top layers, pretrained; :meth:`FeatureStore.encoder_top`)
    makes the model train a copy of them on the data's subword states.
    ``init`` sets the freshly built model's starting point (``model.init: jm``:
    :func:`pfpyro.model.anchor.start_at_joint_classifier`); a resumed run has its own. With
    ``init`` the dev data are also scored at step 0, which may then be the best step.
    """
    config.validate()
    if isinstance(model, ModelDescription):  # its sizes are the defaults
        tasks = model.tasks if tasks is None else tasks
        langs = model.langs if langs is None else langs
        num_classes = model.num_classes if num_classes is None else num_classes
    task_list, lang_list, classes, feature_dim = check_data(
        train, dev, tasks, langs, num_classes, dev_role
    )
    run_dir = Path(out_dir) if out_dir is not None else None
    saved = None
    world = data_parallel_run(run_dir) if run_dir is not None else 0
    if world:
        raise CheckpointError(
            f"{run_dir} holds a data-parallel run's checkpoints ({world} processes); resume it "
            f"with --devices and --num-nodes giving {world} processes, not in a single process"
        )
    if run_dir is not None and (run_dir / CHECKPOINT_NAME).exists():
        if not resume:
            raise ConfigError(
                f"{run_dir} already holds a checkpoint; resume it or choose another folder"
            )
        saved = load_checkpoint(run_dir)
    previous = load_model_json(run_dir) if saved is not None else None
    description = describe(
        model, train, task_list, lang_list, classes, feature_dim, previous, encoder_top
    )
    check_description(description, config, encoder_top)
    check_same_model(previous, description, run_dir)
    run = _Run(train, dev, config, description, run_dir, scorer, encoder_top)
    if saved is not None:
        run.resume_from(saved, str(run_dir / CHECKPOINT_NAME))
    elif init is not None:
        init(run.factorization)
        run.score_start = True
    if run_dir is not None:
        save_model_json(run_dir, description)
    run.loop()
    if run.best_params is not None:
        restore(run.params, run.best_params, "best parameters")
    return TrainResult(
        run.factorization, run.guide, run.history, run.state["best_step"], run.state["best_score"]
    )


def describe(
    model: ModelConfig | ModelDescription | None,
    train: Mapping[Pair, PairTensors],
    tasks: Sequence[str],
    langs: Sequence[str],
    num_classes: Mapping[str, int],
    feature_dim: int,
    previous: ModelDescription | None = None,
    encoder_top: EncoderTop | None = None,
) -> ModelDescription:
    """The whole description of the model to train: ``model``'s architecture with the data's
    sizes and label names, feature moments from the training words (a resumed run keeps
    ``previous``'s, which came from the same words) and ``encoder_top``'s layers, when given
    (:meth:`ModelDescription.from_config`). A whole description is only checked against the
    data."""
    if isinstance(model, ModelDescription):
        if set(model.tasks) != set(tasks) or set(model.langs) != set(langs):
            raise ConfigError(
                "the model description's tasks and languages differ from the data's: "
                f"{sorted(model.tasks)} × {sorted(model.langs)} vs {sorted(tasks)} × "
                f"{sorted(langs)}"
            )
        if model.feature_dim != feature_dim or model.num_classes != dict(num_classes):
            raise ConfigError(
                f"the model description (width {model.feature_dim}, classes "
                f"{model.num_classes}) does not fit the data (width {feature_dim}, classes "
                f"{dict(num_classes)})"
            )
        return model
    model = model if model is not None else ModelConfig()
    check_model_config(model)
    if previous is not None:
        moments = (previous.feature_mean, previous.feature_scale)
    elif model.standardize:
        mean, scale = feature_moments(torch.cat([tensors.words() for tensors in train.values()]))
        moments = (tuple(mean.tolist()), tuple(scale.tolist()))
    else:
        moments = (None, None)
    description = ModelDescription.from_config(
        model,
        tasks,
        langs,
        num_classes,
        feature_dim,
        feature_mean=moments[0],
        feature_scale=moments[1],
    )
    if encoder_top is not None:
        description = description.replace(encoder_top=encoder_top.spec)
    return description


def check_same_model(
    previous: ModelDescription | None, description: ModelDescription, run_dir: Path | None
) -> None:
    """ConfigError unless a resumed run's model.json (``previous``) is this run's model."""
    if previous is None or previous == description:
        return
    fields = [f.name for f in dataclasses.fields(description)]
    differ = [name for name in fields if getattr(previous, name) != getattr(description, name)]
    raise ConfigError(
        f"cannot resume {run_dir}: its model.json describes another model than this run's "
        f"(they differ in {', '.join(differ)})"
    )


def config_changes(config: TrainConfig, saved: Mapping[str, Any]) -> list[str]:
    """The settings of ``config`` that differ from a checkpoint's recorded ``saved`` config
    and would change the arithmetic (all but :data:`RESUMABLE_CHANGES`), each as "key
    (checkpoint …, now …)"; a setting newer than the checkpoint had its default then."""
    now = _flat(config.to_dict())
    then = {**_flat(TrainConfig().to_dict()), **_flat(dict(saved))}
    return [
        f"{key} (checkpoint {then.get(key)!r}, now {now[key]!r})"
        for key in now
        if key not in RESUMABLE_CHANGES and then.get(key) != now[key]
    ]


def data_parallel_run(run_dir: Path) -> int:
    """The process count of the data-parallel run that ``run_dir`` holds (its final
    checkpoint's record, else its newest Lightning checkpoint's), 0 when it holds none."""
    if (run_dir / CHECKPOINT_NAME).is_file():
        devices = int(load_checkpoint(run_dir)["state"].get("devices", 0))
        if devices:
            return devices
    found = lightning_checkpoints(run_dir)
    return int(load_lightning_checkpoint(found[-1])["pfpyro"]["world"]) if found else 0


def check_description(
    description: ModelDescription, config: TrainConfig, encoder_top: EncoderTop | None = None
) -> None:
    """What the model's components and the training settings must agree on, before any
    model is built: several pairs per step (each component's declared capability,
    :func:`~pfpyro.model.capabilities.check_components`) and a trained encoder top (its
    pretrained weights given; one pair per step)."""
    check_components(description, pairs_per_step=config.pairs_per_step)
    if description.encoder_top is not None:
        if encoder_top is None:
            raise ConfigError(
                "this model trains the encoder's top layers: pass their pretrained weights "
                "(train(..., encoder_top=store.encoder_top()))"
            )
        if config.pairs_per_step > 1:
            raise ConfigError("pairs_per_step > 1 does not take a trainable encoder top")


def build_model(
    description: ModelDescription, seed: int, encoder_top: EncoderTop | None = None
) -> tuple[ParameterFactorization, FactorizationGuide]:
    """The model and guide of a run, their initial parameters drawn under ``seed`` (Pyro's
    global state; every rank of a distributed run builds the same), a trained encoder top
    starting from ``encoder_top``'s pretrained weights."""
    pyro.set_rng_seed(seed)
    factorization, guide = description.build()
    if description.encoder_top is not None and encoder_top is not None:
        factorization.encoder_top.load_state_dict(encoder_top.state_dict())
    return factorization, guide


def make_elbo(config: TrainConfig, several_pairs: bool = False) -> Trace_ELBO:
    """The run's ELBO estimator (``config.elbo``), its particles vectorised; the plate
    nesting of a step over one pair or over several."""
    return ELBOS[config.elbo](
        num_particles=config.num_particles,
        vectorize_particles=True,
        max_plate_nesting=PAIRS_PLATE_NESTING if several_pairs else MAX_PLATE_NESTING,
    )


def pair_arguments(
    pair: Pair,
    batch: PairTensors,
    sizes: Mapping[Pair, int],
    pair_weights: Mapping[Pair, float],
    kl_weight: float,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The (args, kwargs) the model and guide take for one pair's mini-batch: what a step's
    ELBO is called with, by this trainer and by the distributed one (:func:`step_weights`
    gives the weights)."""
    args = (*pair, batch.inputs, batch.mask, batch.labels)
    scales = {"pair_size": sizes[pair], "kl_weight": kl_weight, "pair_weight": pair_weights[pair]}
    return args, scales


def checkpoint_payload(
    *,
    step: int,
    params: Mapping[str, Tensor],
    best_params: Mapping[str, Tensor] | None,
    optimizer: Mapping[str, Any],
    rng: Any,
    config: TrainConfig,
    history: list[dict[str, Any]],
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """What a run's checkpoint holds (:func:`~pfpyro.infer.checkpoint.save_checkpoint`)."""
    return {
        "step": step,
        "params": snapshot(params),
        "best_params": best_params,
        "optimizer": optimizer,
        "rng": rng,
        "config": config.to_dict(),
        "history": history,
        "state": state,
    }


_GROUPED = ("model.hypernet.", "model.encoder_top.")


def param_groups(params: Mapping[str, Tensor], optim: OptimConfig) -> list[dict[str, Any]]:
    """ClippedAdam's parameter groups: ``weight_decay`` on the hypernetwork's ψ, φ only (the
    guide's q(t), q(l) have their prior in the ELBO already); a trained encoder top takes its
    own, smaller learning rate ``top_lr`` (it starts from pretrained weights); with
    ``latent_lr`` the guide's parameters take that rate, with ``base_lr`` the hypernetwork's
    per-task bases take theirs (0: fixed at their start). Only ``clip: value`` clamps per
    element (ClippedAdam's ``clip_norm``); the other modes give it an infinite bound."""
    bound = optim.clip_norm if optim.clip == "value" else math.inf
    common = {"lr": optim.lr, "clip_norm": bound, "lrd": optim.lr_decay}

    def under(prefix: str) -> list[Tensor]:
        return [value for name, value in params.items() if name.startswith(prefix)]

    top = under("model.encoder_top.")
    bases = under(BASE_PREFIX) if optim.base_lr is not None else []
    hypernet = [
        value
        for name, value in params.items()
        if name.startswith("model.hypernet.")
        and not (optim.base_lr is not None and name.startswith(BASE_PREFIX))
    ]
    grouped = _GROUPED if optim.latent_lr is None else (*_GROUPED, "guide.")
    rest = [value for name, value in params.items() if not name.startswith(grouped)]
    latent = under("guide.") if optim.latent_lr is not None else []
    groups = [
        {"params": hypernet, **common, "weight_decay": optim.weight_decay},
        {"params": bases, **common, "lr": optim.base_lr, "weight_decay": 0.0},
        {"params": rest, **common, "weight_decay": 0.0},
        {"params": latent, **common, "lr": optim.latent_lr, "weight_decay": 0.0},
        {"params": top, **common, "lr": optim.top_lr, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


#: The per-task base classifiers of a hypernetwork that declares ``with_base`` (``optim.base_lr``).
BASE_PREFIX = "model.hypernet.base."


class NormClippedAdam(ClippedAdam):
    """ClippedAdam after scaling the gradient of all its parameters to a global L2 norm of at
    most ``max_norm`` (``optim.clip: norm``): the step keeps the gradient's direction, and the
    sizes of the pairs' likelihood terms keep their weight, which a per-element clamp that
    binds on most elements does not."""

    def __init__(self, groups: list[dict[str, Any]], max_norm: float) -> None:
        super().__init__(groups)
        self.max_norm = float(max_norm)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        grads = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
        return super().step(closure)


def make_optimizer(params: Mapping[str, Tensor], optim: OptimConfig) -> ClippedAdam:
    """The optimiser of a run's parameters: ClippedAdam over :func:`param_groups`, with the
    global-norm clip of :class:`NormClippedAdam` when ``optim.clip`` is ``norm``."""
    groups = param_groups(params, optim)
    return NormClippedAdam(groups, optim.clip_norm) if optim.clip == "norm" else ClippedAdam(groups)


def svi_update(
    elbo: Trace_ELBO,
    factorization: ParameterFactorization | Callable[..., None],
    guide: FactorizationGuide | Callable[..., None],
    optimizer: torch.optim.Optimizer,
    *args: Any,
    **kwargs: Any,
) -> float:
    """One SVI step over module-local parameters, as Pyro's ``SVI.step`` takes it over the
    global store: the loss (a float) and its gradients, one optimiser step, gradients zeroed.
    A non-finite loss is returned without the step, the parameters as they were. The model
    and guide are the modules (one pair) or their methods (``model_pairs``, ``pairs``)."""
    loss = elbo.loss_and_grads(factorization, guide, *args, **kwargs)
    if math.isfinite(loss):
        optimizer.step()
    # Zeros, not None, as SVI leaves them: a tensor that has had a gradient keeps taking
    # Adam steps (its moments decaying) in the steps that do not touch it.
    optimizer.zero_grad(set_to_none=False)
    return float(loss)


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict with dotted keys ("optim.lr"), for saying what changed."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class _Run:
    """The state of one training run and the steps that change it."""

    def __init__(
        self,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors],
        config: TrainConfig,
        description: ModelDescription,
        run_dir: Path | None,
        scorer: Scorer = accuracy_scorer,
        encoder_top: EncoderTop | None = None,
    ) -> None:
        self.train, self.dev, self.config, self.run_dir = train, dev, config, run_dir
        self.scorer = scorer
        self.device = resolve_device(config.device)
        self.pairs = sorted(train)
        self.sizes = {pair: len(train[pair]) for pair in self.pairs}
        self.weights = torch.tensor([float(n) for n in self.sizes.values()], dtype=torch.float64)
        self.pair_weights, self.kl_weight = step_weights(
            self.sizes, config.pair_sampling, config.kl_beta
        )
        self.state: dict[str, Any] = {
            "best_step": None,
            "best_score": None,
            "evals_since_best": 0,
            "stopped": False,
            "pending_losses": [],  # losses since the last train record
            "pair_sizes": {pair_name(p): n for p, n in self.sizes.items()},
        }
        self.step, self.history = 0, []
        self.best_params: dict[str, Tensor] | None = None
        self.resumed = False
        self.score_start = False  # score the dev data at step 0 too (a given start)

        self.factorization, self.guide = build_model(description, config.seed, encoder_top)
        self.factorization.to(self.device)
        self.guide.to(self.device)
        self.params = named_params(self.factorization, self.guide)
        self.optimizer = make_optimizer(self.params, config.optim)
        self.elbo = make_elbo(config, several_pairs=config.pairs_per_step > 1)
        self.generator = torch.Generator().manual_seed(config.seed)

    # -- checkpoints -------------------------------------------------------------------------
    def resume_from(self, saved: Mapping[str, Any], where: str) -> None:
        changed = config_changes(self.config, saved["config"])
        if changed:
            raise ConfigError(f"cannot resume {where}: the config differs in " + "; ".join(changed))
        if saved["state"].get("pair_sizes") != self.state["pair_sizes"]:
            raise ConfigError(f"cannot resume {where}: the training pairs or their sizes differ")
        restore(self.params, saved_params(saved, "params", self.params, where), where)
        self.optimizer.load_state_dict(saved_optimizer(saved, self.params, self.optimizer, where))
        # A tensor with Adam moments has had a gradient, which an uninterrupted run holds as
        # zeros since (see svi_update): give it zeros, or it would skip steps that do not touch it.
        for value in self.params.values():
            if self.optimizer.state.get(value):
                value.grad = torch.zeros_like(value)
        set_rng_state(saved["rng"], self.generator)
        self.step, self.history = int(saved["step"]), list(saved["history"])
        self.best_params = saved_params(saved, "best_params", self.params, where)
        self.state.update({key: saved["state"][key] for key in self.state if key in saved["state"]})
        self.resumed = True

    def save(self) -> None:
        if self.run_dir is None:
            return
        payload = checkpoint_payload(
            step=self.step,
            params=self.params,
            best_params=self.best_params,
            optimizer=self.optimizer.state_dict(),
            rng=rng_state(self.generator),
            config=self.config,
            history=self.history,
            state=self.state,
        )
        save_checkpoint(self.run_dir, payload)

    # -- the loop ------------------------------------------------------------------------------
    def loop(self) -> None:
        config, state = self.config, self.state
        with RunLogger(
            self.run_dir,
            tensorboard=config.tensorboard,
            resume_step=self.step if self.resumed else None,
        ) as logger:
            event = "resume" if self.resumed else "start"
            logger.log("event", self.step, event=event, device=str(self.device))
            bar = progress_bar(
                total=config.max_steps,
                initial=min(self.step, config.max_steps),
                enabled=config.progress,
                desc="svi",
            )
            try:
                if self.score_start and self.dev and self.step == 0:
                    self.history.append(logger.log("eval", 0, **self.evaluate()))
                while self.step < config.max_steps and not state["stopped"]:
                    self.step += 1
                    pairs = [self.draw_pair() for _ in range(config.pairs_per_step)]
                    try:
                        state["pending_losses"].append(self.svi_step(pairs))
                    except NumericalError as err:
                        logger.log("event", self.step, event="numerical_error", message=str(err))
                        raise
                    bar.update(1)
                    last = self.step == config.max_steps
                    if self.step % config.log_every == 0 or last:
                        record = logger.log("train", self.step, **self.train_record(pairs))
                        self.history.append(record)
                        bar.set_postfix(  # shown at the bar's next redraw, not one more
                            elbo=f"{record['elbo']:.4g}", best=_fmt(state["best_score"]),
                            refresh=False,
                        )  # fmt: skip
                    if self.dev and (self.evaluates_at(self.step) or last):
                        record = logger.log("eval", self.step, **self.evaluate())
                        self.history.append(record)
                        bar.set_postfix(
                            dev=_fmt(record["dev_score"]), best=_fmt(state["best_score"]),
                            refresh=False,
                        )  # fmt: skip
                        self.save()
                    elif config.checkpoint_every and self.step % config.checkpoint_every == 0:
                        self.save()
                if state["stopped"]:
                    logger.log("event", self.step, event="early_stop", best_step=state["best_step"])
                self.save()
            finally:
                bar.close()

    def evaluates_at(self, step: int) -> bool:
        """Whether the dev data are scored after ``step`` (``eval_steps``, else every
        ``eval_every`` steps)."""
        if self.config.eval_steps:
            return step in self.config.eval_steps
        return step % self.config.eval_every == 0

    def draw_pair(self) -> Pair:
        """One seen pair, uniformly or in proportion to its size (the data generator's draw)."""
        if self.config.pair_sampling == "size":
            index = int(torch.multinomial(self.weights, 1, generator=self.generator))
        else:
            index = int(torch.randint(len(self.pairs), (1,), generator=self.generator))
        return self.pairs[index]

    def minibatch(self, pair: Pair) -> PairTensors:
        """A random mini-batch of ``pair``'s sentences (the run's generator), on the device."""
        index = torch.randperm(self.sizes[pair], generator=self.generator)
        return self.train[pair].batch(index[: self.config.batch_size], self.device)

    def svi_step(self, pairs: Sequence[Pair]) -> float:
        """A mini-batch of each of ``pairs`` and one SVI step on them; the loss, or
        NumericalError (the parameters are then left as they were)."""
        batches = [self.minibatch(pair) for pair in pairs]
        try:
            if len(pairs) == 1:
                (pair,), (batch,) = pairs, batches
                weights = self.sizes, self.pair_weights, self.kl_weight
                args, kwargs = pair_arguments(pair, batch, *weights)
                loss = svi_update(
                    self.elbo, self.factorization, self.guide, self.optimizer, *args, **kwargs
                )
            else:
                scale = [
                    self.pair_weights[p] * self.sizes[p] / len(b) / len(pairs)
                    for p, b in zip(pairs, batches, strict=True)
                ]
                loss = svi_update(
                    self.elbo,
                    self.factorization.model_pairs,
                    self.guide.pairs,
                    self.optimizer,
                    PairsBatch.stack(pairs, batches, scale),
                    kl_weight=self.kl_weight,
                )
        except ValueError as err:
            # With validation on, a NaN reaching a distribution's parameters fails its
            # constraint check before any loss exists: the same numerical failure.
            if "invalid values" in str(err):
                raise NumericalError(
                    self.step, pairs, "non-finite values reached a distribution"
                ) from err
            raise
        if not math.isfinite(loss):
            raise NumericalError(self.step, pairs, f"the loss is {loss}")
        return float(loss)

    def train_record(self, pairs: Sequence[Pair]) -> dict[str, Any]:
        losses = self.state["pending_losses"]
        record: dict[str, Any] = {
            "pair": ", ".join(pair_name(pair) for pair in pairs),
            "elbo": -losses[-1],
            "elbo_mean": -sum(losses) / len(losses),
            "lr": self.current_lr(),
        }
        self.state["pending_losses"] = []
        kl = closed_form_kl(self.guide)
        if kl is not None:
            record["kl_t"], record["kl_l"] = kl
        return record

    def evaluate(self) -> dict[str, Any]:
        """Score the seen pairs' dev data, keep the best parameters, count patience."""
        state = self.state
        scores = evaluate_plugin(self.factorization, self.guide, self.dev, scorer=self.scorer)
        score = sum(scores.values()) / len(scores)
        if state["best_score"] is None or score > state["best_score"]:
            state.update(best_step=self.step, best_score=score, evals_since_best=0)
            self.best_params = snapshot(self.params)
        else:
            state["evals_since_best"] += 1
        state["stopped"] = state["evals_since_best"] >= self.config.patience
        return {
            "dev_score": score,
            "dev": {pair_name(p): s for p, s in scores.items()},
            "best_score": state["best_score"],
            "best_step": state["best_step"],
            "stopped": state["stopped"],
        }

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


__all__ = [
    "NumericalError",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "check_data",
    "check_description",
    "check_same_model",
    "checkpoint_payload",
    "closed_form_kl",
    "config_changes",
    "data_parallel_run",
    "describe",
    "evaluate_plugin",
    "make_elbo",
    "num_minibatches",
    "pair_arguments",
    "pair_probabilities",
    "param_groups",
    "step_weights",
    "svi_update",
    "train",
]
