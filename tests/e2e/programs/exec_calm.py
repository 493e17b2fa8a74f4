"""A well-behaved loop (nothing blocks); exits with argv[1] (default 0)."""
import asyncio
import sys


async def main():
    for _ in range(50):
        await asyncio.sleep(0.002)


asyncio.run(main())
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
