"""A target that corrupts what aiocopd reads of it: the function that blocks runs a code
object whose co_firstlineno is overwritten with a negative number, and the Task's name slot
holds a bytes object (not a str) whose bytes look like a compact str's header followed by a
forged name. Both are written with ctypes, found by scanning the objects for known values."""
import asyncio
import ctypes
import sys
import time
import types

from _scenario import run

SENTINEL_LINE = 987654
CORRUPT_LINE = -1519441556
# a str's state word (compact, ascii, 1-byte kind) where a str keeps it, then a forged name
FAKE_NAME = b"d\x00\x00\x00\x00\x00\x00\x00" + b"\x15forged-name\x00" * 4
keep_alive = []


def corrupt_sleeper():
    time.sleep(0.05)


def with_first_line(func, line):
    """func's code with co_firstlineno overwritten in memory (replace() rejects nonsense)."""
    code = func.__code__.replace(co_firstlineno=SENTINEL_LINE)
    raw = ctypes.string_at(id(code), sys.getsizeof(code))
    where = raw.find(SENTINEL_LINE.to_bytes(4, "little", signed=True))
    assert where > 0 and raw.count(SENTINEL_LINE.to_bytes(4, "little", signed=True)) == 1
    ctypes.c_int32.from_address(id(code) + where).value = line
    keep_alive.append(code)
    return types.FunctionType(code, func.__globals__, func.__name__)


blocker = with_first_line(corrupt_sleeper, CORRUPT_LINE)


def give_task_a_bytes_name(task):
    """Points the Task's name slot at a bytes object; the old name stays referenced here."""
    name = task.get_name()
    raw = ctypes.string_at(id(task), sys.getsizeof(task))
    where = raw.find(id(name).to_bytes(8, "little"))
    assert where > 0
    fake = FAKE_NAME
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(fake))
    keep_alive.extend((name, fake))
    ctypes.c_void_p.from_address(id(task) + where).value = id(fake)


async def hostile_blocker():
    give_task_a_bytes_name(asyncio.current_task())
    await asyncio.sleep(0)
    blocker()


async def one_round(n):
    await asyncio.create_task(hostile_blocker(), name=f"plain-name-{n}")


run(one_round)
