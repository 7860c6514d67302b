"""The trace plot draws both half-steps and the KL gap."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from emkit import GaussianMixture  # noqa: E402

from ._helpers import blobs  # noqa: E402


def test_trace_plot_draws_staircase_and_kl(tmp_path):
    X, _ = blobs(n=200, d=2, k=3, seed=0)
    gm = GaussianMixture(3, init_params="random", random_state=0, tol=1e-6).fit(X)
    ax = gm.trace_.plot()
    staircase = ax.lines[0]
    np.testing.assert_allclose(staircase.get_ydata(), gm.trace_.elbo)
    assert len(ax.figure.axes) == 2  # the KL axis
    ax.figure.savefig(tmp_path / "trace.png")
    assert (tmp_path / "trace.png").stat().st_size > 0
