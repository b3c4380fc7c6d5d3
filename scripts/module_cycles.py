#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

A module is one source file. Module A depends on module B when A names a path into B
(`use crate::b::X`, `super::b::f()`, `crate::b::X` in code); a path that ends at an item a parent
module only re-exports (`pub use b::X;`) counts as a dependency on B, where the item lives. A
parent's `mod b;` is not a dependency. Test code is left out: files named `tests.rs` or
`*_tests.rs`, `tests/` folders inside `src/`, and a file's trailing `#[cfg(test)] mod tests { .. }`.

Prints every cycle (each strongly connected component of more than one module) and exits 1 if
there is one. Usage: scripts/module_cycles.py [crate_dir ...]   (default: every crate of the
workspace, read from the `members` of Cargo.toml).
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workspace_crates():
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    m = re.search(r"members\s*=\s*\[([^\]]*)\]", text)
    members = re.findall(r'"([^"]+)"', m.group(1)) if m else ["."]
    crates = []
    for member in members:
        cargo = open(os.path.join(ROOT, member, "Cargo.toml")).read()
        lib = re.search(r'\[lib\][^\[]*?path\s*=\s*"([^"]+)"', cargo, re.S)
        roots = []
        if lib:
            roots.append(os.path.join(ROOT, member, lib.group(1)))
        elif os.path.exists(os.path.join(ROOT, member, "src", "lib.rs")):
            roots.append(os.path.join(ROOT, member, "src", "lib.rs"))
        else:
            # A tool: its binary's modules (the binary of a library crate only uses the library).
            bin_ = re.search(r'\[\[bin\]\][^\[]*?path\s*=\s*"([^"]+)"', cargo, re.S)
            main = os.path.join(ROOT, member, bin_.group(1) if bin_ else os.path.join("src", "main.rs"))
            if os.path.exists(main):
                roots.append(main)
        for r in roots:
            crates.append((member, r))
    return crates


def is_test_file(path):
    base = os.path.basename(path)
    parts = path.split(os.sep)
    return base == "tests.rs" or base.endswith("_tests.rs") or "tests" in parts[:-1] and "src" in parts


def strip(text):
    """Source without comments, strings and a trailing `#[cfg(test)] mod x { .. }`."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    return text


class Crate:
    def __init__(self, name, root):
        self.name = name
        self.modules = {}  # module path (tuple) -> file
        self.source = {}
        self.walk((), root)

    def walk(self, path, file):
        if is_test_file(file):
            return
        self.modules[path] = file
        text = strip(open(file).read())
        self.source[path] = text
        base = os.path.dirname(file)
        stem = os.path.splitext(os.path.basename(file))[0]
        here = base if stem in ("lib", "mod", "main") or not path else os.path.join(base, stem)
        for m in re.finditer(r"(?:#\[path\s*=\s*\"([^\"]+)\"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", open(file).read()):
            name = m.group(2)
            for cand in (os.path.join(here, name + ".rs"), os.path.join(here, name, "mod.rs")):
                if os.path.exists(cand):
                    self.walk(path + (name,), cand)
                    break

    def resolve(self, current, segments):
        """The module a path names (the deepest module prefix), following `pub use` re-exports."""
        if not segments:
            return None
        head, rest = segments[0], list(segments[1:])
        if head == "crate":
            base = ()
        elif head == "super":
            base = current[:-1]
            while rest and rest[0] == "super":
                base = base[:-1]
                rest = rest[1:]
        elif head == "self":
            base = current
        else:
            # A child module named directly (`use child::X` inside a parent), or an external crate.
            if current + (head,) in self.modules:
                base, rest = current, [head] + rest
            else:
                return None
        return self.deepest(base, rest, depth=0)

    def deepest(self, base, rest, depth):
        mod = base
        i = 0
        while i < len(rest) and mod + (rest[i],) in self.modules:
            mod = mod + (rest[i],)
            i += 1
        if i < len(rest) and depth < 8:
            # `rest[i]` is an item of `mod`: if `mod` only re-exports it, go where it lives.
            target = self.reexport(mod, rest[i])
            if target is not None:
                return self.deepest(target[0], target[1] + rest[i + 1 :], depth + 1)
        return mod

    def reexport(self, mod, item):
        text = self.source.get(mod, "")
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for path in expand(m.group(1)):
                segs = path.split("::")
                last = segs[-1]
                alias = None
                am = re.match(r"(\w+)\s+as\s+(\w+)", last)
                if am:
                    last, alias = am.group(1), am.group(2)
                    segs[-1] = last
                if (alias or last) == item or last == "*":
                    inner = segs if last != "*" else segs[:-1] + [item]
                    if inner[0] in ("crate", "super", "self"):
                        head = self.resolve_base(mod, inner)
                    elif mod + (inner[0],) in self.modules:
                        head = (mod, inner)
                    else:
                        continue
                    if head is not None:
                        return head
        return None

    def resolve_base(self, current, segs):
        head, rest = segs[0], list(segs[1:])
        if head == "crate":
            return (), rest
        if head == "self":
            return current, rest
        base = current[:-1]
        while rest and rest[0] == "super":
            base = base[:-1]
            rest = rest[1:]
        return base, rest

    def edges(self):
        graph = {m: set() for m in self.modules}
        for mod, text in self.source.items():
            paths = []
            for m in re.finditer(r"\buse\s+([^;]+);", text):
                paths.extend(expand(m.group(1)))
            for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
                paths.append(m.group(1))
            for p in paths:
                p = re.sub(r"\s+as\s+\w+$", "", p.strip())
                segs = [s for s in p.split("::") if s]
                target = self.resolve(mod, segs)
                if target is None or target == mod:
                    continue
                # A module naming its own ancestor (`super::X` that is the parent's own item) or its
                # descendant is the tree's shape, not a sibling dependency: count only modules that
                # are neither.
                if is_prefix(target, mod) or is_prefix(mod, target):
                    continue
                graph[mod].add(target)
        return graph


def is_prefix(a, b):
    return len(a) <= len(b) and b[: len(a)] == a


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", " ", tree.strip())
    out = []

    def go(prefix, t):
        t = t.strip()
        if not t:
            return
        m = re.match(r"^(.*?)\{(.*)\}$", t)
        if m and "{" not in m.group(1):
            pre = (prefix + m.group(1)).rstrip(":").rstrip()
            for part in split_top(m.group(2)):
                go(pre + "::" if pre else "", part)
        else:
            out.append((prefix + t).replace(" ", "") if " as " not in t else prefix + t)

    go("", tree)
    return [o.replace("::self", "") for o in out]


def split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def name(mod):
    return "::".join(mod) if mod else "(crate root)"


def main():
    targets = sys.argv[1:]
    crates = workspace_crates()
    if targets:
        crates = [(m, r) for (m, r) in crates if m in targets]
    failed = False
    for member, root in crates:
        crate = Crate(member, root)
        graph = crate.edges()
        cycles = sccs(graph)
        print(f"{member}: {len(crate.modules)} modules, {sum(len(v) for v in graph.values())} dependencies, {len(cycles)} cycles")
        for comp in cycles:
            failed = True
            members = set(comp)
            print(f"  cycle between {len(comp)} modules:")
            for m in comp:
                deps = sorted(name(d) for d in graph[m] if d in members)
                print(f"    {name(m)} -> {', '.join(deps)}")
    if failed:
        print("import cycles between modules (above): break each one (docs/architecture.md, Layers)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
