"""SVI step and prediction cost: Pyro against a plain-PyTorch floor, and BMA against plug-in.

In one run, on one mini-batch of 32 random sentences of cached-feature shape (e = 384 by
default, T = 25) and the paper-sized PF-lr model (h = 100, hidden 400, 768 × 4, c = 17,
3 vectorised particles), it times

(a) one ``svi.step`` (Trace_ELBO, ClippedAdam: what :func:`pfpyro.infer.train` runs), and
(b) one reference step: :func:`pfpyro.model.reference.reference_elbo`, backward, Adam,

each as the median of ``--repeats`` steps after ``--warmup`` steps (the two alternate, so that
a change in the machine's load hits both alike), and prints both and the
ratio (a)/(b) (goal ≤ 1.5). Then, for the same 32 sentences, it times prediction by model
averaging over ``--samples`` posterior samples (:class:`~pfpyro.infer.PFPredictor`, mode "bma")
against the plug-in predictor, and prints both and their ratio (goal ≤ 5).

``--head flat`` swaps in :class:`FlatSoftmaxHead`, a proposed replacement for the model's
``SoftmaxHead.logits`` that does one (B·T × e) @ (e × S·c) product instead of a broadcast
batched matmul that copies W once per word (see its docstring).

Usage::

    python experiments/bench/svi_step.py [--repeats 20] [--samples 100] [--head flat]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam
from torch import Tensor

from pfpyro.infer.predict import PFPredictor
from pfpyro.model.factorization import MAX_PLATE_NESTING, ParameterFactorization
from pfpyro.model.guides import make_guide
from pfpyro.model.heads import SoftmaxHead
from pfpyro.model.reference import reference_elbo


class FlatSoftmaxHead(SoftmaxHead):
    """SoftmaxHead with the same results, computed as one flat matrix product.

    ``features[..., None, :] @ W`` with W of batch shape [S, 1, 1] broadcasts W to
    [S, B, T, e, c] and copies it (matmul's batched path cannot stride a broadcast): for 100
    posterior samples of the paper-sized head that is 100·32·25·384·17 floats, about 2 GB, per
    call. Here the words are flattened to [B·T, e] and multiplied once by all samples' W laid
    side by side as [e, S·c]. Falls back to the parent when θ's trailing batch dims are not
    singletons (θ per sentence or per word).
    """

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        batch = theta.shape[:-1]
        trailing = batch[-2:] if len(batch) >= 2 else batch
        if features.dim() != 3 or any(size != 1 for size in trailing):
            return super().logits(theta, features, num_classes)
        weight, bias = self.unpack(theta)
        weight, bias = weight[..., :num_classes], bias[..., :num_classes]
        lead = batch[:-2] if len(batch) >= 2 else ()
        sentences, length, width = features.shape
        samples = weight.reshape(-1, width, num_classes)  # [K, e, c], K = prod(batch)
        flat = features.reshape(-1, width) @ samples.permute(1, 0, 2).reshape(width, -1)
        scores = flat.reshape(sentences, length, -1, num_classes).permute(2, 0, 1, 3)
        return scores.reshape(*lead, sentences, length, num_classes) + bias


class SharedHypernetFactorization(ParameterFactorization):
    """ParameterFactorization whose model reuses the guide's f_psi, f_phi of the same step.

    In an SVI step the guide draws θ with ``sample_theta(t_i, l_j)`` and the replayed model
    calls it again with the very same t and l (views of the guide's sample tensors), so the
    hypernetwork runs, and is differentiated, twice. This sketch of a proposed change keeps
    the last (t, l) -> (f_psi, f_phi) result and hands it back when the model asks for the
    same views; values are identical, so log p(θ) − log q(θ) stays exactly 0.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last: tuple | None = None

    @staticmethod
    def _key(t_i: Tensor, l_j: Tensor) -> tuple:
        return (
            t_i._base if t_i._base is not None else t_i,
            l_j._base if l_j._base is not None else l_j,
            t_i.storage_offset(),
            l_j.storage_offset(),
            t_i.shape,
            l_j.shape,
        )

    def sample_theta(self, t_i: Tensor, l_j: Tensor) -> Tensor:
        key = self._key(t_i, l_j)
        last = self._last
        if last is not None and all(
            a is b if isinstance(a, Tensor) else a == b for a, b in zip(last[0], key, strict=True)
        ):
            loc, variance = last[1]
            self._last = None  # used once: the model's call after the guide's
        else:
            loc, variance = self.hypernet(t_i, l_j)
            self._last = (key, (loc, variance))
        return pyro.sample("theta", pyro.distributions.Normal(loc, variance.sqrt()).to_event(1))


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/svi_step.py --repeats 10 --samples 100",
    )
    parser.add_argument("--feature-dim", type=int, default=384, help="e, the encoder width")
    parser.add_argument("--length", type=int, default=25, help="T, words per sentence")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per step")
    parser.add_argument("--latent-dim", type=int, default=100, help="h")
    parser.add_argument(
        "--hidden-dims",
        default="400,768,768,768,768",
        help="hypernetwork hidden widths, comma-separated ('' for none)",
    )
    parser.add_argument("--classes", type=int, default=17, help="c (17: UPOS)")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--langs", type=int, default=34)
    parser.add_argument("--rank", type=int, default=10, help="k of PF-lr")
    parser.add_argument("--particles", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="S for model averaging")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="timed steps (median)")
    parser.add_argument("--predict-repeats", type=int, default=5, help="timed predictions")
    parser.add_argument("--head", choices=("softmax", "flat"), default="softmax")
    parser.add_argument(
        "--share-hypernet",
        action="store_true",
        help="the model reuses the guide's hypernetwork output (a proposed change, see "
        "SharedHypernetFactorization)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser


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
    opts = build_argparse().parse_args(args)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device(opts.device)
    pyro.set_rng_seed(opts.seed)
    hidden = tuple(int(h) for h in opts.hidden_dims.split(",") if h.strip())
    tasks = [f"task{i}" for i in range(opts.tasks)]
    langs = [f"lang{j}" for j in range(opts.langs)]
    head_type = FlatSoftmaxHead if opts.head == "flat" else SoftmaxHead
    model_type = SharedHypernetFactorization if opts.share_hypernet else ParameterFactorization
    factorization = model_type(
        tasks,
        langs,
        opts.feature_dim,
        num_classes=dict.fromkeys(tasks, opts.classes),
        latent_dim=opts.latent_dim,
        hidden_dims=hidden,
        head=head_type(opts.feature_dim, opts.classes),
    ).to(device)
    guide = make_guide(factorization, "lr", rank=opts.rank).to(device)
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
    with pyro.get_param_store().scope():
        elbo = Trace_ELBO(
            num_particles=opts.particles,
            vectorize_particles=True,
            max_plate_nesting=MAX_PLATE_NESTING,
        )
        svi = SVI(factorization.model, guide, ClippedAdam({"lr": 1e-4, "clip_norm": 10.0}), elbo)
        results["svi_step_s"], results["reference_step_s"] = paired_medians(
            lambda: svi.step(*args_), reference_step, opts.warmup, opts.repeats, device
        )
    results["svi_over_reference"] = results["svi_step_s"] / results["reference_step_s"]

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
        f"device {device}, threads {torch.get_num_threads()}, head {opts.head}, "
        f"shared hypernet {opts.share_hypernet}, "
        f"B={b} T={t} e={e} c={opts.classes} h={opts.latent_dim} hidden={hidden} "
        f"particles={opts.particles} S={opts.samples}"
    )
    print(f"svi.step         {results['svi_step_s'] * 1e3:9.2f} ms")
    print(f"reference step   {results['reference_step_s'] * 1e3:9.2f} ms")
    print(f"ratio            {results['svi_over_reference']:9.2f}   (goal <= 1.5)")
    print(f"plug-in predict  {results['plugin_s'] * 1e3:9.2f} ms")
    print(f"BMA predict      {results['bma_s'] * 1e3:9.2f} ms   ({opts.samples} samples)")
    print(f"ratio            {results['bma_over_plugin']:9.2f}   (goal <= 5)")
    return results


if __name__ == "__main__":
    main()
