"""A box-local mosquitto bridged to the office's (the shipped etc/mosquitto/kartud-box.conf) across a link that drops."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from print_room import ROOT, STATION, Room, chip_sha
from tcp_proxy import TcpProxy
from tls_fixtures import REPO, secure_broker

from kartud.room.office import OfficeClient
from kartud.room.sim_room import PrivateBroker

# 9-25 s each (reset, black hole) on this project's loaded machine; the margin is for load averages of 40 seen there.
pytestmark = pytest.mark.timeout(120)

# The shipped bridge's timings, shortened so that a dead link is noticed and mended within seconds.
FAST_LINK = {"keepalive_interval 30": "keepalive_interval 2", "restart_timeout 5 60": "restart_timeout 1"}


def box_broker(directory: Path, office_port: int, ca) -> PrivateBroker:
    """A mosquitto running the shipped box config, bridged (with the box's certificate) to ``office_port``."""
    broker = PrivateBroker(str(directory))
    cert, key = ca.issue(STATION)                       # the box's CN is its station id, as the office's ACL wants
    text = (REPO / "etc" / "mosquitto" / "kartud-box.conf").read_text()
    replacements = {"kota-probolinggo-01": STATION, "listener 1883 127.0.0.1": f"listener {broker.port} 127.0.0.1",
                    "office.dukcapil.example:8883": f"127.0.0.1:{office_port}",
                    "/etc/mosquitto/certs/ca.crt": str(ca.ca_file), "/etc/mosquitto/certs/box.crt": cert,
                    "/etc/mosquitto/certs/box.key": key, "/var/lib/mosquitto/": f"{directory}/", **FAST_LINK}
    for old, new in replacements.items():
        assert old in text, f"the shipped box config no longer has {old!r}; update this test"
        text = text.replace(old, new)
    extra = "user root\n" if os.geteuid() == 0 else ""
    Path(broker.conf).write_text(text + f"\nlog_dest file {directory}/mosquitto.log\n" + extra)
    return broker.start()


@pytest.fixture
def bridged_room(tmp_path, ca):
    """The office broker (shipped TLS + ACL config), a TCP proxy the test cuts, the box broker bridged through
    it, and a daemon on the box broker with an office client at the office broker."""
    office_broker = secure_broker(tmp_path / "office-broker", ca)
    proxy = TcpProxy(office_broker.port)
    box = box_broker(tmp_path / "box-broker", proxy.port, ca)
    room = Room(tmp_path / "room", box)
    os.makedirs(room.dir)
    # Printing takes a while (0.6 s a card) so that cards queued before a cut are still printing during it.
    room.overrides.update({"printer.sim.seconds_per_card": "60.0"})
    tls = (str(ca.ca_file), *ca.issue("office"))
    room.office = OfficeClient("127.0.0.1", office_broker.port, ROOT, tls=tls)
    try:
        room.office.wait_link("1", timeout=20)
        yield room, proxy, lambda: OfficeClient("127.0.0.1", office_broker.port, ROOT, tls=tls)
    finally:
        room.close()
        box.stop()
        proxy.close()
        office_broker.stop()


def ask(room: Room, command: str, payload: dict, request_id: str, **kwargs) -> dict:
    """A request answered across the bridge: MQTT 3.1.1 drops the Correlation Data, so request_id matches it."""
    return room.office.request(command, {**payload, "request_id": request_id}, timeout=30, **kwargs)


def wait_cards(room: Room, count: int, timeout: float = 30.0) -> list[dict]:
    """Wait until ``count`` cards have physically left the box's printer (its own file, read every 20 ms)."""
    deadline = time.monotonic() + timeout
    while len(cards := room.cards()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(cards)} cards left the printer, not {count}, within {timeout} s")
        time.sleep(0.02)
    return cards


@pytest.mark.parametrize("silent", [False, True], ids=["reset", "black-hole"])
def test_the_box_prints_through_a_cut_link_and_the_office_hears_everything_after(bridged_room, silent):
    room, proxy, newcomer = bridged_room
    room.start()                                        # "online" reached the office through the bridge
    assert ask(room, "blanks/receive", {"batch_id": "B-1", "card_type": "KTP_EL", "count": 20}, "r-blanks")[
        "data"]["in_stock"] == 20
    before = [room.job() for _ in range(4)]
    for n, job in enumerate(before):
        assert ask(room, "job/submit", job, f"r-before-{n}")["data"]["state"] == "queued"
    carried = proxy.bytes_carried

    proxy.cut(silent=silent)
    if silent:
        room.office.wait_link("0", timeout=20)          # the bridge's Last Will, set at the office broker
    during = [room.job() for _ in range(3)]
    sent = [room.office.send("job/submit", {**job, "request_id": f"r-during-{n}"}) for n, job in enumerate(during)]
    # The box goes on printing what it had queued, while the office hears nothing of it.
    cards_during = wait_cards(room, len(before))
    while not room.office.events.empty():
        room.seen.append(room.office.events.get())
    heard = {e["job"]["job_id"] for e in room.seen if e["job"]["state"] == "printed"}
    assert before[-1]["job_id"] not in heard and room.office.state["today"]["printed"] < len(before)
    # The jobs sent meanwhile wait in the office broker (the bridge's persistent session): the box has none.
    marks = ",".join("?" * len(during))
    assert room.query(f"SELECT count(*) FROM jobs WHERE job_id IN ({marks})", *[j["job_id"] for j in during]) == [(0,)]

    proxy.restore()
    room.office.wait_link("1", timeout=30)
    answers = [room.office.wait_answer(correlation, timeout=30) for correlation in sent]
    assert [a["status"] for a in answers] == ["ok"] * len(during)
    assert not any(a["data"].get("resubmitted") for a in answers)        # each request was acted on once
    for job in before + during:
        room.wait_state(job["job_id"], "printed", timeout=30)

    # Nothing lost, nothing twice: one physical card per record, with that record's chip.
    cards = wait_cards(room, len(before) + len(during))
    assert len(cards_during) >= len(before) and proxy.bytes_carried > carried
    assert sorted(c["chip_files_sha256"] for c in cards) == sorted(chip_sha(j) for j in before + during)
    assert all(c["destination"] == "output" for c in cards)
    # Every job event the box published during the cut reached the office, in order per job.
    for job in before + during:
        states = [e["job"]["state"] for e in room.seen if e["job"]["job_id"] == job["job_id"]]
        assert states[-1] == "printed" and "printing" in states
    # And the office broker's retained state, as a newcomer gets it, is the box's last word.
    room.office.wait_state(lambda s: s["today"]["printed"] == len(before) + len(during))
    with newcomer() as office:
        office.wait_availability("online")
        office.wait_link("1")
        state = office.wait_state(lambda s: s["queue"] == {"queued": 0, "in_doubt": 0})
    assert state["today"]["printed"] == len(before) + len(during)
