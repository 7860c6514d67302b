"""Test configuration.

``SCIPY_ARRAY_API=1`` must be set before SciPy is imported for scikit-learn's
``check_array_api_input`` to run instead of being skipped.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
