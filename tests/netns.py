"""Several hosts on one machine for tests: see :mod:`mobility_twin.deploy.netns` (moved there so that the chaos
benchmark uses the same hosts); the tests keep importing it from here."""

from mobility_twin.deploy.netns import Hosts, _ip, netns_unavailable

__all__ = ["Hosts", "_ip", "netns_unavailable"]
