"""Fixtures for tests that need real local hosts (systemd-nspawn on bridge llmstt).

`test_hosts_factory` (session scope) comes from infra.local.testing, where it is documented:
call it with host names to get running hosts reachable over SSH, e.g.

    a, b = test_hosts_factory(["test-a", "test-b"])
    a.check("systemctl is-active ssh")

Test directories outside tests/local can use it by importing it into their own conftest.py.
"""

from infra.local.testing import test_hosts_factory  # noqa: F401  (pytest fixture)
