#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses (tests/fuzz/corpus/NAME/).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Everything comes from real producers, never from aiocopd's own code:
  elf        seed_elf.c built by gcc, as a shared object and as a static executable
  linetable  tables CPython wrote (tests/unit/data/linetable_*.vec, themselves made by
             tests/unit/gen_linetable_vectors.py under each interpreter)
  pydebug    the first bytes of _PyRuntime of a running CPython 3.13 (its _Py_DebugOffsets)
  pyresolve  code objects, their strings and line tables copied out of each installed
             CPython's own memory (ctypes), in fuzz_pyresolve.c's input format

config (the service's configuration) is not written here: its seeds are the shipped
tools/aiocopd.conf, SPEC 6.2's example and one holding every kind of error, kept in
tests/fuzz/corpus/config by hand.

Crash reproducers found later are added to the same folders by hand (crash-*), and this
script leaves those alone. Interpreters that are not installed are skipped.
"""
import glob
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
PYENV = "/root/.pyenv/versions"
INTERPRETERS = ["/usr/bin/python3.11"] + sorted(
    glob.glob(f"{PYENV}/3.1[0-9].*/bin/python3.1[0-9]"))
LINETABLES_PER_VERSION = 6
LINETABLE_MAX = 512

# Run under each interpreter with -c: prints one pyresolve input (hex) per function.
DUMP_CODE_OBJECTS = r'''
import ctypes, struct, sys

def sample(a, b):
    total = a + b
    for i in range(3):
        total += i * a
    return total

# names beyond ASCII: Latin-1 (one byte a character) and UCS-2 (two), each with UTF-8 copy
LATIN1, UCS2 = "funci\u00f3n", "\u51fd\u6570"
exec(f"def {LATIN1}():\n    return 1\ndef {UCS2}():\n    return 2")
utf8_of = ctypes.pythonapi.PyUnicode_AsUTF8
utf8_of.restype = ctypes.c_void_p
utf8_of.argtypes = [ctypes.py_object]

def region(addr, size):
    return struct.pack("<QH", addr, size) + ctypes.string_at(addr, size)

def str_regions(s):
    if s.isascii():
        return region(id(s), s.__sizeof__())
    utf8 = utf8_of(s)       # first: the copy of s must hold the pointer to its UTF-8 form
    return region(id(s), s.__sizeof__()) + region(utf8, len(s.encode()) + 1)

def code_size(code):
    t = type(code)
    n = ctypes.c_ssize_t.from_address(id(code) + 16).value if t.__itemsize__ else 0
    return (t.__basicsize__ + t.__itemsize__ * n + 7) & ~7

task_name = "Task-7"
for fn in (sample, globals()[LATIN1], globals()[UCS2]):
    code = fn.__code__
    units = len(code.co_code) // 2
    instr = units // 2 if sys.version_info < (3, 11) else (units // 2) * 2
    out = struct.pack("<BQQQ", sys.version_info[1], id(code), instr, id(task_name))
    out += region(id(code), code_size(code))
    for s in {code.co_filename, code.co_name, getattr(code, "co_qualname", code.co_name)}:
        out += str_regions(s)
    out += region(id(code.co_linetable), code.co_linetable.__sizeof__())
    out += str_regions(task_name)
    print(fn.__name__.encode("ascii", "backslashreplace").decode(), out.hex())
'''

# Run under CPython 3.13 with -c: prints the start of _PyRuntime (hex).
DUMP_RUNTIME = r'''
import ctypes
print(ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi,
                                                               "_PyRuntime")), 1024).hex())
'''


def write(name, seed, data):
    folder = os.path.join(CORPUS, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, seed), "wb") as f:
        f.write(data)


def version_of(python):
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          check=True, capture_output=True, text=True).stdout.strip()


def elf_seeds():
    src = os.path.join(HERE, "seed_elf.c")
    small = ["-Os", "-nostdlib", "-fno-asynchronous-unwind-tables", "-Wl,--build-id=sha1",
             "-Wl,-z,max-page-size=16", "-Wl,-z,noseparate-code", "-Wl,--hash-style=gnu"]
    kinds = {"shared.so": ["-shared", "-fPIC"],
             "static-exec": ["-static", "-no-pie", "-Wl,-e,fuzz_fn"]}
    with tempfile.TemporaryDirectory() as tmp:
        for seed, flags in kinds.items():
            out = os.path.join(tmp, seed)
            subprocess.run(["gcc", *flags, *small, "-o", out, src], check=True)
            with open(out, "rb") as f:
                write("elf", seed, f.read())


def linetable_seeds():
    for vec in sorted(glob.glob(os.path.join(REPO, "tests/unit/data/linetable_*.vec"))):
        version = os.path.basename(vec)[len("linetable_"):-len(".vec")]
        fmt, written = None, 0
        for line in open(vec):
            if line.startswith("format "):
                fmt = 1 if line.split()[1] == "311" else 0
                continue
            fields = line.split()
            if line.startswith("#") or len(fields) < 4 or fields[2] == "-":
                continue
            table = bytes.fromhex(fields[2])
            if len(table) > LINETABLE_MAX:
                continue
            # probe the middle range's start
            nranges = int(fields[3])
            probe = int(fields[4 + 3 * (nranges // 2)]) if nranges else 0
            write("linetable", f"{version}-{written}",
                  struct.pack("<Bii", fmt, int(fields[1]), probe) + table)
            written += 1
            if written == LINETABLES_PER_VERSION:
                break


def pydebug_seeds():
    for python in INTERPRETERS:
        version = version_of(python)
        if tuple(map(int, version.split(".")[:2])) < (3, 13):
            continue
        table = bytes.fromhex(subprocess.run([python, "-c", DUMP_RUNTIME], check=True,
                                             capture_output=True, text=True).stdout)
        minor = int(version.split(".")[1])
        write("pydebug", f"{version}-runtime", bytes([minor]) + table)
        # the same table claimed by another version: refused, layout untouched
        write("pydebug", f"{version}-claimed-3.12", bytes([12]) + table)


def pyresolve_seeds():
    for python in INTERPRETERS:
        version = version_of(python)
        kind = "debian" if python.startswith("/usr/bin/") else "pyenv"
        out = subprocess.run([python, "-c", DUMP_CODE_OBJECTS], check=True,
                             capture_output=True, text=True).stdout
        for n, line in enumerate(out.splitlines()):
            _, data = line.split()
            write("pyresolve", f"{version}-{kind}-{n}", bytes.fromhex(data))


def main():
    elf_seeds()
    linetable_seeds()
    pydebug_seeds()
    pyresolve_seeds()


if __name__ == "__main__":
    sys.exit(main())
