"""SVI step and prediction cost: Pyro against a plain-PyTorch floor, and BMA against plug-in.

In one run, on one mini-batch of 32 random sentences of cached-feature shape (e = 384 by
default, T = 25) and the paper-sized PF-lr model (h = 100, hidden 400, 768 × 4, c = 17,
3 vectorised particles), it times

(a) one SVI step (:func:`pfpyro.infer.trainer.svi_update`: Trace_ELBO, ClippedAdam, what
    :func:`pfpyro.infer.train` runs), and
(b) one reference step: :func:`pfpyro.testing.reference.reference_elbo`, backward, Adam,

each as the median of ``--repeats`` steps after ``--warmup`` steps (the two alternate, so that
a change in the machine's load hits both alike), and prints both and the
ratio (a)/(b) (goal ≤ 1.5). It also times (c) one training step of JM's classifier
(:class:`~pfpyro.baselines.linear.LinearTagger`: cross-entropy of the same sentences' words,
Adam) and prints PF's and JM's training sentences per second and the line
``PF/JM training throughput <ratio>`` (goal ≥ 0.5; PF at its best number of pairs per step).
With ``--pairs`` (default 1,4,16) it times the same two for a
step over P pairs at once (``pairs_per_step``: :meth:`model_pairs` against
:func:`~pfpyro.testing.reference.reference_pairs_elbo`), P mini-batches like the one above,
and prints each P's times, ratio and words per second. With ``--train-top`` (default 0,1) it
times, for each k ≥ 1, the single-pair step of a model that trains the encoder's top k layers
(``encoder.train_top``; a BERT layer of the offline encoder's shape, e = 384, 12 heads, FFN
1536, on ``--subwords`` states per sentence) against the reference step through the same
top, and prints each k's times and ratio (k = 0 is the step above; goal ≤ 1.5 at each). Then,
for the same 32 sentences, it
times prediction by model
averaging over ``--samples`` posterior samples (:class:`~pfpyro.infer.PFPredictor`, mode "bma")
against the plug-in predictor, and prints both and their ratio (goal ≤ 5).

Usage::

    python experiments/bench/svi_step.py [--repeats 20] [--samples 100] [--pairs 1,4,16]
    # the grid's sizes (experiments/results/paper): h = 10, a linear hypernetwork, batch 16
    python experiments/bench/svi_step.py --latent-dim 10 --hidden-dims '' --batch-size 16
    # the model, guide, optimiser, batch and particles of a config's PF (its model: section,
    # e.g. the grid's adapter layout), at the offset scale its selection grid starts from
    python experiments/bench/svi_step.py --config experiments/configs/paper.yaml --pairs 1,4,16
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import pyro
import torch
from pyro.infer import Trace_ELBO

from pfpyro.baselines.linear import LinearTagger
from pfpyro.config import OptimConfig
from pfpyro.data.batch import PairsBatch, PairTensors
from pfpyro.data.subwords import SubwordStates
from pfpyro.encode.top import EncoderTop
from pfpyro.infer.checkpoint import named_params
from pfpyro.infer.predict import PFPredictor
from pfpyro.infer.trainer import make_optimizer, svi_update
from pfpyro.model import Component, ModelDescription
from pfpyro.model.factorization import MAX_PLATE_NESTING, PAIRS_PLATE_NESTING
from pfpyro.testing.reference import reference_elbo, reference_pairs_elbo


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/svi_step.py --repeats 10 --samples 100",
    )
    parser.add_argument("--feature-dim", type=int, default=384, help="e, the encoder width")
    parser.add_argument("--length", type=int, default=25, help="T, words per sentence")
    parser.add_argument(
        "--batch-size", type=int, help="sentences per step (default 32, or the config's)"
    )
    parser.add_argument("--latent-dim", type=int, help="h (default 100, or the config's)")
    parser.add_argument(
        "--hidden-dims",
        default="400,768,768,768,768",
        help="hypernetwork hidden widths, comma-separated ('' for none)",
    )
    parser.add_argument("--classes", type=int, default=17, help="c (17: UPOS)")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--langs", type=int, default=34)
    parser.add_argument("--rank", type=int, default=10, help="k of PF-lr")
    parser.add_argument("--particles", type=int, help="default 3, or the config's")
    parser.add_argument("--samples", type=int, default=100, help="S for model averaging")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="timed steps (median)")
    parser.add_argument("--predict-repeats", type=int, default=5, help="timed predictions")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--pairs", default="1,4,16", help="pairs per SVI step to time (P)")
    parser.add_argument(
        "--train-top", default="0,1", help="encoder layers trained with the model to time (k)"
    )
    parser.add_argument(
        "--subwords", type=int, default=40, help="subwords per sentence (with --train-top)"
    )
    parser.add_argument(
        "--top-heads", type=int, default=12, help="attention heads of the top's layers"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config",
        help="time this config's PF: its model: section (layout, h, guide; it replaces "
        "--hidden-dims and --rank) and optim:, and, unless given, its train.batch_size, "
        "train.num_particles and latent_dim",
    )
    return parser


def from_config(opts: argparse.Namespace):
    """``opts`` with the config's sizes, its ModelConfig and OptimConfig (None, the bench's
    own paper-sized PF-lr and a plain ClippedAdam, without ``--config``)."""
    own = {"latent_dim": 100, "batch_size": 32, "particles": 3}
    if not opts.config:
        for name, value in own.items():
            setattr(opts, name, value if getattr(opts, name) is None else getattr(opts, name))
        return opts, None, OptimConfig(lr=1e-4)
    from pfpyro.config import load_config

    config = load_config(opts.config)
    model = config.model
    if config.selection.offset_scales:  # the first candidate: the language path on, as it trains
        from pfpyro.pipeline.fit import offset_scale_candidates

        _, model = offset_scale_candidates(model, list(config.selection.offset_scales))[0]
    train = config.train_config(opts.seed)
    theirs = {
        "latent_dim": model.latent_dim,
        "batch_size": train.batch_size,
        "particles": train.num_particles,
    }
    for name, value in theirs.items():
        setattr(opts, name, value if getattr(opts, name) is None else getattr(opts, name))
    if opts.latent_dim != model.latent_dim:
        model = dataclasses.replace(model, latent_dim=opts.latent_dim)
    return opts, model, config.optim


def build_model(opts, tasks, langs, hidden, top: EncoderTop | None = None, model=None):
    """The benched PF-lr model and guide (with ``top``'s weights when it trains one), or
    the model of a config's ``model:`` section."""
    if model is not None:
        classes = dict.fromkeys(tasks, opts.classes)
        description = ModelDescription.from_config(model, tasks, langs, classes, opts.feature_dim)
        if top is not None:
            description = dataclasses.replace(description, encoder_top=top.spec)
        factorization, guide = description.build()
        if top is not None:
            factorization.encoder_top.load_state_dict(top.state_dict())
        return factorization, guide
    factorization, guide = ModelDescription.for_sizes(
        tasks,
        langs,
        dict.fromkeys(tasks, opts.classes),
        opts.feature_dim,
        latent_dim=opts.latent_dim,
        hypernet=Component("shared", {"hidden_dims": hidden}),
        guide=Component("lr", {"rank": opts.rank}),
        encoder_top=None if top is None else top.spec,
    ).build()
    if top is not None:
        factorization.encoder_top.load_state_dict(top.state_dict())
    return factorization, guide


def paired_medians(
    first: Callable[[], object],
    second: Callable[[], object],
    warmup: int,
    repeats: int,
    device: torch.device,
) -> tuple[float, float]:
    """Median wall times of two functions, timed alternately (``warmup`` untimed calls of
    each first), so that a change in the machine's load hits both alike."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        first()
        second()
    sync()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in zip((first, second), times, strict=True):
            start = time.perf_counter()
            fn()
            sync()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    opts, model_config, optim_config = from_config(build_argparse().parse_args(args))
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device(opts.device)
    pyro.set_rng_seed(opts.seed)
    hidden = tuple(int(h) for h in opts.hidden_dims.split(",") if h.strip())
    tasks = [f"task{i}" for i in range(opts.tasks)]
    langs = [f"lang{j}" for j in range(opts.langs)]
    factorization, guide = build_model(opts, tasks, langs, hidden, model=model_config)
    factorization.to(device)
    guide.to(device)
    b, t, e = opts.batch_size, opts.length, opts.feature_dim
    features = torch.randn(b, t, e, device=device)
    mask = torch.ones(b, t, dtype=torch.bool, device=device)
    labels = torch.randint(opts.classes, (b, t), device=device)
    pair = (tasks[0], langs[1])
    args_ = (*pair, features, mask, labels, 1000, 1 / 500)

    params = [*factorization.parameters(), *guide.parameters()]
    adam = torch.optim.Adam(params, lr=1e-4)

    def reference_step() -> None:
        adam.zero_grad()
        loss = -reference_elbo(factorization, guide, *args_, num_particles=opts.particles)
        loss.backward()
        adam.step()

    results: dict[str, float] = {}
    elbo = Trace_ELBO(
        num_particles=opts.particles,
        vectorize_particles=True,
        max_plate_nesting=MAX_PLATE_NESTING,
    )
    optim = make_optimizer(named_params(factorization, guide), optim_config)
    results["svi_step_s"], results["reference_step_s"] = paired_medians(
        lambda: svi_update(elbo, factorization, guide, optim, *args_),
        reference_step,
        opts.warmup,
        opts.repeats,
        device,
    )
    results["svi_over_reference"] = results["svi_step_s"] / results["reference_step_s"]

    jm = LinearTagger(e, opts.classes).to(device)
    jm_adam = torch.optim.Adam(jm.parameters(), lr=1e-3)
    words_x, words_y = features[mask], labels[mask]

    def jm_step() -> None:  # one mini-batch of JM's training (LinearTagger.fit's step)
        jm_adam.zero_grad()
        torch.nn.functional.cross_entropy(jm.logits(words_x), words_y).backward()
        jm_adam.step()

    _, results["jm_step_s"] = paired_medians(
        lambda: svi_update(elbo, factorization, guide, optim, *args_),
        jm_step,
        opts.warmup,
        opts.repeats,
        device,
    )
    words = int(mask.sum())
    per_p = {1: (results["svi_step_s"], results["reference_step_s"])}
    for count in sorted({int(p) for p in opts.pairs.split(",") if p.strip()} - {1}):
        pairs = [(tasks[k % len(tasks)], langs[k % len(langs)]) for k in range(count)]
        stacked = PairsBatch.stack(
            pairs,
            [PairTensors(features, labels, mask) for _ in pairs],
            [1000 / b / count] * count,
        )
        pairs_elbo = Trace_ELBO(
            num_particles=opts.particles,
            vectorize_particles=True,
            max_plate_nesting=PAIRS_PLATE_NESTING,
        )

        def pairs_reference_step(batch: PairsBatch = stacked) -> None:
            adam.zero_grad()
            elbo = reference_pairs_elbo(
                factorization, guide, batch, 1 / 500, num_particles=opts.particles
            )
            (-elbo).backward()
            adam.step()

        per_p[count] = paired_medians(
            lambda batch=stacked, elbo=pairs_elbo: svi_update(
                elbo, factorization.model_pairs, guide.pairs, optim, batch, 1 / 500
            ),
            pairs_reference_step,
            opts.warmup,
            opts.repeats,
            device,
        )
        results[f"svi_step_p{count}_s"], results[f"reference_step_p{count}_s"] = per_p[count]
        results[f"svi_over_reference_p{count}"] = per_p[count][0] / per_p[count][1]

    per_k = {0: per_p[1]}
    for k in sorted({int(x) for x in opts.train_top.split(",") if x.strip()} - {0}):
        per_k[k] = time_with_top(
            opts, k, tasks, langs, hidden, labels, mask, device, model_config, optim_config
        )
        results[f"svi_step_top{k}_s"], results[f"reference_step_top{k}_s"] = per_k[k]
        results[f"svi_over_reference_top{k}"] = per_k[k][0] / per_k[k][1]

    # Training sentences per second: PF at its best number of pairs per step, JM's step.
    pf_rates = {count: count * b / svi_s for count, (svi_s, _) in per_p.items()}
    best_p = max(pf_rates, key=pf_rates.__getitem__)
    results["pf_sentences_per_s"] = pf_rates[best_p]
    results["jm_sentences_per_s"] = b / results["jm_step_s"]
    results["pf_over_jm_throughput"] = results["pf_sentences_per_s"] / results["jm_sentences_per_s"]

    plugin = PFPredictor(factorization, guide, mode="plugin", batch_size=b)
    bma = PFPredictor(factorization, guide, mode="bma", num_samples=opts.samples, batch_size=b)
    results["bma_s"], results["plugin_s"] = paired_medians(
        lambda: bma.predict_proba(*pair, features, mask),
        lambda: plugin.predict_proba(*pair, features, mask),
        1,
        opts.predict_repeats,
        device,
    )
    results["bma_over_plugin"] = results["bma_s"] / results["plugin_s"]

    print(
        f"device {device}, threads {torch.get_num_threads()}, "
        f"B={b} T={t} e={e} c={opts.classes} h={opts.latent_dim} "
        f"hypernet={factorization.description.hypernet} guide={factorization.description.guide} "
        f"particles={opts.particles} S={opts.samples}"
    )
    print(f"SVI step         {results['svi_step_s'] * 1e3:9.2f} ms")
    print(f"reference step   {results['reference_step_s'] * 1e3:9.2f} ms")
    print(f"ratio            {results['svi_over_reference']:9.2f}   (goal <= 1.5)")
    if len(per_p) > 1:
        print("pairs/step   SVI step ms   reference ms   ratio   words/s (SVI)")
        for count, (svi_s, ref_s) in per_p.items():
            rate = count * words / svi_s
            times = f"{svi_s * 1e3:13.2f} {ref_s * 1e3:14.2f} {svi_s / ref_s:7.2f}"
            print(f"{count:10d} {times} {rate:15.0f}")
    if len(per_k) > 1:
        print(f"train_top k   SVI step ms   reference ms   ratio   (S={opts.subwords} subwords)")
        for k, (svi_s, ref_s) in per_k.items():
            print(f"{k:11d} {svi_s * 1e3:13.2f} {ref_s * 1e3:14.2f} {svi_s / ref_s:7.2f}")
    print(f"JM step          {results['jm_step_s'] * 1e3:9.2f} ms")
    print(f"PF training      {results['pf_sentences_per_s']:9.0f} sentences/s   "
          f"({best_p} pair(s) per step)")  # fmt: skip
    print(f"JM training      {results['jm_sentences_per_s']:9.0f} sentences/s")
    print(f"PF/JM training throughput {results['pf_over_jm_throughput']:.3f}   (goal >= 0.5)")
    print(f"plug-in predict  {results['plugin_s'] * 1e3:9.2f} ms")
    print(f"BMA predict      {results['bma_s'] * 1e3:9.2f} ms   ({opts.samples} samples)")
    print(f"ratio            {results['bma_over_plugin']:9.2f}   (goal <= 5)")
    return results


def time_with_top(
    opts: argparse.Namespace,
    k: int,
    tasks: list[str],
    langs: list[str],
    hidden: tuple[int, ...],
    labels: torch.Tensor,
    mask: torch.Tensor,
    device: torch.device,
    model_config=None,
    optim_config: OptimConfig | None = None,
) -> tuple[float, float]:
    """(SVI step, reference step) median seconds of a model that trains the top k layers of a
    BERT-shaped encoder, on one mini-batch of subword states."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=8,
        hidden_size=opts.feature_dim,
        num_hidden_layers=k,
        num_attention_heads=opts.top_heads,
        intermediate_size=4 * opts.feature_dim,
    )
    config._attn_implementation = "sdpa"  # as the encoders pfpyro loads
    top = EncoderTop.from_model(BertModel(config), k)
    factorization, guide = build_model(opts, tasks, langs, hidden, top, model=model_config)
    factorization.to(device)
    guide.to(device)
    b, t = mask.shape
    s = max(opts.subwords, t + 2)
    states = SubwordStates(
        torch.randn(b, s, opts.feature_dim, device=device),
        torch.zeros(b, s, dtype=torch.long, device=device),
        torch.arange(1, t + 1, device=device).expand(b, t),
    )
    args = (tasks[0], langs[1], states, mask, labels, 1000, 1 / 500)
    elbo = Trace_ELBO(
        num_particles=opts.particles, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING
    )
    optim = make_optimizer(named_params(factorization, guide), optim_config or OptimConfig(lr=1e-4))
    params = [*factorization.parameters(), *guide.parameters()]
    adam = torch.optim.Adam(params, lr=1e-4)

    def reference_step() -> None:
        adam.zero_grad()
        loss = -reference_elbo(factorization, guide, *args, num_particles=opts.particles)
        loss.backward()
        adam.step()

    return paired_medians(
        lambda: svi_update(elbo, factorization, guide, optim, *args),
        reference_step,
        opts.warmup,
        opts.repeats,
        device,
    )


if __name__ == "__main__":
    main()
