"""The tests' fixtures, registered once for every test file: no test imports a fixture by hand.

Shared helpers that are not fixtures live in ordinary modules imported by name: ``print_room`` (the
simulated print room, ``STATION``, ``ROOT``, ``chip_sha``) and ``card_faces`` (card faces).
"""

pytest_plugins = [
    "room_fixtures",       # broker, room, notify_socket
    "clock_fixtures",      # manual_clock
    "printer_fixtures",    # serial_room
    "pcsc_fixtures",       # pcscd_session, pcscd, pcsc_room
    "control_fixtures",    # served
    "tls_fixtures",        # ca, tls_broker
]
