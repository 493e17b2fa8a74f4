"""Blocks its loop like sleeper.py, then replaces itself (os.execv) with E2E_EXEC_INTO: a
program and its arguments, separated by spaces (another interpreter running sleeper.py, or
a program that is not Python at all), without the variables E2E_EXEC_UNSET names (what
only this interpreter needed)."""
import asyncio
import os
import time


async def before_exec():
    time.sleep(0.06)  # MARK: sleep


async def main():
    print("ready", flush=True)
    for _ in range(6):
        await asyncio.create_task(before_exec(), name="before-exec")
        await asyncio.sleep(0.1)


asyncio.run(main())
argv = os.environ["E2E_EXEC_INTO"].split()
print(f"exec {argv[0]}", flush=True)
unset = os.environ.get("E2E_EXEC_UNSET", "").split()
os.execve(argv[0], argv, {k: v for k, v in os.environ.items() if k not in unset})
