"""A pytest suite (run by `aiocopd exec -- python -m pytest THIS_FILE`): one test fails, one
blocks its event loop with time.sleep(0.2) in a named task. Not named test_*.py, so the e2e
suite itself never collects it."""
import asyncio
import time


def test_fails():
    assert 1 == 2, "this test fails on purpose"


async def blocker():
    time.sleep(0.2)  # MARK: block


def test_blocks_its_loop():
    async def main():
        await asyncio.create_task(blocker(), name="the-blocker")

    asyncio.run(main())
