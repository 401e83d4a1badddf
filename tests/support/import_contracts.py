"""Two import-linter contract types the built-in ones cannot express (``pyproject.toml [tool.importlinter]``).

* ``forbidden_submodules``: forbid *submodules* of an external package (``PySide6.QtGui``) while
  allowing others (``PySide6.QtCore``). import-linter only knows external packages by their top
  name, so this reads each import of that package that the import graph records and resolves the
  imported names from the source file's syntax tree (multi-line and lazy imports included).
* ``forbidden_if_present``: the built-in ``forbidden`` contract, except that a forbidden
  subpackage that does not exist (yet) is skipped instead of being a configuration error, so a
  rule about an optional package (``tlstudio.cluster``) holds from the day it is added.

Run ``lint-imports`` with ``tests`` on the path (``PYTHONPATH=tests lint-imports``), as
``tests/test_architecture.py`` does.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache

from importlinter import Contract, ContractCheck, fields, output
from importlinter.contracts.forbidden import ForbiddenContract


@cache
def _syntax_tree(module: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as fh:
        return ast.parse(fh.read(), filename=spec.origin)


def _imported_names(module: str, line: int) -> list[str]:
    """Every dotted name an import statement at ``line`` of ``module`` brings in."""
    tree = _syntax_tree(module)
    names: list[str] = []
    for node in ast.walk(tree) if tree is not None else ():
        if getattr(node, "lineno", None) != line:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
    return names


class ForbiddenSubmodulesContract(Contract):
    """Source modules must not import the listed submodules of external packages."""

    type_name = "forbidden_submodules"

    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        violations: list[str] = []
        forbidden = [str(f) for f in self.forbidden_modules]  # type: ignore[attr-defined]
        for source in self.source_modules:  # type: ignore[attr-defined]
            source = str(source)
            for module in sorted({source} | graph.find_descendants(source)):
                for root in sorted({f.split(".")[0] for f in forbidden}):
                    for detail in graph.get_import_details(importer=module, imported=root):
                        for name in _imported_names(module, detail["line_number"]):
                            hit = next((f for f in forbidden if name == f or name.startswith(f + ".")), None)
                            if hit:
                                violations.append(
                                    f"{module} imports {hit} (line {detail['line_number']}: "
                                    f"{detail['line_contents']})"
                                )
                                break
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["violations"]:
            output.print_error(line, bold=False)
            output.new_line()


class ForbiddenIfPresentContract(ForbiddenContract):
    """The ``forbidden`` contract, skipping forbidden internal modules that do not exist."""

    type_name = "forbidden_if_present"

    def check(self, graph, verbose: bool) -> ContractCheck:
        present = []
        for expression in self.forbidden_modules:  # type: ignore[attr-defined]
            text = expression.expression
            internal = "." in text and not expression.has_wildcard_expression()
            if not internal or text in graph.modules:
                present.append(expression)
        self.forbidden_modules = present  # type: ignore[assignment]
        return super().check(graph, verbose)
