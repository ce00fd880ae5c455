"""Shared test configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` runs more examples; the default keeps the suite fast. Deadlines
are off because storage calls (fsync) vary too much in time to be a property.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
