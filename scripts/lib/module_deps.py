#!/usr/bin/env python3
"""Lists which top-level module of a crate uses which (`crate::NAME` paths), and fails on cycles.

    python3 scripts/lib/module_deps.py filter/src idp/src

A top-level module is a file `src/NAME.rs` or a directory `src/NAME/`; the crate root (`lib.rs`,
`main.rs`) is not one. Exit status 1 when two or more modules use each other, directly or through
others (printed as the strongly connected component), else 0.
"""

import re
import sys
from pathlib import Path

USE = re.compile(r"\bcrate::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*))")
COMMENT = re.compile(r"//[^\n]*")


def modules(src: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for entry in sorted(src.iterdir()):
        if entry.is_file() and entry.suffix == ".rs" and entry.stem not in ("lib", "main"):
            found.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            found.setdefault(entry.name, []).extend(sorted(entry.rglob("*.rs")))
    return found


def uses(files: list[Path], names: set[str]) -> set[str]:
    out: set[str] = set()
    for path in files:
        text = COMMENT.sub("", path.read_text())
        for group, single in USE.findall(text):
            for part in (group.split(",") if group else [single]):
                head = part.strip().split("::")[0].strip()
                if head in names:
                    out.add(head)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of size > 1 (or a module using itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(dirs: list[str]) -> int:
    status = 0
    for d in dirs:
        src = Path(d)
        mods = modules(src)
        names = set(mods)
        graph = {name: uses(files, names) - {name} for name, files in mods.items()}
        print(f"# {src}: which module uses which")
        for name in sorted(graph):
            print(f"  {name} -> {', '.join(sorted(graph[name])) or '(none)'}")
        for component in cycles(graph):
            print(f"  CYCLE: {' <-> '.join(component)}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["filter/src", "idp/src"]))
