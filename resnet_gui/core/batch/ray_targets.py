"""The named values of ``batch --ray``, kept free of Ray and torch so the CLI's parser can list them."""

from __future__ import annotations

__all__ = ["DEFAULT_RAY_TARGET", "RAY_TARGETS"]

#: The named values of ``--ray`` (anything else is a cluster address such as ``10.0.0.5:6379``).
RAY_TARGETS: dict[str, str] = {
    "local": "start a private Ray on this machine for this run (all its cores), stopped at the end",
    "auto": "join the cluster this machine is part of (RAY_ADDRESS, or the one `ray start` started here)",
}
DEFAULT_RAY_TARGET = "local"  # what a bare ``--ray`` means: works for a user without a cluster
