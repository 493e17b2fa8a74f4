"""Runs a calm loop, then starts a second Python process (exec_blocker.py) and exits with
its status."""
import asyncio
import os
import subprocess
import sys


async def main():
    await asyncio.sleep(0.01)


asyncio.run(main())
print(f"parent {os.getpid()}", flush=True)
child = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                     "exec_blocker.py")])
sys.exit(child.returncode)
