#!/usr/bin/env python3
"""Independent reference for the local k-means (crates/duckdb/tests/engine/bqml_conformance.rs).

Generates a seeded data set (numeric columns with NULLs, a categorical column with a NULL
category, a CUSTOM-init seed column), preprocesses it the way BQML_KMEANS.md documents (numeric
NULL -> mean of the non-NULL values, z-score with the sample stddev, one-hot categories with NULL
as a category) using numpy, and fits it with scikit-learn's KMeans and a numpy cosine Lloyd.
Writes one JSON document to the path given as the only argument.

Requires numpy and scikit-learn (scripts/requirements-test.txt).
"""

import json
import sys

import numpy as np
from sklearn.cluster import KMeans

SEED = 20261123
ROWS = 3000
K = 4
MAX_ITER = 100


def make_data(rng):
    centers = np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4], [4, 0, 4]], dtype=float)
    blob = rng.integers(0, K, ROWS)
    blob[:K] = np.arange(K)  # the first row of each blob is its CUSTOM seed
    numeric = centers[blob] + rng.normal(0.0, 1.3, (ROWS, 3))
    numeric[:, 2] *= 100.0  # a feature on another scale: standardization must matter
    kinds = np.array(["tcp", "udp", "icmp"])
    kind = kinds[(blob + (rng.random(ROWS) < 0.2)) % 3].astype(object)
    nulls_a = rng.random(ROWS) < 0.03
    nulls_a[:K] = False
    kind_null = rng.random(ROWS) < 0.02
    kind_null[:K] = False
    kind[kind_null] = None
    seed = np.zeros(ROWS, dtype=bool)
    seed[:K] = True
    rows = []
    for i in range(ROWS):
        a = None if nulls_a[i] else float(numeric[i, 0])
        rows.append([a, float(numeric[i, 1]), float(numeric[i, 2]), kind[i], bool(seed[i])])
    return rows


def preprocess(rows):
    """Returns (matrix, dimension names) as BQML_KMEANS.md specifies."""
    numeric = np.array([[np.nan if r[j] is None else r[j] for j in range(3)] for r in rows])
    mean = np.nanmean(numeric, axis=0)
    std = np.nanstd(numeric, axis=0, ddof=1)
    filled = np.where(np.isnan(numeric), mean, numeric)
    scaled = (filled - mean) / std
    categories = sorted({r[3] for r in rows}, key=lambda c: (c is not None, c or ""))
    onehot = np.array([[1.0 if r[3] == c else 0.0 for c in categories] for r in rows])
    names = ["a", "b", "c"] + [f"kind={c}" for c in categories]
    return np.hstack([scaled, onehot]), names, categories


def cosine_lloyd(x, init, max_iter):
    centroids = init.copy()
    labels = None
    for _ in range(max_iter):
        xn = np.linalg.norm(x, axis=1)
        cn = np.linalg.norm(centroids, axis=1)
        distance = 1.0 - (x @ centroids.T) / np.outer(xn, cn)
        new_labels = distance.argmin(axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        centroids = np.array([x[labels == c].mean(axis=0) for c in range(len(centroids))])
    return centroids


def main():
    rng = np.random.default_rng(SEED)
    rows = make_data(rng)
    x, names, categories = preprocess(rows)
    seeds = [i for i, r in enumerate(rows) if r[4]]

    custom = KMeans(K, init=x[seeds], n_init=1, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd").fit(x)
    random_best = KMeans(K, init="random", n_init=10, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd", random_state=SEED).fit(x)
    plus_best = KMeans(K, init="k-means++", n_init=10, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd", random_state=SEED).fit(x)

    json.dump(
        {
            "columns": ["a", "b", "c", "kind", "seed"],
            "rows": rows,
            "dimensions": names,
            "categories": categories,
            "max_iterations": MAX_ITER,
            "custom_centroids": custom.cluster_centers_.tolist(),
            "custom_iterations": int(custom.n_iter_),
            "random_inertia": float(random_best.inertia_),
            "kmeans_plus_plus_inertia": float(plus_best.inertia_),
            "cosine_centroids": cosine_lloyd(x, x[seeds], MAX_ITER).tolist(),
        },
        open(sys.argv[1], "w"),
    )


if __name__ == "__main__":
    main()
