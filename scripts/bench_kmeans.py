"""The scikit-learn / numpy side of scripts/bench_kmeans.sh.

`generate DIR ROWS DIMS K SEED`: writes DIR/x.f64, row-major little-endian f64: K Gaussian
clusters whose centres are about one noise standard deviation apart, so they overlap and Lloyd is
still moving rows after 20 iterations.

`compare DIR ROWS DIMS K`: trains scikit-learn KMeans(algorithm="lloyd", n_init=1, max_iter=20,
tol=0, init=<the first K rows>) on the same file, checks netsentinel's centroids
(DIR/centroids.f64) against it, times scikit-learn scoring the rows the way ML.DETECT_ANOMALIES
does, and prints key=value lines.
"""

import sys
import time

import numpy as np


def generate(directory, rows, dims, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.6, size=(k, dims))
    labels = rng.integers(0, k, size=rows)
    x = centres[labels] + rng.normal(0.0, 1.0, size=(rows, dims))
    x.astype("<f8").tofile(f"{directory}/x.f64")


def compare(directory, rows, dims, k):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    x = np.fromfile(f"{directory}/x.f64", dtype="<f8").reshape(rows, dims)
    init = x[:k].copy()

    km = KMeans(n_clusters=k, algorithm="lloyd", n_init=1, max_iter=20, tol=0.0, init=init)
    km.fit(x[:1000])  # warm up imports and thread pools outside the timing
    km = KMeans(n_clusters=k, algorithm="lloyd", n_init=1, max_iter=20, tol=0.0, init=init)
    started = time.perf_counter()
    km.fit(x)
    fit_s = time.perf_counter() - started
    print(f"sklearn_train_seconds={fit_s:.4f}")
    print(f"sklearn_train_iterations={km.n_iter_}")
    print(f"sklearn_loss={km.inertia_ / rows}")

    ours = np.fromfile(f"{directory}/centroids.f64", dtype="<f8").reshape(k, dims)
    rel = np.abs(ours - km.cluster_centers_) / np.maximum(np.abs(km.cluster_centers_), 1e-300)
    print(f"max_centroid_rel_diff={rel.max():.3e}")

    # ML.DETECT_ANOMALIES in numpy: distance to every centroid (scikit-learn's transform), divided
    # by the cluster radius (RMS distance of the cluster's training rows), min and argmin.
    labels = km.labels_
    d_own = np.sqrt(((x - km.cluster_centers_[labels]) ** 2).sum(axis=1))
    radii = np.sqrt(np.bincount(labels, weights=d_own**2, minlength=k) / np.bincount(labels, minlength=k))
    training = (km.transform(x) / radii).min(axis=1)
    threshold = np.quantile(training, 0.99, method="inverted_cdf")
    started = time.perf_counter()
    normalized = km.transform(x) / radii
    nearest = normalized.argmin(axis=1)
    distance = normalized[np.arange(rows), nearest]
    anomalies = int((distance > threshold).sum())
    score_s = time.perf_counter() - started
    print(f"sklearn_score_seconds={score_s:.4f}")
    print(f"sklearn_score_anomalies={anomalies}")
    blas = [(i.get("internal_api"), i.get("num_threads"), i.get("architecture")) for i in threadpool_info()]
    print(f"sklearn_threadpools={blas}")


if __name__ == "__main__":
    command, directory, *numbers = sys.argv[1:]
    if command == "generate":
        generate(directory, *map(int, numbers))
    else:
        compare(directory, *map(int, numbers))
