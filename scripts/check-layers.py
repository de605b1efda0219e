#!/usr/bin/env python3
"""Checks that every #include in src/ and apps/ follows the module graph of docs/architecture.md.

    python3 scripts/check-layers.py [--root DIR]          # exit 1 and one line per violation
    python3 scripts/check-layers.py --graph [--root DIR]  # which module includes which (counts)

The graph and the owners of the public headers are read from the ```layers and
```public-headers blocks of docs/architecture.md, so they are written down once.
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
TORCH = ("torch/", "ATen/", "c10/")
FILES = ("fstream", "filesystem")
PROGRAMS = {"apps/igan": "cli"}  # program folders and their module names


def block(text, name):
    m = re.search(r"^```" + re.escape(name) + r"\n(.*?)^```", text, re.S | re.M)
    if not m:
        sys.exit(f"docs/architecture.md: no ```{name} block")
    rows = []
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, rest = line.partition(":")
            rows.append((key.strip(), rest.split()))
    return rows


def read_rules(root):
    with open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    deps, flags = {}, {}
    for name, tokens in block(text, "layers"):
        deps[name] = {t for t in tokens if not t.startswith("!")}
        flags[name] = {t[1:] for t in tokens if t.startswith("!")}
    owners = {header: tokens[0] for header, tokens in block(text, "public-headers")}
    problems = [f"docs: {m} depends on unknown module {d}"
                for m, ds in deps.items() for d in ds if d not in deps]
    problems += [f"docs: {h} is owned by unknown module {m}" for h, m in owners.items()
                 if m not in deps]
    return deps, flags, owners, problems


def closure(deps):
    """Every module below each module; raises on a cycle."""
    below, state = {}, {}

    def visit(m, path):
        if state.get(m) == "open":
            raise ValueError("cycle in the documented graph: " + " -> ".join(path + [m]))
        if m not in below:
            state[m] = "open"
            below[m] = set()
            for d in deps.get(m, ()):
                below[m] |= {d} | visit(d, path + [m])
            state[m] = "done"
        return below[m]

    for m in deps:
        visit(m, [])
    return below


def sources(root):
    """(module, relative path) of every C++ file in src/<module>/ and the program folders."""
    out = []
    for base, module_of in (("src", None), *((p, m) for p, m in PROGRAMS.items())):
        top = os.path.join(root, base)
        for dirpath, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith((".h", ".cpp")):
                    rel = os.path.relpath(os.path.join(dirpath, f), root)
                    module = module_of or rel.split(os.sep)[1]
                    out.append((module, rel))
    return sorted(out)


def target_of(header, kind, own, owners, src_modules):
    """(module, public?) that an include names, or None for system and third-party headers."""
    if header in owners:
        return owners[header], True
    first = header.split("/", 1)[0]
    if "/" in header and first in src_modules:
        return first, False
    if kind == '"' and "/" not in header:
        return own, False  # a header beside the includer
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--graph", action="store_true", help="print the include graph and exit")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    deps, flags, owners, problems = read_rules(root)
    try:
        below = closure(deps)
    except ValueError as e:
        sys.exit(str(e))
    src_modules = {d for d in os.listdir(os.path.join(root, "src"))
                   if os.path.isdir(os.path.join(root, "src", d))}
    problems += [f"src/{m}/: a module that docs/architecture.md does not list"
                 for m in sorted(src_modules - set(deps))]
    public_dir = os.path.join(root, "include", "igan")
    problems += [f"include/igan/{h}: a public header without an owner in docs/architecture.md"
                 for h in sorted(os.listdir(public_dir)) if "igan/" + h not in owners]

    graph = {}
    for module, rel in sources(root):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        for n, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, header = m.groups()
            where = f"{rel}:{n}: #include {kind}{header}{'>' if kind == '<' else kind}"
            rule = flags.get(module, set())
            if "torch" in rule and header.startswith(TORCH):
                problems.append(f"{where}: {module} must compile without torch")
            if "files" in rule and header in FILES:
                problems.append(f"{where}: {module} never touches files")
            target = target_of(header, kind, module, owners, src_modules)
            if target is None:
                continue
            to, public = target
            graph.setdefault(module, {}).setdefault(to, 0)
            graph[module][to] += 1
            if to == module:
                continue
            if to not in below.get(module, set()):
                problems.append(f"{where}: {module} may not include {to} "
                                f"(allowed: {' '.join(sorted(below.get(module, ()))) or 'nothing'})")
            elif not public and "internal" in rule:
                problems.append(f"{where}: {module} sees only include/igan/, not src/{to}/")

    if args.graph:
        for module in sorted(graph):
            edges = ", ".join(f"{to} {n}" for to, n in sorted(graph[module].items()) if to != module)
            print(f"{module:9} -> {edges or '-'}")
        return 0
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s); the graph is in docs/architecture.md")
        return 1
    print(f"layering ok: {sum(1 for _ in sources(root))} files, {len(deps)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
