"""The package's import structure: no cycle anywhere (imports inside functions
included), and every module imports on its own."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_pixel"


def _modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph():
    """``{module: modules it imports}`` within ``keras_pixel``, from every import
    statement (at the top or inside a function). ``from package import name``
    counts as importing ``package.name`` where that is a module, else
    ``package``; a module's own ancestors (packages Python initializes on the
    way) are not counted."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "keras_pixel.layers.masked_conv2d" in graph["keras_pixel.layers.residual_block"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_on_its_own():
    """Each module, imported first in a fresh process, loads (no order that only
    works because another module was imported before it)."""
    script = (
        "import importlib, sys\n"
        "names = sys.argv[1:]\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'keras_pixel']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    names = sorted(_modules())
    result = subprocess.run(
        [sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_layers_package_exports_the_protocol():
    layers = importlib.import_module("keras_pixel.layers")
    position = layers.Position(2, 3, 1)
    assert (position.row, position.column, position.channel) == (2, 3, 1)
    assert not bool(position.first_of_row)
    assert bool(layers.Position(4, 0, 0).first_of_row)


def test_dir_lists_the_submodules_not_the_standard_library():
    """Tab completion on ``keras_pixel.`` offers the lazily loaded submodules
    (``data``, ``zoo``, ``export``), not the modules ``__init__`` imports."""
    import keras_pixel

    names = dir(keras_pixel)
    assert {"data", "zoo", "export", "models", "layers", "__version__"} <= set(names)
    assert not {"os", "sys", "importlib", "contextlib"} & set(names)
