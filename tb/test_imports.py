"""The import graph of the packages runs one way: ``hw`` <- ``golden`` <- ``synth`` <- ``realm``
(the evaluation stack and the command line) <- ``tb`` (the tests, which nothing imports). The
golden model imports nothing but the hardware's facts and config. No two modules import each
other, directly or through others. Every import counts, those inside functions too."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "golden", "synth", "tb", "realm")
#: package -> the packages its modules may import
ALLOWED = {
    "hw": {"hw"},
    "golden": {"hw", "golden"},
    "synth": {"hw", "golden", "synth"},
    "realm": {"hw", "golden", "synth", "realm"},
    "tb": {"hw", "golden", "synth", "realm", "tb"},
}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path):
    """Every module ``path`` imports (absolute names), with the line of each."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            found.append((mod, node.lineno))
            # ``from pkg import module``: the submodule is imported too
            found += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return found


def graph():
    """``{module: {imported module of ours: line}}`` over every module of the packages."""
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    modules = {module_name(p): p for p in files}
    edges = {}
    for name, path in modules.items():
        edges[name] = {}
        for mod, line in imports(path):
            if mod.split(".")[0] in PACKAGES:
                while mod not in modules and "." in mod:  # a name inside a module
                    mod = mod.rpartition(".")[0]
                if mod in modules and mod != name:
                    edges[name].setdefault(mod, line)
    return modules, edges


def violations(edges):
    bad = []
    for src, targets in edges.items():
        pkg = src.split(".")[0]
        is_test = src.startswith("tb.test_") or src == "tb.conftest"
        for dst, line in targets.items():
            dpkg = dst.split(".")[0]
            if dpkg not in ALLOWED[pkg]:
                bad.append(f"{src}:{line} imports {dst} ({pkg} may import only "
                           f"{', '.join(sorted(ALLOWED[pkg]))})")
            elif dst.startswith("tb.test_") and not is_test:
                bad.append(f"{src}:{line} imports the test module {dst}")
    return bad


def cycles(edges):
    """Import cycles of the package-level modules (``__init__`` of a package excluded)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                found.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_imports_run_one_way():
    _, edges = graph()
    assert violations(edges) == []


def test_no_import_cycles():
    _, edges = graph()
    assert cycles(edges) == []


@pytest.mark.parametrize("src, dst, bad", [
    ("hw.stats", "golden.stats", True), ("golden.stats", "hw.facts", False),
    ("synth.power", "tb.scenarios", True), ("realm.rtl.simulate", "tb.scenarios", True),
    ("golden.array", "synth.flow", True), ("golden.tiler", "realm.abft.loop", True),
    ("realm.rtl.common", "golden.ports", False), ("tb.test_array", "realm.rtl.sim", False),
])
def test_checker_catches_a_wrong_way_import(src, dst, bad):
    assert bool(violations({src: {dst: 1}})) == bad


def test_checker_catches_a_cycle():
    assert cycles({"a.x": {"a.y": 1}, "a.y": {"a.x": 2}}) == ["a.x -> a.y -> a.x"]
