"""An asyncio service run as a systemd unit (tests/e2e/test_systemd.py): once a second its
loop is held for 100 ms by a synchronous sleep. It runs until its unit is stopped."""
import asyncio
import time


async def main():
    while True:
        time.sleep(0.1)  # MARK: block
        await asyncio.sleep(1)


asyncio.run(main())
