"""Operators see no personal data: an account in the operators' group runs every kartuctl command but reads no NIK,
name, face, chip data or key.

Real accounts (:mod:`unix_accounts`): the daemon runs as a service user with the unit's ``UMask=0027``
in folders laid out as ``scripts/install`` and the unit make them (state and runtime folders 0750 in
the service's group, the config root-owned and group-readable, the key file root's alone and handed
to the service as a credential). An operator in the service's group then runs every kartuctl
command, online over the control socket and offline from the files, and tries to read every file of
the station: what it can read holds none of the people's NIKs, names, faces or chip files.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import shutil
import subprocess
import tempfile

import pytest
from PIL import Image
from unix_accounts import Accounts, why_not

from kartud.ledger.personal import personal_path
from kartud.room.fake_people import fake_job
from kartud.room.office import OfficeClient
from kartud.room.sim_room import PrivateBroker, sim_config

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")
STATION = "ops-room-01"
PROBE = r"""
import json, os, sys
secrets = [bytes.fromhex(s) for s in json.loads(sys.argv[1])]
found, refused, read = [], [], []
for top in sys.argv[2:]:
    for folder, _, names in os.walk(top, onerror=lambda error: refused.append(error.filename)):
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                refused.append(path)
                continue
            read.append(path)
            found += [path for s in secrets if s in data]
print(json.dumps({"found": found, "refused": refused, "read": read}))
"""


def face(rng: random.Random) -> bytes:
    out = io.BytesIO()
    Image.frombytes("L", (1016, 648), rng.randbytes(1016 * 648)).save(out, format="PNG")
    return out.getvalue()


def person_job(rng: random.Random, serial: int) -> tuple[dict, list[bytes]]:
    """A fake person's job whose chip holds NIK and name in ASCII and whose face is noise of its own."""
    job = fake_job(rng, serial, job_id=f"j-{serial:04d}", record_id=f"PRR-9999-{serial:06d}", front_png=face(rng))
    name = f"ORANG CONTOH {serial:02d}"
    biodata = f"NIK={job['nik']};NAMA={name};".encode()
    job["chip"]["files"]["0101"] = base64.b64encode(biodata).decode()
    front = base64.b64decode(job["front_png"])
    photo = base64.b64decode(job["chip"]["files"]["0102"])
    return job, [job["nik"].encode(), name.encode(), front[len(front) // 2:len(front) // 2 + 32], photo[:32]]


@pytest.fixture
def station():
    """Accounts, folders as the box has them, a broker; the daemon is started by the test."""
    accounts = Accounts.create()
    base = tempfile.mkdtemp(prefix="kartud-ops-")
    os.chmod(base, 0o755)
    broker = PrivateBroker(os.path.join(base, "broker")).start()
    try:
        dirs = {name: os.path.join(base, name) for name in ("etc", "state", "run", "credentials")}
        for name, mode in (("etc", 0o750), ("state", 0o750), ("run", 0o750), ("credentials", 0o500)):
            os.mkdir(dirs[name], mode)
        shutil.chown(dirs["etc"], "root", accounts.group)                     # ConfigurationDirectory, install
        for name in ("state", "run"):                                         # StateDirectory=, RuntimeDirectory=
            shutil.chown(dirs[name], accounts.service, accounts.group)
        config = sim_config(dirs["etc"], broker.port, station=STATION, **{
            "store.path": f'"{dirs["state"]}/kartud.db"', "store.key_file": f'"{dirs["etc"]}/nik.key"',
            "control.socket": f'"{dirs["run"]}/control.sock"', "printer.sim.output_dir": f'"{dirs["state"]}/cards"',
            "sim.clock_speed": "600.0", "printer.sim.seconds_per_card": "5.0"})
        shutil.chown(config, "root", accounts.group)
        os.chmod(config, 0o640)
        key = os.path.join(dirs["etc"], "nik.key")                          # root:root 0600, as make-key made it
        shutil.copy(key, os.path.join(dirs["credentials"], "nik-key"))      # what LoadCredential= gives the unit
        os.chmod(os.path.join(dirs["credentials"], "nik-key"), 0o400)
        for path in (dirs["credentials"], os.path.join(dirs["credentials"], "nik-key")):
            shutil.chown(path, accounts.service, accounts.service)
        yield accounts, dirs, config, broker
    finally:
        broker.stop()
        accounts.remove()
        shutil.rmtree(base, ignore_errors=True)


def test_an_operator_runs_every_kartuctl_command_and_reads_no_personal_data(station):
    accounts, dirs, config, broker = station
    daemon = subprocess.Popen(accounts.command(accounts.service, "kartud.service.cli", "run", "--config", config,
                                               env={"CREDENTIALS_DIRECTORY": dirs["credentials"]}),
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(dirs["etc"], "..", "daemon.log"), "w"))
    office = OfficeClient("127.0.0.1", broker.port, f"kartud/{STATION}")
    try:
        office.wait_availability("online", timeout=30)
        rng, secrets, jobs = random.Random(21), [], []
        assert office.request("blanks/receive", {"batch_id": "B-1", "card_type": "KTP_EL", "count": 5})["status"] == "ok"
        for serial in (1, 2):
            job, job_secrets = person_job(rng, serial)
            jobs.append(job)
            secrets += job_secrets
            assert office.request("job/submit", job, timeout=30)["status"] == "ok"
        office.wait_state(lambda s: s["today"]["printed"] == 2, timeout=30)

        def ctl(*args: str) -> subprocess.CompletedProcess:
            done = accounts.run(accounts.operator, "kartud.ctl.cli", "--config", config, "--lang", "en", *args)
            for secret in secrets:
                assert secret.decode("latin-1") not in done.stdout + done.stderr
            return done

        ctl("pause", "--reason", "lunch")
        queued, queued_secrets = person_job(rng, 3)
        secrets += queued_secrets
        assert office.request("job/submit", queued, timeout=30)["status"] == "ok"
        today = json.loads(ctl("status", "--json").stdout)["today"]["date"]
        for args in (["status"], ["jobs"], ["job", "j-0001"], ["report", today], ["quarantine"], ["verify"],
                     ["cancel", "j-0003"], ["resume"], ["blanks", "receive", "B-2", "KTP_EL", "3"],
                     ["blanks", "adjust", "KTP_EL", "-1", "--reason", "one lost in the drawer"],
                     ["cleaned", "--note", "wiped"], ["report", "--month", today[:7]]):
            done = ctl(*args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        refused = ctl("resolve", "j-0001", "printed", "--note", "seen")      # not in doubt: kartud says so
        assert refused.returncode == 1 and "in doubt" in refused.stdout + refused.stderr

        # The personal-data file really holds them (read as root), and the operator can read none of it.
        files = [personal_path(os.path.join(dirs["state"], "kartud.db")) + end for end in ("", "-wal")]
        personal = b"".join(open(path, "rb").read() for path in files if os.path.exists(path))
        assert all(s in personal for s in queued_secrets)
        probe = probe_files(accounts, secrets, dirs)
        assert probe["found"] == []
        assert {os.path.basename(p) for p in probe["refused"]} >= {"kartud-personal.db", "nik.key", "credentials"}
        assert any(p.endswith("kartud.db-wal") for p in probe["read"])        # the ledger stays readable
    finally:
        stop(daemon)
        office.close()

    for args in (["status"], ["jobs"], ["job", "j-0002"], ["report", today], ["quarantine"], ["verify"]):
        done = ctl(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "read directly from the database" in done.stdout + done.stderr or args == ["verify"]
    probe = probe_files(accounts, secrets, dirs)
    assert probe["found"] == [] and any(p.endswith("kartud.db") for p in probe["read"])
    modes = {name: oct(os.stat(os.path.join(dirs["state"], name)).st_mode & 0o777) for name in
             ("kartud.db", "kartud-personal.db")}
    assert modes == {"kartud.db": "0o640", "kartud-personal.db": "0o600"}


def stop(runuser: subprocess.Popen) -> None:
    """SIGTERM to the daemon itself (runuser's child), and its clean exit through runuser."""
    children = f"/proc/{runuser.pid}/task/{runuser.pid}/children"
    pids = open(children).read().split() if os.path.exists(children) else []
    if pids:
        os.kill(int(pids[0]), 15)
    else:
        runuser.terminate()
    assert runuser.wait(30) == 0


def probe_files(accounts: Accounts, secrets: list[bytes], dirs: dict) -> dict:
    """As the operator: read every file of the station that can be read, and look for the secrets in them."""
    argv = accounts.command(accounts.operator, "json", umask="0077")          # the launcher, then our own code
    code_at = len(argv) - argv[::-1].index("-c")
    argv = argv[:code_at] + [PROBE, json.dumps([s.hex() for s in secrets]),
                                          dirs["state"], dirs["etc"], dirs["run"], dirs["credentials"]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
