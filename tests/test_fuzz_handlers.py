"""Every field of every command over every input domain, signed and not, through the daemon's own handlers.

hypothesis takes a good request of a command, swaps up to three of its fields (or the signature,
or the whole payload) for values from tests/fuzz_domains.py, and hands it to the intake of an
in-process Daemon on a real SQLite file (tests/fuzz_station.py), as MQTT would or as the control
socket would. For each request: exactly one answer, never an exception; the answer is JSON that
MQTT can carry; an error has a contract code the request may get (tests/fuzz_contract.py); and
a refused request, or any request that only reads, leaves the database as it was. Each example
starts from the same seeded database, so a failure shrinks to its minimal request.

Each test takes its share of ``KARTUD_FUZZ_EXAMPLES`` (see tests/fuzz_domains.py); the long run is
``KARTUD_FUZZ_EXAMPLES=100000 ./scripts/test tests/test_fuzz.py tests/test_fuzz_handlers.py``.
"""

from __future__ import annotations

import pytest
from fuzz_contract import COMMANDS, Facts
from fuzz_domains import TIMEOUT_S, share, shrinking_for_at_most
from fuzz_jobs import SEEDED_JOBS
from fuzz_requests import check_answer, requests
from fuzz_station import MAX_PAYLOAD, ROOT, START, Station, wire_bytes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(TIMEOUT_S)
MODES = ("off", "optional", "required")
NOW = START.timestamp()
READ_ONLY = {name for name, spec in COMMANDS.items() if not spec.changes}


def fuzz_settings(fraction: float):
    return settings(max_examples=share(fraction), deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


@pytest.fixture
def stations(tmp_path):
    made = {mode: Station(tmp_path / mode, mode) for mode in MODES}
    with shrinking_for_at_most(25):
        yield made
    for station in made.values():
        station.close()


def facts_of(station: Station) -> Facts:
    stock = {card_type: row[3] for row in station.state()["blank_stock"] for card_type in [row[0]]}
    return Facts(now=NOW, stock=stock, max_payload=MAX_PAYLOAD)


def one_round(station: Station, mode: str, batch: list, via: str = "mqtt") -> list:
    """Send ``batch`` (requests) to a fresh copy of the seeded station and check every promise; returns the answers."""
    station.reset()
    facts, before = facts_of(station), station.state()
    tags = ["" if i == 0 else f"{i}:" for i in range(len(batch))]   # one request_id per request of a batch
    payloads = [r.payload(f"{ROOT}/request/{r.command}", tag) for r, tag in zip(batch, tags)]
    answers = station.ask([(r.command, p) for r, p in zip(batch, payloads)], via=via)
    assert isinstance(answers, list) and len(answers) == len(batch), f"{len(batch)} requests, answers: {answers!r}"
    for request, payload, tag, answer in zip(batch, payloads, tags, answers):
        check_answer(request, request.expect(mode, facts, len(payload), tag), answer, tag)
        wire_bytes(answer)
        event(f"{request.command}: {answer['status'] if answer['status'] == 'ok' else answer['error']['code']}")
    after = station.state()
    if all(a["status"] == "error" for a in answers) or all(r.command in READ_ONLY for r in batch):
        assert after == before, "a refused (or read-only) request changed the database: " + ", ".join(
            name for name in before if before[name] != after[name])
    return answers


def _signing(stations, data):
    mode = data.draw(st.sampled_from(MODES), label="security.signing")
    return stations[mode], mode


def run_family(stations, commands: list[str], fraction: float, via: str = "mqtt") -> None:
    @fuzz_settings(fraction)
    @given(data=st.data())
    def family(data):
        station, mode = _signing(stations, data) if via == "mqtt" else (stations["off"], "off")
        command = data.draw(st.sampled_from(commands), label="command")
        one_round(station, mode, [data.draw(requests(command, mode, lambda: NOW), label="request")], via)

    family()


def test_job_submit_any_field_any_value(stations):
    @fuzz_settings(0.2)
    @given(data=st.data())
    def submit(data):
        station, mode = _signing(stations, data)
        batch = data.draw(st.lists(requests("job/submit", mode, lambda: NOW), min_size=1, max_size=3),
                          label="group of submissions")
        answers = one_round(station, mode, batch)
        queued = sum(1 for a in answers if a["status"] == "ok" and not a["data"].get("resubmitted"))
        assert len(station.state()["jobs"]) == len(SEEDED_JOBS) + queued, "jobs other than the accepted ones were added"

    submit()


def test_job_get_list_cancel_resolve_any_field_any_value(stations):
    run_family(stations, ["job/get", "job/list", "job/cancel", "job/resolve"], 0.1)


def test_blanks_receive_and_adjust_any_field_any_value(stations):
    run_family(stations, ["blanks/receive", "blanks/adjust"], 0.08)


def test_queue_maintenance_status_and_report_any_field_any_value(stations):
    run_family(stations, ["queue/pause", "queue/resume", "maintenance/cleaned", "status/get", "report/daily"], 0.08)


def test_every_command_over_the_control_socket_path(stations):
    run_family(stations, [*COMMANDS, "job/submit", "no/such/command"], 0.04, via="control")
