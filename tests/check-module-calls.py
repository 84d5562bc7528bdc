#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""No sideways calls between the modules of service/ (issue 13).

A module (service/X.c, built into libservice) may call a function or use a
variable defined in another module Y only through
  - the Context (context.c, declared in bankr-llmd.h), or
  - the header named after Y (service/Y.h), which X includes (directly or
    through another header).
main.c is not in libservice: it is the wiring and may call everyone.
Apart from the Context, the modules' uses of each other form no cycle.

Reads the symbols of libservice with nm, so what is checked is what the
compiler emitted, not what the sources seem to say.

Usage: check-module-calls.py LIBSERVICE.a SERVICE_SOURCE_DIR [NM]
"""
import os
import re
import subprocess
import sys

CONTEXT_MODULE = "context"
CONTEXT_HEADER = "bankr-llmd.h"


def module_of(member):
    base = os.path.basename(member)
    return re.sub(r"\.c\.o$", "", base)


def symbols(lib, nm):
    out = subprocess.run([nm, "-A", "--format=posix", lib], check=True, capture_output=True, text=True).stdout
    defined, undefined = {}, {}
    for line in out.splitlines():
        # "lib.a[member.o]: name T value size" or "lib.a:member.o: name U"
        m = re.match(r"^(?:.*?\[(?P<m1>[^\]]+)\]|[^:]*:(?P<m2>[^:]+)):\s+(?P<name>\S+)\s+(?P<type>\S)", line)
        if not m:
            continue
        member = m.group("m1") or m.group("m2")
        mod = module_of(member)
        name, typ = m.group("name"), m.group("type")
        if typ == "U":
            undefined.setdefault(mod, set()).add(name)
        elif typ.isupper():
            defined[name] = mod
    return defined, undefined


def includes(path, dirs):
    """The quoted includes of path, transitively, by name."""
    seen, todo = set(), [path]
    while todo:
        with open(todo.pop(), encoding="utf-8") as f:
            names = re.findall(r'^#include "([^"]+)"', f.read(), re.M)
        for n in names:
            if n in seen:
                continue
            seen.add(n)
            for d in dirs:
                if os.path.exists(os.path.join(d, n)):
                    todo.append(os.path.join(d, n))
                    break
    return seen


def declares(header, name):
    if not os.path.exists(header):
        return False
    with open(header, encoding="utf-8") as f:
        return re.search(r"\b%s\b" % re.escape(name), f.read()) is not None


def main():
    lib, srcdir = sys.argv[1], sys.argv[2]
    nm = sys.argv[3] if len(sys.argv) > 3 else "nm"
    defined, undefined = symbols(lib, nm)
    modules = sorted(set(defined.values()) | set(undefined))
    if len(modules) < 5:
        print("only %d modules found in %s: is it libservice?" % (len(modules), lib))
        return 1
    problems = []
    for mod in modules:
        src = os.path.join(srcdir, mod + ".c")
        inc = includes(src, [srcdir, os.path.join(srcdir, "..", "common")]) if os.path.exists(src) else set()
        for name in sorted(undefined.get(mod, ())):
            owner = defined.get(name)
            if owner is None or owner == mod:
                continue
            header = CONTEXT_HEADER if owner == CONTEXT_MODULE else owner + ".h"
            if not declares(os.path.join(srcdir, header), name):
                problems.append("%s.c uses %s, defined in %s.c but not declared in %s" % (mod, name, owner, header))
            elif header not in inc:
                problems.append("%s.c uses %s of %s.c without including %s" % (mod, name, owner, header))
    # Data flows one way: apart from the Context, the graph of uses has no cycle.
    edges = {}
    for mod in modules:
        for name in undefined.get(mod, ()):
            owner = defined.get(name)
            if owner and owner != mod and CONTEXT_MODULE not in (mod, owner):
                edges.setdefault(mod, set()).add(owner)
    state = {}

    def visit(mod, path):
        state[mod] = "open"
        for nxt in sorted(edges.get(mod, ())):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                problems.append("a cycle between modules: " + " -> ".join(m + ".c" for m in cycle))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[mod] = "done"

    for mod in modules:
        if mod not in state:
            visit(mod, [mod])
    for p in problems:
        print(p)
    if problems:
        print("%d sideways use(s) between service modules." % len(problems))
        return 1
    print("%d modules, no sideways calls." % len(modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
