"""Writes the offsets tables a running CPython 3.13+ describes itself with, as test data.

Run it with the interpreter to capture (it reads its own memory):

    python3.14 tests/unit/capture_debug_offsets.py > tests/unit/data/debug_offsets_3.14.10.txt

Output, one item per line: "version X.Y.Z", then "<table> <hex bytes>" for _Py_DebugOffsets
(the start of _PyRuntime) and, where the build has one, the _asyncio module's offsets table
(its .AsyncioDebug section: in the executable or libpython, else in the _asyncio extension).
test_pydebug.c holds the built-in layout rows equal to what these tables say.
"""
import ctypes
import platform
import struct
import sys

import _asyncio  # noqa: F401  (3.14 keeps its table in the extension: have it mapped)

RUNTIME_BYTES = 1024        # more than any known _Py_DebugOffsets


def sections(path):
    """{name: (sh_addr, sh_size)} of an ELF64 little-endian file."""
    with open(path, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx][4]
    out = {}
    for name, _type, _flags, addr, _off, size in headers:
        end = data.index(b"\0", names + name)
        out[data[names + name:end].decode()] = (addr, size)
    return out


def load_bias(path):
    """Where path is mapped minus where its first segment wants to be."""
    with open(path, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    vaddr = min(struct.unpack_from("<IIQQ", data, phoff + i * phentsize)[3]
                for i in range(phnum)
                if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 1)
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == path and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16) - (vaddr & ~0xfff)
    raise SystemExit(f"{path} is not mapped")


def mapped_files():
    with open("/proc/self/maps") as maps:
        paths = [line.split()[5] for line in maps if len(line.split()) >= 6]
    return list(dict.fromkeys(p for p in paths if p.startswith("/")))


def table(path, name):
    found = sections(path).get(name)
    if not found:
        return None
    addr, size = found
    if name == ".PyRuntime":
        size = RUNTIME_BYTES
    return ctypes.string_at(load_bias(path) + addr, size)


def main():
    print("version", platform.python_version())
    found = {}
    for path in mapped_files():
        try:
            for key, section in (("debug_offsets", ".PyRuntime"), ("asyncio_debug", ".AsyncioDebug")):
                if key not in found:
                    data = table(path, section)
                    if data is not None:
                        found[key] = data
        except (OSError, ValueError, struct.error):
            continue
    if "debug_offsets" not in found:
        sys.exit("no .PyRuntime section in any mapped file")
    for key, data in found.items():
        print(key, data.hex())


main()
