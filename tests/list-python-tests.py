#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Lists the test cases of the Python test files, for tests/meson.build,
which registers one meson test per line (as fwupd does). The files are
parsed with ast, never imported: configuring needs none of their imports.

    list-python-tests.py --files DIR        the tests/test-*.py in DIR
    list-python-tests.py FILE...            one line per case: FILE ID

ID is Class.test_method, or Class alone for a class whose cases share one
expensive setUpClass (they run in one process, as one meson test). A class
inherits the cases of its bases in the same file; a class without cases
(a base of others), or one the module deletes ("del Base", so that unittest
runs only its subclasses), gives nothing.
"""
import ast
import glob
import os
import sys


def cases(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    deleted = {t.id for node in tree.body if isinstance(node, ast.Delete)
               for t in node.targets if isinstance(t, ast.Name)}

    def bases(node):
        for b in node.bases:
            name = b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else None
            if name in classes and classes[name] is not node:
                yield classes[name]

    def methods(node, seen=()):
        """Method names of node and its in-file bases, in definition order."""
        out = []
        for b in bases(node):
            if b.name not in seen:
                out += [m for m in methods(b, seen + (node.name,)) if m not in out]
        for name in defined(node):
            if name not in out:
                out.append(name)
        return out

    def defined(node):
        """Functions defined in a class body (also under if/try), not
        functions nested in them."""
        for item in ast.iter_child_nodes(node):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield item.name
            elif not isinstance(item, (ast.ClassDef, ast.Lambda)):
                yield from defined(item)

    for node in classes.values():
        if node.name in deleted:
            continue
        names = methods(node)
        tests = [m for m in names if m.startswith("test")]
        if not tests:
            continue
        if "setUpClass" in names:
            yield node.name
        else:
            for m in tests:
                yield node.name + "." + m


def main(argv):
    if len(argv) == 2 and argv[0] == "--files":
        for path in sorted(glob.glob(os.path.join(argv[1], "test-*.py"))):
            print(os.path.basename(path))
        return 0
    for path in argv:
        for case in cases(path):
            print(os.path.basename(path), case)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
