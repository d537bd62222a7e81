"""Any broker: mqtt.protocol = auto | 5 | 3.1.1 against a real 3.1.1-only broker (amqtt) and a real mosquitto."""

from __future__ import annotations

import pytest
from amqtt_broker import AmqttBroker, VersionRefuser
from office_v311 import Office311
from print_room import ROOT, STATION, Room
from test_office_link import link_of

from kartud.service.broker_protocol import MQTT5, MQTT311, UNSUPPORTED_VERSION, ProtocolChoice

pytestmark = pytest.mark.timeout(90)

SILENT = "does not speak MQTT 5: the broker left 2 MQTT 5 connections in a row unanswered"


@pytest.fixture
def amqtt(tmp_path):
    broker = AmqttBroker(str(tmp_path / "amqtt")).start()
    yield broker
    broker.stop()


def room_on(tmp_path, broker, protocol: str, name: str = "room") -> Room:
    room = Room(tmp_path / name, broker)
    room.overrides.update({"mqtt.protocol": f'"{protocol}"', "mqtt.connack_timeout_s": "1.0",
                           "mqtt.username": '"kartud"'})     # amqtt keeps the sessions of named clients only
    return room


def start_311(room: Room) -> Room:
    """Start the daemon with an MQTT 3.1.1 office watching, and wait for its ``online``."""
    room.office = room.office or Office311("127.0.0.1", room.broker.port, ROOT)
    with room.office.state_changed:
        room.office.availability = None
    room.start(wait_online=False)
    room.office.wait_availability("online", timeout=30)
    return room


def submit_cut_by_a_kill(room: Room) -> tuple[dict, str]:
    """Start the box over 3.1.1 with blanks, send a job that kills it while it handles the request (SIGKILL,
    before any answer) and return the job and its ``request_id``; the next start runs without the crash."""
    room.env["KARTUD_CRASH_AT"] = "while_handling@job/submit"
    start_311(room)
    room.receive_blanks(10)
    job = room.job()
    request_id = room.office.send("job/submit", job)
    assert room.process.wait(20) == -9
    room.env.pop("KARTUD_CRASH_AT")
    return job, request_id


def retry_prints_once(room: Room, job: dict, request_id: str) -> None:
    """The office sends ``job`` again with the same ``request_id``: it is taken, and one card leaves, to the output."""
    room.office.send("job/submit", job, request_id=request_id)
    assert room.office.wait_answer(request_id, timeout=20)["data"]["job_id"] == job["job_id"]
    room.wait_state(job["job_id"], "printed", timeout=30)
    assert [c["destination"] for c in room.cards()] == ["output"]


def test_auto_falls_back_when_a_311_broker_stays_silent_and_prints(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        start_311(room)
        log = room.log()
        assert SILENT + ", 1 s each; trying MQTT 3.1.1" in log
        assert (f"speaking MQTT 3.1.1 to the broker at 127.0.0.1:{amqtt.port} (mqtt.protocol = auto: the broker left "
                "2 MQTT 5 connections in a row unanswered, 1 s each); kept until kartud restarts" in log)
        assert room.receive_blanks(10)["status"] == "ok"
        job = room.job()
        answer = room.submit(job)
        assert answer["status"] == "ok" and answer["data"]["state"] == "queued"
        room.wait_state(job["job_id"], "printed", timeout=30)
        assert [c["destination"] for c in room.cards()] == ["output"]
        state = room.office.wait_state(lambda s: s["today"]["printed"] == 1)
        link = state["office_link"]
        assert link["connected"] is True and link["protocol"] == "3.1.1"
        assert link["protocol_reason"].startswith("mqtt.protocol = auto: the broker left 2 MQTT 5 connections")
    finally:
        room.close()


def test_auto_falls_back_at_once_when_the_broker_refuses_mqtt5(tmp_path, amqtt):
    refuser = VersionRefuser(amqtt.port)           # what amqtt itself answers an MQTT 5 CONNECT it can parse
    room = room_on(tmp_path, amqtt, "auto")
    room.overrides["mqtt.port"] = str(refuser.port)
    try:
        start_311(room)
        assert room.log().count(f"the broker at 127.0.0.1:{refuser.port} does not speak MQTT 5: the broker refused "
                                "MQTT 5 (unsupported protocol version); trying MQTT 3.1.1") == 1
        assert "unanswered" not in room.log()       # one refusal is proof enough
        answer = room.office.request("status/get", {})
        assert answer["status"] == "ok" and answer["data"]["office_link"]["protocol"] == "3.1.1"
        assert "refused MQTT 5" in answer["data"]["office_link"]["protocol_reason"]
    finally:
        room.close()
        refuser.close()


def test_protocol_5_against_a_311_broker_says_why_it_never_connects(tmp_path, amqtt):
    refuser = VersionRefuser(amqtt.port)
    silent, refusing = room_on(tmp_path, amqtt, "5", "silent"), room_on(tmp_path, amqtt, "5", "refusing")
    refusing.overrides["mqtt.port"] = str(refuser.port)
    try:
        for room in (silent, refusing):
            room.start(wait_online=False)
        silent.wait_log(f"the office link is down: no answer to our MQTT 5 connection from 127.0.0.1:{amqtt.port} "
                        'within 1 s; a broker that speaks only MQTT 3.1.1 does this: set mqtt.protocol = "auto" or '
                        '"3.1.1"')
        refusing.wait_log(f"the office link is down: the broker does not speak this MQTT version (the broker at "
                          f'127.0.0.1:{refuser.port}); we spoke MQTT 5: set mqtt.protocol = "auto" or "3.1.1"')
        assert refuser.refused >= 1
        for room in (silent, refusing):
            link = link_of(room)
            assert link["connected"] is False and link["protocol"] == "5"
            assert link["protocol_reason"] == "mqtt.protocol = 5" and "MQTT 5" in link["last_error"]
            assert "MQTT 3.1.1" not in room.log().replace("only MQTT 3.1.1", "")     # never tried
            assert room.process.poll() is None
    finally:
        silent.close()
        refusing.close()
        refuser.close()


def test_on_a_311_broker_the_will_the_retained_state_and_a_request_sent_while_away(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        start_311(room)
        room.receive_blanks(10)
        newcomer = Office311("127.0.0.1", amqtt.port, ROOT, username="newcomer")     # the retained state at once
        try:
            newcomer.wait_availability("online")
            assert newcomer.wait_state(lambda s: s["blanks"]["KTP_EL"]["in_stock"] == 10)["station"] == STATION
        finally:
            newcomer.close()

        room.kill()                                                       # the Last Will
        room.office.wait_availability("offline", timeout=20)
        job = room.job()
        request_id = room.office.send("job/submit", job)                  # kept in the box's session meanwhile
        start_311(room)
        # amqtt hands over what it kept with RETAIN set (3.1.1 says 0 for an established subscription), so the
        # box cannot tell it from a retained command and acts on neither; the office's retry is acted on.
        answer = room.office.wait_answer(request_id, timeout=20)
        assert (answer["status"], answer["error"]["code"]) == ("error", "retained_request")
        assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]
        retry_prints_once(room, job, request_id)
    finally:
        room.close()


def test_amqtt_drops_a_request_cut_by_a_kill_and_a_retry_prints_it_once(tmp_path, amqtt):
    """amqtt forgets a QoS 1 message it sent and never saw acknowledged (docs/mqtt.md): the office's retry with the
    same request_id is what delivers it, and it is acted on once."""
    room = room_on(tmp_path, amqtt, "auto")
    try:
        job, request_id = submit_cut_by_a_kill(room)
        start_311(room)
        assert room.office.request("status/get", {})["status"] == "ok"     # requests flow again, in order ...
        assert not room.office.answered(request_id)                         # ... and the cut one is gone
        assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]
        retry_prints_once(room, job, request_id)                            # the office retries, as it must
    finally:
        room.close()


def test_over_311_on_mosquitto_a_request_cut_by_a_kill_is_redelivered(tmp_path, broker):
    room = room_on(tmp_path, broker, "3.1.1")
    try:
        job, request_id = submit_cut_by_a_kill(room)
        assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]         # only the broker's session has it
        start_311(room)
        answer = room.office.wait_answer(request_id, timeout=20)
        assert answer["status"] == "ok" and answer["data"]["job_id"] == job["job_id"]
        room.wait_state(job["job_id"], "printed", timeout=30)
        assert [c["destination"] for c in room.cards()] == ["output"]
        assert "over MQTT 3.1.1 (session resumed)" in room.log() and "MQTT 5" not in room.log()
    finally:
        room.close()


def test_auto_on_mosquitto_speaks_mqtt5_and_311_works_there_too(tmp_path, broker):
    room = room_on(tmp_path, broker, "auto")
    try:
        room.start()
        assert (f"speaking MQTT 5 to the broker at 127.0.0.1:{broker.port} (mqtt.protocol = auto: the broker "
                "accepted MQTT 5)") in room.log()
        link = room.office.request("status/get", {})["data"]["office_link"]
        assert (link["protocol"], link["protocol_reason"]) == ("5", "mqtt.protocol = auto: the broker accepted MQTT 5")
    finally:
        room.close()

    room = room_on(tmp_path, broker, "3.1.1", "room-311")
    try:
        start_311(room)
        assert "over MQTT 3.1.1" in room.log() and "MQTT 5" not in room.log()
        room.receive_blanks(10)
        job = room.job()
        assert room.submit(job)["data"]["state"] == "queued"
        room.wait_state(job["job_id"], "printed", timeout=30)
        assert [c["destination"] for c in room.cards()] == ["output"]
        room.kill()
        room.office.wait_availability("offline", timeout=20)                # the Last Will over 3.1.1
    finally:
        room.close()


def test_what_the_box_says_before_its_first_connection_reaches_a_311_office(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        room.env["KARTUD_CRASH_AT"] = "after_feed"             # a card on its way when the box dies
        start_311(room)
        room.receive_blanks(10)
        job = room.job()
        room.submit(job)
        assert room.process.wait(20) == -9
        room.env.pop("KARTUD_CRASH_AT")
        start_311(room)
        event = room.wait_state(job["job_id"], "in_doubt")          # decided at start-up, before any broker said yes
        assert event["job"]["reason"] == "interrupted"
        log = room.log()
        assert log.rindex(f"job {job['job_id']} was mid-card when kartud stopped") < log.rindex("speaking MQTT 3.1.1")
    finally:
        room.close()


def test_the_choice_in_words():
    choice = ProtocolChoice("auto", "b:1883", 10.0)
    assert (choice.unanswered(), choice.current) == (False, MQTT5)      # once: the network, perhaps
    choice.answered()                                                   # a CONNACK came after all
    assert (choice.unanswered(), choice.unanswered(), choice.current) == (False, True, MQTT311)
    assert choice.status() == {"protocol": "3.1.1", "protocol_reason": "mqtt.protocol = auto: the broker left 2 MQTT "
                                                                        "5 connections in a row unanswered, 10 s each"}
    settled = ProtocolChoice("auto", "b:1883", 10.0)
    settled.worked()                                                    # MQTT 5 worked: kept, whatever comes later
    assert not settled.refused(UNSUPPORTED_VERSION) and not settled.unanswered() and not settled.unanswered()
    assert settled.refusal_hint().endswith('restart kartud to let mqtt.protocol = "auto" choose again')
    assert settled.unanswered_words().endswith('restart kartud to let mqtt.protocol = "auto" choose again')
    for fixed in ("5", "3.1.1"):
        choice = ProtocolChoice(fixed, "b:1883", 10.0)
        assert not choice.refused(UNSUPPORTED_VERSION) and not choice.unanswered() and not choice.unanswered()
        assert choice.status() == {"protocol": fixed, "protocol_reason": f"mqtt.protocol = {fixed}"}
    assert ProtocolChoice("5", "b:1883", 2.5).unanswered_words().startswith(
        "no answer to our MQTT 5 connection from b:1883 within 2.5 s; a broker that speaks only MQTT 3.1.1")
    assert not ProtocolChoice("auto", "b:1883", 10.0).refused(0x87)    # not authorised is no reason to change


def test_a_box_stopped_while_choosing_or_after_stops_cleanly(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        room.start(wait_online=False)
        room.wait_log("the office link is down: no answer to our MQTT 5 connection")     # between the two tries
        assert room.stop() == 0
        start_311(room)
        assert room.stop() == 0
        room.office.wait_availability("offline")                 # said by the box itself over 3.1.1, retained
        assert "Traceback" not in room.log()
    finally:
        room.close()


def test_once_fallen_back_reconnects_speak_311_at_once(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        start_311(room)
        amqtt.kill()
        room.wait_log("the office link is down: lost the broker")
        amqtt.start()                                             # the same port, nothing remembered
        room.wait_log(f"connected to the broker at 127.0.0.1:{amqtt.port} over MQTT 3.1.1", more_than=1)
        log = room.log()
        assert log.count("does not speak MQTT 5") == 1 and log.count("is down: no answer to our MQTT 5") == 1
        room.office.wait_state(lambda s: s["office_link"]["connected"] is True, timeout=20)
        assert room.office.request("status/get", {})["data"]["office_link"]["protocol"] == "3.1.1"
    finally:
        room.close()
