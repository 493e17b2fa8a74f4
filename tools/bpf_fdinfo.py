"""What BPF objects a process holds, for the benchmark drivers in tools/ (from /proc/PID/fdinfo
and bpftool): the IDs of its programs or maps, and how many entries its hash maps hold."""
import json
import os
import subprocess


def ids_held_by(pid, kind="prog_id"):
    """IDs of the BPF programs (kind="prog_id") or maps ("map_id") process pid holds."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return ids
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids |= {int(line.split()[1]) for line in f if line.startswith(f"{kind}:")}
        except (OSError, ValueError):
            pass
    return ids


def hash_map_entries(pid):
    """{map name: entry count} of the hash maps process pid holds."""
    counts = {}
    for map_id in ids_held_by(pid, "map_id"):
        info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)],
                                         capture_output=True, text=True, check=True).stdout)
        if info.get("type") != "hash":
            continue
        dump = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)],
                              capture_output=True, text=True)
        counts[info.get("name", str(map_id))] = len(json.loads(dump.stdout or "[]"))
    return counts
