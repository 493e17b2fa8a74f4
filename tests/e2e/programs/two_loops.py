"""Two event loops in two threads (none in the main thread), each with its own blocker."""
import asyncio
import threading
import time

from _scenario import LIFETIME, PERIOD


async def blocker_a():
    time.sleep(0.05)  # MARK: sleep-a


async def blocker_b():
    time.sleep(0.04)  # MARK: sleep-b


def loop_thread(blocker, name, started):
    async def main():
        started.release()
        deadline = time.monotonic() + LIFETIME
        while time.monotonic() < deadline:
            await asyncio.create_task(blocker(), name=name)
            await asyncio.sleep(PERIOD)
    asyncio.run(main())


started = threading.Semaphore(0)
threads = [threading.Thread(target=loop_thread, args=(b, n, started), name=n)
           for b, n in ((blocker_a, "blocker-a"), (blocker_b, "blocker-b"))]
for t in threads:
    t.start()
started.acquire()
started.acquire()
print("ready", flush=True)
for t in threads:
    t.join()
print("done", flush=True)
