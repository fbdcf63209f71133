"""t-SNE of the embedding monitor: scikit-learn as `project` called it before openTSNE (the
baseline), scikit-learn tuned, and openTSNE, timed and scored on the same layouts.

Cases: the demo CNN's penultimate features (`build_demo_model` trained 2 epochs on 1000
`shapes` images, then 1 more: the "previous" and "current" records of the callback) and
scikit-learn digits (the previous record: digits plus noise), at 400 and 1000 points, fresh
(PCA-initialised, early exaggeration) and warm (started from the variant's own fresh layout of
the previous record, no exaggeration, aligned onto it). Each case times every variant in
interleaved rounds (order rotating) and reports the median seconds, the median per-round ratio
to the baseline, the trustworthiness (k=5, as the callback logs it) and its difference from
the baseline's, and for warm starts the displacement: the mean distance a point moved from
the previous layout, over the mean distance of the previous layout's points from its centre.

A variant passes a case when its trustworthiness is at least the baseline's minus 0.01 and
(warm) its displacement at most the baseline's plus 0.05. The default is the fastest
one-thread variant (geometric mean of its ratios) that passes every case; two-thread variants
are shown for information (in a training process TensorFlow's threads take the cores).

Run: `python benchmarks/tsne.py [--rounds 5] [--sizes 400,1000] [--fft] [--two-threads]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import _timing  # noqa: E402

TOLERANCE_TRUST = 0.01
TOLERANCE_DISPLACEMENT = 0.05
PERPLEXITY = 30.0


# -- data -------------------------------------------------------------------------------------
def demo_features(epochs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features of 1000 held-out `shapes` images after `epochs` and one more."""
    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model, train_demo_model
    from keras_cnnvis.features.embeddings import LayerFeatures

    x, y, names = datasets.load("shapes", n=2000, size=64, seed=0)
    model = build_demo_model(x.shape[1:], len(names), seed=0)
    train_demo_model(model, x[1000:], y[1000:], epochs=epochs)
    source = LayerFeatures(model)
    previous = source(x[:1000])[0]
    train_demo_model(model, x[1000:], y[1000:], epochs=1)
    return previous.astype(np.float64), source(x[:1000])[0].astype(np.float64)


def digits_features() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits (current) and digits plus 25%-of-std Gaussian noise (previous)."""
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    noise = np.random.default_rng(0).normal(size=x.shape) * 0.25 * x.std(0)
    return x + noise, x


# -- the variants -----------------------------------------------------------------------------
def _reduce(x: np.ndarray, dims: int = 50) -> np.ndarray:
    """The centred features on their first `dims` principal axes (as `project` does)."""
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dims].T


def _blas(one: bool):
    from keras_cnnvis._threads import one_blas_thread

    return one_blas_thread() if one else contextlib.nullcontext()


def sklearn_variant(one_blas=False, threads=1, angle=0.5, fresh_iter=1000, warm_iter=500):
    """scikit-learn's Barnes-Hut TSNE as `project` called it (defaults: exactly that call)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    from keras_cnnvis.features.projection import align

    def run(x, init=None):
        with _blas(one_blas):
            xr = _reduce(x) if x.shape[1] > 50 else x
            n = len(x)
            if init is None:
                start, exaggeration, iters = "pca", 12.0, fresh_iter
            else:
                start, exaggeration, iters = init - init.mean(0), 1.0, warm_iter
            tsne = TSNE(
                2,
                perplexity=min(PERPLEXITY, (n - 1) / 3.0),
                init=start,
                early_exaggeration=exaggeration,
                learning_rate=max(n / 48.0, 50.0),
                max_iter=iters,
                angle=angle,
                random_state=0,
            )
            with threadpool_limits(limits=threads, user_api="openmp"):
                points = tsne.fit_transform(xr)
        return points if init is None else align(points, init)

    return run


def opentsne_variant(
    method="bh", threads=1, theta=0.5, fresh_iter=1000, warm_iter=500, ee_iter=250, rates="sk"
):
    """openTSNE's affinity / TSNEEmbedding.optimize API with `project`'s schedule.

    `rates="sk"`: scikit-learn's step size (its learning rate times its gradient's factor 4,
    `max(n / 12, 200)` in openTSNE's units); `"auto"`: openTSNE's (n / 12 exaggerated, n after).
    """
    from openTSNE import TSNEEmbedding, affinity
    from threadpoolctl import threadpool_limits

    from keras_cnnvis.features.projection import align

    def run(x, init=None):
        # The OpenMP limit also holds scikit-learn's neighbour search inside the affinities.
        with _blas(True), threadpool_limits(limits=threads, user_api="openmp"):
            xr = _reduce(x)
            n = len(x)
            aff = affinity.PerplexityBasedNN(
                xr, min(PERPLEXITY, (n - 1) / 3.0), method="exact", n_jobs=threads, random_state=0
            )
            start = xr[:, :2] / xr[:, 0].std() * 1e-4 if init is None else init - init.mean(0)
            emb = TSNEEmbedding(
                start,
                aff,
                negative_gradient_method=method,
                theta=theta,
                n_jobs=threads,
                random_state=0,
            )
            lr_ee, lr = (max(n / 12.0, 200.0),) * 2 if rates == "sk" else (n / 12.0, float(n))
            # scikit-learn's schedule: `ee_iter` iterations at momentum 0.5 (exaggerated when
            # fresh), the rest at 0.8.
            total, exaggeration = (fresh_iter, 12.0) if init is None else (warm_iter, 1.0)
            emb = emb.optimize(
                ee_iter, exaggeration=exaggeration, momentum=0.5, learning_rate=lr_ee
            )
            if total > ee_iter:
                emb = emb.optimize(total - ee_iter, momentum=0.8, learning_rate=lr)
        points = np.asarray(emb)
        return points if init is None else align(points, init)

    return run


def project_variant():
    """`keras_cnnvis.features.projection.project` as committed (whatever it runs)."""
    from keras_cnnvis.features.projection import project

    def run(x, init=None):
        return project(x, "tsne", init=init).points

    return run


def variants(fft: bool, two_threads: bool, auto_rates: bool) -> dict:
    """name -> (layout function, eligible as the default: one thread)."""
    out = {
        "sklearn today": (sklearn_variant(), True),
        "sklearn 1 BLAS thread": (sklearn_variant(one_blas=True), True),
        "sklearn angle .8": (sklearn_variant(one_blas=True, angle=0.8), True),
        "sklearn 1000/250 it": (sklearn_variant(one_blas=True, warm_iter=250), True),
        "sklearn 500/250 it": (
            sklearn_variant(one_blas=True, fresh_iter=500, warm_iter=250),
            True,
        ),
        "openTSNE bh": (opentsne_variant(), True),
        "openTSNE bh theta .8": (opentsne_variant(theta=0.8), True),
        "openTSNE bh 500/250 it": (opentsne_variant(fresh_iter=500, warm_iter=250), True),
        "project() as committed": (project_variant(), True),
    }
    if two_threads:
        out["sklearn 2 threads"] = (sklearn_variant(one_blas=True, threads=2), False)
        out["openTSNE bh 2 threads"] = (opentsne_variant(threads=2), False)
    if fft:
        out["openTSNE fft"] = (opentsne_variant(method="fft"), True)
    if auto_rates:
        out["openTSNE bh auto rates"] = (opentsne_variant(rates="auto"), True)
    return out


# -- measuring --------------------------------------------------------------------------------
def displacement(points: np.ndarray, previous: np.ndarray) -> float:
    """Mean distance moved from `previous`, over `previous`'s mean distance from its centre."""
    spread = np.linalg.norm(previous - previous.mean(0), axis=1).mean()
    return float(np.linalg.norm(points - previous, axis=1).mean() / spread)


def measure_case(fns: dict, x, inits: dict | None, rounds: int) -> dict:
    """Interleaved timing of every variant on one case; its first layout is scored."""
    layouts: dict = {}

    def timed_call(name):
        def fn():
            points = fns[name](x, None if inits is None else inits[name])
            layouts.setdefault(name, points)

        return fn

    times = _timing.interleaved(
        {name: timed_call(name) for name in fns}, repeats=rounds, warm_up=False
    )
    return {"times": times, "layouts": layouts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="400,1000")
    parser.add_argument("--fft", action="store_true", help="add openTSNE's FFT gradient (slow)")
    parser.add_argument("--two-threads", action="store_true", help="add 2-thread variants")
    parser.add_argument(
        "--auto-rates", action="store_true", help="add openTSNE with its own learning rates"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated variant names to keep (and the baseline)"
    )
    args = parser.parse_args()

    from keras_cnnvis.features.projection import align
    from keras_cnnvis.features.scores import trustworthiness

    start, load_start = time.perf_counter(), _timing.load_average()
    data = {"shapes CNN": demo_features(), "digits": digits_features()}
    print(f"features ready in {time.perf_counter() - start:.1f} s")
    table = variants(args.fft, args.two_threads, args.auto_rates)
    if args.only:
        keep = {"sklearn today", *(name.strip() for name in args.only.split(","))}
        table = {name: entry for name, entry in table.items() if name in keep}
    fns = {name: fn for name, (fn, _) in table.items()}
    base = "sklearn today"
    ratios: dict[str, list[float]] = {name: [] for name in fns}
    modes: list[str] = []
    passed: dict[str, bool] = {name: True for name in fns}
    lines = []
    header = (
        f"| {'case':<22} | {'variant':<24} | {'median s':>8} | {'ratio':>6} | "
        f"{'trust':>6} | {'Δtrust':>7} | {'displ.':>6} | pass |"
    )
    lines += [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    print(header)
    for dataset, (previous, current) in data.items():
        for n in [int(s) for s in args.sizes.split(",")]:
            prev, cur = previous[:n], current[:n]
            fresh = measure_case(fns, cur, None, args.rounds)
            # Each variant warm-starts from its own fresh layout of the previous record.
            inits = {name: fns[name](prev, None) for name in fns}
            warm = measure_case(fns, cur, inits, args.rounds)
            # No warm start: today's fresh layouts of the two records, aligned.
            cold = displacement(align(fresh["layouts"][base], inits[base]), inits[base])
            for mode, result in (("fresh", fresh), ("warm", warm)):
                modes.append(mode)
                case = f"{dataset} {n} {mode}"
                trust = {k: trustworthiness(cur, p) for k, p in result["layouts"].items()}
                moved = (
                    {k: displacement(p, inits[k]) for k, p in result["layouts"].items()}
                    if mode == "warm"
                    else {}
                )
                for name in fns:
                    t = result["times"][name]
                    ratio = _timing.median_ratio(t, result["times"][base])
                    ratios[name].append(ratio)
                    ok = trust[name] >= trust[base] - TOLERANCE_TRUST
                    if mode == "warm":
                        ok &= moved[name] <= moved[base] + TOLERANCE_DISPLACEMENT
                    passed[name] &= ok
                    shown = f"{moved[name]:6.3f}" if mode == "warm" else f"{'-':>6}"
                    line = (
                        f"| {case:<22} | {name:<24} | {np.median(t):8.3f} | {ratio:6.2f} | "
                        f"{trust[name]:6.4f} | {trust[name] - trust[base]:+7.4f} | {shown} | "
                        f"{'yes' if ok else 'NO':>4} |"
                    )
                    lines.append(line)
                    print(line, flush=True)
                if mode == "warm":
                    print(f"  (no warm start: today's fresh layouts moved {cold:.3f})")
    print(
        "\nGeometric mean of the ratios to today's call (all cases; warm starts only, the "
        "callback's steady record):"
    )
    summary = []
    warm_cases = np.array([m == "warm" for m in modes])
    for name in fns:
        logs = np.log(ratios[name])
        gm, gm_warm = float(np.exp(logs.mean())), float(np.exp(logs[warm_cases].mean()))
        summary.append((gm, name, passed[name], table[name][1], gm_warm))
    for gm, name, ok, eligible, gm_warm in sorted(summary):
        tags = ("passes every case" if ok else "fails a case") + (
            "" if eligible else ", 2 threads: information only"
        )
        print(f"  {name:<24} all {gm:6.3f}  warm {gm_warm:6.3f}  ({tags})")
    winners = [s for s in sorted(summary) if s[2] and s[3]]
    if winners:
        print(f"\nFastest one-thread variant that passes every case: {winners[0][1]}")
    info = _timing.machine()
    print(
        f"\nmachine: {info['cpu']}, {info['usable_cores']} usable cores, load average "
        f"{info['load_average']:.2f} (start {load_start:.2f}); scikit-learn "
        f"{info['scikit-learn']}, openTSNE {_timing._version('openTSNE')}, numpy {info['numpy']}; "
        f"{args.rounds} rounds; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
