"""The sending package's place among the layers: it never renders, nor knows the pipeline."""

import ast
from pathlib import Path

import bulk_email.sending

# app_settings, exceptions < lms, models, tokens < recipients, rendering, sending < ...
BELOW_SENDING = {"app_settings", "exceptions", "lms", "models", "tokens"}


def bulk_email_modules_imported(path: Path) -> set[str]:
    """The bulk_email modules a file of the package imports (``from .. import x``, ``from
    ..x import y``, ``bulk_email.x``); its own siblings (``from .x``) left out."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            names |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bulk_email."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bulk_email.")}
    return names


def test_sending_imports_only_lower_layers_and_never_rendering():
    package = Path(bulk_email.sending.__file__).parent
    imported = {
        path.name: bulk_email_modules_imported(path) for path in sorted(package.glob("*.py"))
    }
    assert {name: modules - BELOW_SENDING for name, modules in imported.items()} == {
        name: set() for name in imported
    }
