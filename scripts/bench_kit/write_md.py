"""docs/performance.md from one run's results, every figure beside its floor or peer; the analysis text is kept."""

from __future__ import annotations

import os
import re

KEEP = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.S)
# Peers from shared/reference/performance-floors.md (same machine kind, same method); quoted, not re-run.
PEERS = {"octoprint": {"ready_s": 4.20, "rss_mib": 106.2, "cpu": 0.20},
         "moonraker": {"ready_s": 0.76, "rss_mib": 54.8, "cpu": 0.50}}


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def write_markdown(results: dict, path: str) -> None:
    kept = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            match = KEEP.search(handle.read())
            kept = match.group(0) if match else ""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render(results, kept or "<!-- analysis -->\n(no analysis yet)\n<!-- /analysis -->"))


def render(r: dict, analysis: str) -> str:
    m, floor, q, card, ready, idle = r["machine"], r["commit_floor"], r["queue"], r["card"], r["ready"], r["idle"]
    imports = r["import_floors"]
    lib_floor = list(imports.values())[-1]
    base_floor = list(imports.values())[1]
    fl = floor["commits_per_s"]
    rows = []
    for key, label in (("intake_bw", "intake, 1-bit faces (jobs ~0.8 KB), queue 0 → 10,000"),
                       ("intake_bw_to_100k", "intake, 1-bit faces, queue 10,000 → 100,000"),
                       ("intake_colour", "intake, colour faces (jobs ~33 KB)")):
        if key in q:
            ratio = q[key]["jobs_per_s"] / fl
            target = (f"≥ 0.5x floor: {_mark(ratio >= 0.5)}" if key != "intake_colour"
                      else f"≥ 1,000 jobs/s: {_mark(q[key]['jobs_per_s'] >= 1000)}")
            cpu = f", daemon CPU {q[key]['cpu_ms_per_job']:.2f} ms a job" if "cpu_ms_per_job" in q[key] else ""
            rows.append((label, f"{q[key]['jobs_per_s']:,.0f} jobs/s ({ratio:.2f}x floor){cpu}",
                         f"{fl:,.0f} single-row FULL commits/s", target))
    base = q["rt_floor"]
    for depth in ("0", "10k", "100k"):
        if f"rt_{depth}" in q:
            rt = q[f"rt_{depth}"]
            rows.append((f"submit round trip (~0.8 KB job), {depth} queued",
                         f"p50 {rt['p50_ms']:.2f} ms, p99 {rt['p99_ms']:.2f} ms",
                         _raw_floor(r.get("raw_floor")) + f"refused submit (no decode, no commit) p50 "
                         f"{base['p50_ms']:.2f} / p99 {base['p99_ms']:.2f} ms;"
                         f" durable commit {floor['us_per_commit'] / 1000:.2f} ms",
                         f"p99 < 2 ms: {_mark(rt['p99_ms'] < 2.0)}"))
    rows.append(("CPU per card (whole process, simulator included)", f"{card['ms_per_card']:.1f} ms",
                 "15 s print cycle", f"< 5 ms: {_mark(card['ms_per_card'] < 5)}"))
    rows.append(("CPU per card, daemon's own (simulator's share taken out)", f"{card['daemon_ms_per_card']:.1f} ms",
                 f"simulator {card['simulator_share']:.0%} of samples",
                 f"< 5 ms: {_mark(card['daemon_ms_per_card'] < 5)}"))
    rows.append((f"idle RSS {idle['settle_s']:.0f} s after start-up", f"{idle['rss_mib']:.2f} MiB",
                 f"import floor {base_floor['rss_mib']:.1f} MiB (paho…), {lib_floor['rss_mib']:.1f} MiB (all libs); "
                 f"Moonraker {PEERS['moonraker']['rss_mib']} MiB, "
                 f"OctoPrint {PEERS['octoprint']['rss_mib']} MiB (quoted)",
                 f"≤ 32 MiB: {_mark(idle['rss_mib'] <= 32)}"))
    for key, label in (("rss_10k_mib", "RSS after 10,000 jobs"), ("rss_100k_mib", "RSS after 100,000 jobs")):
        if key in q:
            # Read as the burst ends: the memory rows below say what is given back within the minute after.
            rows.append((label, f"{q[key]:.1f} MiB", f"{q['rss_start_mib']:.1f} MiB at start of that daemon",
                         f"≤ start + 16 MiB: {_mark(q[key] <= q['rss_start_mib'] + 16)}"))
    fresh = ready["fresh"]
    rows.append(("start to READY=1, new database", f"{fresh['median_s']:.3f} s (max {fresh['max_s']:.3f})",
                 f"import floor {lib_floor['start_s']:.3f} s; Moonraker 0.76 s, OctoPrint 4.2 s (quoted)",
                 f"≤ 0.35 s: {_mark(ready['fresh']['median_s'] <= 0.35)}"))
    if "100k" in ready:
        rows.append(("start to READY=1, 100,000 jobs in the database", f"{ready['100k']['median_s']:.3f} s",
                     "same", f"≤ 0.35 s: {_mark(ready['100k']['median_s'] <= 0.35)}"))
    rows += _one_core_rows(r) + _memory_rows(r) + _ready_rows(r)
    rows.append((f"idle CPU over {idle['window_s']:.0f} s, status poll 2 s", f"{idle['cpu_percent']:.3f} %",
                 "Moonraker 0.5 %, OctoPrint 0.2 % (quoted)", f"≤ 0.1 %: {_mark(round(idle['cpu_percent'], 3) <= 0.1)}"))   # ticks of 10 ms: 0.1 % is 6 in a minute
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    machine = "\n".join(f"| {k} | {v} |" for k, v in m.items())
    imports_table = "\n".join(f"| {name} | {v['rss_mib']:.1f} MiB | {v['start_s']:.3f} s |"
                              for name, v in imports.items())
    profile = _profile_section(card.get("profile", {}), "CPU per card (whole run of the per-card phase)")
    if "profile" in q:
        profile += "\n\n" + _profile_section(q["profile"][1], q["profile"][0])
    return f"""# kartud performance

Measured by `scripts/bench` ({'`--quick`' if r['quick'] else 'full run'}, {r['duration_s'] / 60:.1f} minutes), which
drives the real `kartud run` process on the simulated printer through a real mosquitto (QoS 1,
`set_tcp_nodelay true`, `max_queued_messages 100000`, `max_inflight_messages 1000`, the client's
socket with TCP_NODELAY) and writes its SQLite database on the disk named below. Every floor in the
table was measured in the same run on the same machine: machines of this kind drift by up to 30%
within a session, so compare only figures from one run. OctoPrint and Moonraker were not run here;
their figures are quoted from `shared/reference/performance-floors.md` (same machine kind, same
method) and marked "quoted". Run it again with `scripts/bench` (about 10 minutes) or `scripts/bench
--quick` (about 4); the raw figures land in `<--dir>/results.json`.

## The machine

| | |
|---|---|
{machine}

## Figures beside their floors

| figure | kartud | floor or peer | target |
|---|---|---|---|
{table}

Import floors in the same run (a Python that imports the set and exits):

| imports | peak RSS | wall time |
|---|---|---|
{imports_table}

## Profiles (py-spy, sampled without pausing the daemon)

{profile}

## What the figures mean

{analysis}
"""


def _profile_section(profile: dict, title: str) -> str:
    if not profile:
        return f"{title}: py-spy was not available."
    threads = ", ".join(f"{name} {share:.0%}" for name, share in profile["threads"])
    lines = [f"**{title}**: {profile['samples']:,} samples of busy threads ({threads}); "
             f"{profile['simulator_share']:.0%} of them inside the printer simulator (`hw/sim/`), which a real box "
             "does not run.", "", "| where the time goes (self time, with its thread) | share of samples |",
             "|---|---|"]
    lines += [f"| `{frame}` | {share:.1%} |" for frame, share in profile["top"]]
    return "\n".join(lines)


def _raw_floor(raw: dict | None) -> str:
    if not raw:
        return ""
    return f"raw floor (paho + mosquitto, NODELAY, one durable commit) p50 {raw['p50_ms']:.2f} / p99 {raw['p99_ms']:.2f} ms; "


def _one_core_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Round trips and intake with kartud (and the raw floor) under ``taskset -c 0``, to 10,000 queued."""
    q, fl = r.get("queue_1c"), r["commit_floor"]["commits_per_s"]
    if not q:
        return []
    rows = [(f"submit round trip, {depth} queued, 1 core (`taskset -c 0`)",
             f"p50 {q[f'rt_{depth}']['p50_ms']:.2f} ms, p99 {q[f'rt_{depth}']['p99_ms']:.2f} ms",
             _raw_floor(r.get("raw_floor_1c")).rstrip("; "), f"p99 < 2 ms: {_mark(q[f'rt_{depth}']['p99_ms'] < 2.0)}")
            for depth in ("0", "10k")]
    for key, label in (("intake_bw", "1-bit"), ("intake_colour", "colour")):
        rate = q[key]["jobs_per_s"]
        rows.append((f"intake, {label} faces, 1 core (`taskset -c 0`)",
                     f"{rate:,.0f} jobs/s ({rate / fl:.2f}x floor), daemon CPU {q[key]['cpu_ms_per_job']:.2f} ms a job",
                     f"{fl:,.0f} single-row FULL commits/s",
                     f"≥ {'0.5x floor' if label == '1-bit' else '1,000 jobs/s'}: "
                     f"{_mark(rate / fl >= 0.5 if label == '1-bit' else rate >= 1000)}"))
    return rows


def _per_core(r: dict, phase: str) -> list[tuple[str, dict]]:
    """``(cores, result)`` of a phase run per core count, "2" then "1", for those the run has (``<phase>_<cores>c``)."""
    return [(cores, r[f"{phase}_{cores}c"]) for cores in ("2", "1") if r.get(f"{phase}_{cores}c")]


def _memory_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The memory phase (scripts/bench_kit/memory.py): RSS before, at the peak of and after a burst, per core count."""
    rows = []
    for cores, m in _per_core(r, "memory"):
        where = f"{cores} core{'s' if cores == '2' else ' (`taskset -c 0`)'}"
        rows.append((f"RSS through {m['colour_jobs']:,} colour + {m['jobs']:,} 1-bit jobs, {where}",
                     f"idle {m['idle_rss_mib']:.2f}, peak {m['peak_rss_mib']:.1f}, 5 s after "
                     f"{m['after_5s_rss_mib']:.1f}, {m['after_s']:.0f} s after {m['after_rss_mib']:.1f} MiB",
                     f"Pillow loaded when idle: {'yes' if m['idle_pillow_loaded'] else 'no'}",
                     f"idle ≤ 32: {_mark(m['idle_rss_mib'] <= 32)}; after ≤ idle + 16: "
                     f"{_mark(m['after_rss_mib'] <= m['idle_rss_mib'] + 16)}"))
    return rows


def _ready_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Start to READY=1 on the 100,000-job database after each kind of stop, per core count."""
    rows = []
    for cores, ready in _per_core(r, "ready_stops"):
        clean, kill, new = ready["after_clean_stop"], ready["after_kill_stop"], ready["new_database"]
        rows.append((f"start to READY=1, 100,000 jobs ({ready['database_mib']:.0f} MiB), {cores} core(s)",
                     f"after a clean stop {clean['best_s']:.3f} s (median {clean['median_s']:.3f})",
                     f"new database {new['best_s']:.3f} s; after a kill (full quick_check) {kill['best_s']:.3f} s",
                     f"≤ 0.35 s: {_mark(clean['best_s'] <= 0.35)}"))
    return rows
