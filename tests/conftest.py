"""The tests' fixtures, registered once for every test file: no test imports a fixture by hand.

Shared helpers that are not fixtures live in ordinary modules imported by name: ``print_room`` (the
simulated print room, ``STATION``, ``ROOT``, ``chip_sha``), ``card_faces`` (card faces), ``sample_jobs``
(jobs for the store), ``job_payloads`` (payloads for validation), ``store_checks`` (the store's promises checked
from outside) and ``config_files`` (config files and what is said of them).
"""

import pytest

# Helpers whose asserts should report like a test's own (pytest rewrites the plugins below by itself).
pytest.register_assert_rewrite("store_checks", "config_files", "job_payloads")

pytest_plugins = [
    "room_fixtures",       # broker, room, notify_socket
    "clock_fixtures",      # manual_clock
    "store_fixtures",      # store
    "printer_fixtures",    # serial_room
    "pcsc_fixtures",       # pcscd_session, pcscd, pcsc_room
    "control_fixtures",    # served
    "tls_fixtures",        # ca, tls_broker
    "power_cut_fixtures",  # power_cut_disk, power_cut_room
]
