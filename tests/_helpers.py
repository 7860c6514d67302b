"""Small data generators and plain reference computations shared by the tests (no expected
values live here)."""

import numpy as np
from scipy.special import logsumexp


def blobs(n=300, d=3, k=3, sep=5.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=sep, size=(k, d))
    labels = rng.integers(k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.3 + np.eye(d)
    X = centers[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))
    return X.astype(dtype), labels


def random_params(k, d, covariance_type, seed=0, scale=1.0):
    """Random valid Gaussian-mixture parameters as sklearn init arrays."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(k) * 2)
    means = rng.normal(scale=scale, size=(k, d))
    if covariance_type == "full":
        A = rng.normal(size=(k, d, d)) * 0.4
        prec = np.einsum("kij,klj->kil", A, A) + np.eye(d)
    elif covariance_type == "tied":
        A = rng.normal(size=(d, d)) * 0.4
        prec = A @ A.T + np.eye(d)
    elif covariance_type == "diag":
        prec = rng.uniform(0.5, 2.0, size=(k, d))
    else:
        prec = rng.uniform(0.5, 2.0, size=k)
    return w, means, prec


def plain_forward_backward(L, pi, A):
    """Forward-backward of one sequence written plainly in log space: ``log p(x)``, the state
    posteriors (T x K) and the expected transition counts (K x K)."""
    t_all, k = L.shape
    la, lb = np.zeros((t_all, k)), np.zeros((t_all, k))
    la[0] = np.log(pi) + L[0]
    for t in range(1, t_all):
        la[t] = logsumexp(la[t - 1][:, None] + np.log(A), axis=0) + L[t]
    for t in range(t_all - 2, -1, -1):
        lb[t] = logsumexp(np.log(A) + L[t + 1] + lb[t + 1], axis=1)
    ll = logsumexp(la[-1])
    gamma = np.exp(la + lb - ll)
    xi = np.zeros((k, k))
    for t in range(t_all - 1):
        xi += np.exp(la[t][:, None] + np.log(A) + L[t + 1] + lb[t + 1] - ll)
    return ll, gamma, xi


def canonical_rows(X):
    """The rows of ``X`` in the canonical order of emkit's initialisation (copies of a row
    next to each other): a permutation of ``X``. scikit-learn fitted on it with a
    ``random_state`` is the reference for emkit fitted on ``X`` with it (where no row
    repeats; emkit's initialisation sees a repeated row once, with its count as weight)."""
    from emkit._empirical import empirical_rows

    Xu, counts = empirical_rows(np.asarray(X), None, max_rows=X.shape[0], salt=0)
    return np.repeat(Xu, counts.astype(int), axis=0)
