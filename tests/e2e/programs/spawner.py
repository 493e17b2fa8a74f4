"""A CI-like command: an asyncio program that runs /bin/true and a second Python over and
over for E2E_LIFETIME seconds (default 3; each a fresh exec that `aiocopd exec` holds on its
way in), then prints ``done``."""
import asyncio
import os
import subprocess
import sys
import time

LIFETIME = float(os.environ.get("E2E_LIFETIME", "3"))


async def main():
    print(f"pid {os.getpid()}", flush=True)
    deadline = time.monotonic() + LIFETIME
    i = 0
    while time.monotonic() < deadline:
        argv = [sys.executable, "-c", "pass"] if i % 5 == 4 else ["/bin/true"]
        await asyncio.to_thread(subprocess.run, argv, check=True)
        print(f"round {i}", flush=True)
        i += 1


asyncio.run(main())
print("done", flush=True)
