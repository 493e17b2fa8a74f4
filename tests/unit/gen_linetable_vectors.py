#!/usr/bin/env python3
"""Write line-table test vectors for tests/unit/test_linetable.c.

Run it with the interpreter whose line tables you want (3.10 or later):

    python3.X tests/unit/gen_linetable_vectors.py [-o FILE]

It compiles a fixed, varied corpus (loops, long jumps, multi-line
expressions, lambdas, comprehensions, try/except, a 300+ line function, ...)
plus a few of the running interpreter's own stdlib modules, and writes, per
code object, CPython's own answer: co_firstlineno, co_linetable and the
co_lines() ranges.  The default output is
tests/unit/data/linetable_<version>.vec; the C test picks up every
linetable_*.vec in that directory.

File format (text, one record per line, '#' lines are comments):
    format <310|311>
    <name> <firstlineno> <linetable hex or -> <nranges> (<start> <end> <line or ->)*
"""

import argparse
import os
import sys
import types

# Stdlib modules compiled too, for real-world table shapes.  Kept small so
# each vector file stays well under 200 KB.
STDLIB_MODULES = ("textwrap", "bisect", "shlex")


def gap(n):
    """n lines that generate no code (blank lines and comments)."""
    return "".join("\n" if i % 2 else "    # filler\n" for i in range(n))


def long_function(nstmts):
    """A function of nstmts+ lines with line gaps of many sizes."""
    out = ["def long_function(a, b):\n", "    total = 0\n"]
    for i in range(nstmts):
        out.append("    total += a * %d + b\n" % i)
        if i % 37 == 0:
            out.append(gap(i % 150))
    out.append("    return total\n")
    return "".join(out)


def huge_line():
    """One line whose bytecode spans far more than 255 bytes / 8 units."""
    terms = " + ".join("x%d * %d" % (i % 7, i) for i in range(120))
    return ("def huge_line(x0, x1, x2, x3, x4, x5, x6):\n"
            "    return " + terms + "\n")


def wide_call(nargs):
    """A call whose arguments span nargs lines: the CALL jumps far back."""
    args = "".join("        arg%d,\n" % i for i in range(nargs))
    params = ", ".join("arg%d" % i for i in range(nargs))
    return ("def wide_call(f, %s):\n"
            "    return f(\n%s    )\n" % (params, args))


def big_loop(nbody):
    """A while loop with a long body: the loop test jumps back a long way."""
    body = "".join("        n += %d\n%s" % (i, gap(i % 5)) for i in range(nbody))
    return ("def big_loop(n):\n"
            "    while n < 10 ** 6:\n%s"
            "        if n & 1:\n"
            "            continue\n"
            "    return n\n" % body)


FIXED_SOURCE = '''
import functools


def simple(a):
    return a + 1


def loops(items):
    total = 0
    for i, x in enumerate(items):
        if x is None:
            continue
        if x < 0:
            break
        total += x * i
    else:
        total = -total
    j = 0
    while j < len(items):
        j += 1
        if j == 3:
            break
    else:
        j = -1
    return total, j


def jumps_over_64(a):
    x = a
''' + gap(70) + '''
    x += 1
''' + gap(130) + '''
    x += 2
''' + gap(260) + '''
    x += 3
''' + gap(40) + '''
    return x


def multi_line(a, b, c):
    d = {
        "a": a,
        "b": [b,
              b * 2,
              b * 3],
        "c": (c
              + a
              - b),
    }
    s = (str(a)
         .strip()
         .lower()
         .replace("x",
                  "y"))
    return d, s, f"{a!r:>{b}} and {c}"


def closures(n):
    k = 3

    def inner(x):
        def innermost(y):
            return x + y + k
        return innermost(x)

    sq = lambda v: v * v
    adder = lambda v, w=1: (
        v
        + w
    )
    return inner(n) + sq(n) + adder(n)


def comprehensions(xs):
    a = [x * 2 for x in xs if x]
    b = {x: y for x, y in zip(xs, xs[1:])}
    c = {x % 3 for x in xs}
    g = (x
         for x in xs
         if x > 1)
    nested = [[i * j for j in range(i)] for i in xs]
    return a, b, c, list(g), nested


def exceptions(path):
    try:
        f = open(path)
    except FileNotFoundError as e:
        return str(e)
    except (PermissionError, IsADirectoryError):
        raise
    else:
        try:
            return f.read()
        finally:
            f.close()
    finally:
        print("done")


def with_blocks(a, b):
    with open(a) as fa, \\
            open(b) as fb:
        return fa.read() + fb.read()


@functools.lru_cache(maxsize=None)
@staticmethod
def decorated(x):
    return x



def blank_first_lines(x):


    # comment before the body

    return x


def docstring_first(x):
    """Docstring
    spanning lines."""

    y = x
    return y


@functools.wraps(
    simple,
''' + "".join("    # decorator argument line %d\n" % i for i in range(150)) + '''
)
def far_decorated(x):
    return x


class Klass:
    attr = 1

    def method(self, v):
        return self.attr + v

    @property
    def prop(self):
        return (
            self.attr
        )

    class Inner:
        def deep(self):
            return [lambda: i for i in range(3)]


async def coro(q):
    async with q as r:
        async for item in r:
            await item
    return [x async for x in q]


def generator(n):
    for i in range(n):
        yield i
    yield from range(n)


def matcher(p):
    match p:
        case {"x": x, "y": y}:
            return x + y
        case [a, b, *rest]:
            return a
        case Klass(attr=1):
            return 1
        case _:
            return None


def negative_jump(n):
    r = (n
''' + "".join("         + %d\n" % i for i in range(140)) + '''
         )
    return r


def assert_and_del(a):
    assert a, (
        "message"
    )
    del a
    global GLOBAL
    GLOBAL = 1
    return 0


x = 1
y = [x for _ in range(3)]
''' + long_function(330) + huge_line() + wide_call(200) + big_loop(120)


def walk(code, prefix=""):
    """Yield (qualified name, code) for code and every nested code object."""
    name = prefix + code.co_name
    yield name, code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from walk(const, name + ".")


def record(name, code):
    table = code.co_linetable
    ranges = []
    for start, end, line in code.co_lines():
        ranges.append("%d %d %s" % (start, end, "-" if line is None else line))
    name = name.replace(" ", "_") or "?"
    return "%s %d %s %d %s" % (name, code.co_firstlineno,
                               table.hex() if table else "-",
                               len(ranges), " ".join(ranges))


def stdlib_source(modname):
    import importlib.util
    spec = importlib.util.find_spec(modname)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


def main():
    if sys.version_info < (3, 10):
        sys.exit("needs CPython 3.10 or later (co_linetable/co_lines)")
    fmt = 310 if sys.version_info[:2] == (3, 10) else 311
    ver = "%d.%d.%d" % sys.version_info[:3]

    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output",
                    default=os.path.join(here, "data", "linetable_%s.vec" % ver))
    args = ap.parse_args()

    sources = [("corpus", FIXED_SOURCE)]
    for mod in STDLIB_MODULES:
        src = stdlib_source(mod)
        if src is not None:
            sources.append((mod, src))

    lines = ["# line-table vectors from %s" % sys.version.split()[0],
             "# %s" % sys.version.replace("\n", " "),
             "# generated by tests/unit/gen_linetable_vectors.py",
             "format %d" % fmt]
    count = 0
    for label, src in sources:
        top = compile(src, "<%s>" % label, "exec", dont_inherit=True)
        for name, code in walk(top, label + ":"):
            lines.append(record(name, code))
            count += 1

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d code objects (format %d)" % (args.output, count, fmt))


if __name__ == "__main__":
    main()
