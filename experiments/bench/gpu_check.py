"""The CUDA path in one short run: CPU and CUDA give the same numbers, and how long each takes.

On a synthetic world (no data, no encoder needed), with a paper-shaped PF-lr model:

1. **Training**: ``--steps`` SVI steps (one pair per step, then ``--pairs`` pairs per step) on
   the CPU and on the device, the same seed; steps per second of each. The two runs draw
   different Monte Carlo noise (CPU and CUDA have separate random streams), so their dev
   accuracies are compared within ``--accuracy-tolerance``, not bit for bit.
2. **The same numbers**: the CPU-trained run is copied to the device and, on the same draws
   of t, l and θ, the ELBO (log p − log q), the plug-in probabilities and the model-averaged
   (BMA) probabilities of ``--samples`` posterior samples are compared with the CPU's
   (``--tolerance``, relative for the ELBO, absolute for probabilities).
3. **Timings** of a BMA call on each.

It prints every comparison and timing, and exits 1 when a comparison fails (2 when the device
is missing). ``experiments/bench/gpu.sh`` runs it with the defaults (well under 5 minutes on
one GPU); ``--device cpu`` runs the same checks CPU against CPU (what the test suite does).

Usage::

    python experiments/bench/gpu_check.py [--device cuda] [--steps 100] [--pairs 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pyro
import torch
from pyro import poutine

from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.device import resolve_device
from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_accuracy
from pfpyro.infer import PFPredictor, train
from pfpyro.testing.synthetic import make_world


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/gpu_check.py --device cuda --steps 100",
    )
    parser.add_argument("--device", default="cuda", help="the device to check against the CPU")
    parser.add_argument("--steps", type=int, default=100, help="SVI steps per training run")
    parser.add_argument("--pairs", type=int, default=4, help="pairs per step of the second run")
    parser.add_argument("--samples", type=int, default=100, help="S for model averaging")
    parser.add_argument("--feature-dim", type=int, default=384, help="e (the offline encoder's)")
    parser.add_argument("--latent-dim", type=int, default=100, help="h (the paper's)")
    parser.add_argument("--hidden-dims", default="400,768", help="hypernetwork hidden widths")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--langs", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--accuracy-tolerance", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def timed_train(world, seen, device: str, pairs_per_step: int, opts) -> tuple[object, float]:
    hidden = [int(h) for h in opts.hidden_dims.split(",") if h.strip()]
    config = TrainConfig(
        batch_size=32,
        max_steps=opts.steps,
        eval_every=opts.steps,
        pairs_per_step=pairs_per_step,
        seed=opts.seed,
        device=device,
        progress=False,
        optim=OptimConfig(lr=0.01),
    )
    model = ModelConfig(
        latent_dim=opts.latent_dim,
        hypernet={"name": "shared", "hidden_dims": hidden},
        guide={"name": "lr", "rank": 10},
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        config,
        model=model,
        num_classes=world.num_classes,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def heldout_accuracy(result, world, pair, device: torch.device) -> float:
    data = world.test[pair]
    predictor = PFPredictor(result.factorization, result.guide, mode="plugin")
    probs = predictor.predict_proba(*pair, data.features.float().to(device), data.mask.to(device))
    return token_accuracy(data.labels, probs.argmax(-1).cpu(), data.mask)


def elbo_on_draws(factorization, guide, draws: dict, args: tuple, kwargs: dict) -> float:
    """log p − log q of the guide's trace with its t, l and θ set to ``draws``."""
    drawn = poutine.trace(guide).get_trace(*args, **kwargs)
    for name, value in draws.items():
        drawn.nodes[name]["value"] = value
    replayed = poutine.trace(poutine.replay(guide, trace=drawn)).get_trace(*args, **kwargs)
    model = poutine.trace(poutine.replay(factorization, trace=replayed)).get_trace(*args, **kwargs)
    return (model.log_prob_sum() - replayed.log_prob_sum()).item()


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    opts = build_argparse().parse_args(args)
    try:
        device = resolve_device(opts.device)
    except ConfigError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        sys.exit(2)
    cpu = torch.device("cpu")
    world = make_world(
        opts.tasks,
        opts.langs,
        feature_dim=opts.feature_dim,
        sentences=(200, 40, 60),
        length=20,
        seed=opts.seed,
    )
    heldout = (world.tasks[-1], world.langs[-1])
    seen = [p for p in world.pairs() if p != heldout]
    print(f"device {device} against cpu; {len(seen)} seen pairs, e={opts.feature_dim}")
    results: dict[str, float] = {}
    failures = []

    # 1. Training on each, one pair and several pairs per step.
    runs = {}
    for pairs in (1, opts.pairs):
        for name, where in (("cpu", cpu), ("device", device)):
            result, seconds = timed_train(world, seen, str(where), pairs, opts)
            runs[name, pairs] = result
            results[f"steps_per_s_{name}_p{pairs}"] = opts.steps / seconds
            results[f"accuracy_{name}_p{pairs}"] = heldout_accuracy(result, world, heldout, where)
        gap = abs(results[f"accuracy_cpu_p{pairs}"] - results[f"accuracy_device_p{pairs}"])
        print(
            f"train P={pairs}: {results[f'steps_per_s_cpu_p{pairs}']:.1f} steps/s on cpu, "
            f"{results[f'steps_per_s_device_p{pairs}']:.1f} on {device}; zero-shot accuracy "
            f"{results[f'accuracy_cpu_p{pairs}']:.3f} / {results[f'accuracy_device_p{pairs}']:.3f}"
        )
        if gap > opts.accuracy_tolerance:
            failures.append(f"P={pairs}: accuracies differ by {gap:.3f}")

    # 2. The CPU run on the device: the same ELBO and predictions on the same draws.
    trained = runs["cpu", 1]
    factorization, guide = trained.factorization, trained.guide
    pair = seen[0]
    data = world.train[pair].batch(range(32))
    args_ = (*pair, data.features, data.mask, data.labels)
    kwargs = {"pair_size": len(world.train[pair]), "kl_weight": 0.1}
    pyro.set_rng_seed(opts.seed)
    drawn = poutine.trace(guide).get_trace(*args_, **kwargs)
    draws = {name: drawn.nodes[name]["value"].detach() for name in ("t", "l", "theta")}
    cpu_elbo = elbo_on_draws(factorization, guide, draws, args_, kwargs)
    cpu_predictor = PFPredictor(factorization, guide, mode="bma", num_samples=opts.samples)
    features, mask = data.features, data.mask
    cpu_plugin = cpu_predictor.plugin_proba(*pair, features, mask)
    start = time.perf_counter()
    # t, l and θ of S posterior samples: the device reuses them all, θ included
    per_sample, samples = cpu_predictor.sample_proba_with_samples(*pair, features, mask)
    cpu_bma = per_sample.mean(0)
    results["bma_s_cpu"] = time.perf_counter() - start

    factorization.to(device)
    guide.to(device)
    on_device = {name: value.to(device) for name, value in draws.items()}
    device_args = (*pair, features.to(device), mask.to(device), data.labels.to(device))
    device_elbo = elbo_on_draws(factorization, guide, on_device, device_args, kwargs)
    predictor = PFPredictor(factorization, guide, mode="bma", num_samples=opts.samples)
    device_plugin = predictor.plugin_proba(*pair, features.to(device), mask.to(device)).cpu()
    device_samples = {name: value.to(device) for name, value in samples.items()}
    bma_call = (*pair, features.to(device), mask.to(device), device_samples)
    predictor.sample_proba(*bma_call)  # warm-up: the first CUDA call pays for its kernels
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    device_bma = predictor.sample_proba(*bma_call).mean(0).cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()
    results["bma_s_device"] = time.perf_counter() - start

    results["elbo_relative_gap"] = abs(device_elbo - cpu_elbo) / max(abs(cpu_elbo), 1e-12)
    results["plugin_max_gap"] = float((device_plugin - cpu_plugin).abs().max())
    results["bma_max_gap"] = float((device_bma - cpu_bma).abs().max())
    print(
        f"same draws: ELBO {cpu_elbo:.6g} (cpu) vs {device_elbo:.6g} ({device}), relative gap "
        f"{results['elbo_relative_gap']:.2e}; plug-in max gap {results['plugin_max_gap']:.2e}; "
        f"BMA({opts.samples}) max gap {results['bma_max_gap']:.2e}"
    )
    print(
        f"BMA({opts.samples}) of {int(mask.sum())} words: {results['bma_s_cpu'] * 1e3:.1f} ms on "
        f"cpu, {results['bma_s_device'] * 1e3:.1f} ms on {device}"
    )
    for key in ("elbo_relative_gap", "plugin_max_gap", "bma_max_gap"):
        if not results[key] <= opts.tolerance:
            failures.append(f"{key} {results[key]:.2e} > {opts.tolerance}")
    print("OK: cpu and device agree" if not failures else "FAILED: " + "; ".join(failures))
    results["failures"] = float(len(failures))
    return results


if __name__ == "__main__":
    sys.exit(1 if main()["failures"] else 0)
