"""The layer order of DESIGN.md, enforced: a module never imports one of a higher layer.

    app_settings, exceptions, signals  <  lms, models, tokens, audience  <  recipients,
    histogram, breakdown, groups, rendering, sending, feedback  <  pipeline, progress  <  api
    (services, selectors)  <  tasks  <  views, email_tab, http, forms, admin, checks, urls,
    webhooks, commands

Modules of one layer may import each other. The one upward reference allowed: a service
enqueues a task after the commit, importing it inside the function."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bulk_email"

LAYERS = [
    ["app_settings", "exceptions", "signals", "__init__"],
    ["lms", "models", "tokens", "audience"],
    ["recipients", "histogram", "breakdown", "groups", "rendering", "sending", "feedback"],
    ["pipeline", "progress"],
    ["api"],
    ["tasks"],
    [
        "views",
        "email_tab",
        "http",
        "forms",
        "admin",
        "checks",
        "urls",
        "apps",
        "management",
        "webhooks",
        "converters",
        "testing",
    ],
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
ALLOWED_UPWARD = {("api.services", "tasks")}


def layer(module: str) -> int:
    """The layer of a module path inside the package, e.g. "pipeline.batches" -> 3."""
    top = module.split(".")[0]
    if top not in LAYER_OF:
        raise KeyError(f"bulk_email.{module} has no layer: add it to LAYERS (and DESIGN.md)")
    return LAYER_OF[top]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> set[str]:
    """The bulk_email top-level modules ``source`` imports (absolute or relative, at the top
    or inside a function)."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node, here)
            if base is None:
                continue
            names = [base] if base else []
            names += [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
        else:
            continue
        found |= {n.removeprefix("bulk_email.") for n in names if is_ours(n, node)}
    return {name.split(".")[0] for name in found if name and name.split(".")[0] in LAYER_OF}


def resolve(node: ast.ImportFrom, here: list[str]) -> str | None:
    if node.level == 0:
        return node.module if (node.module or "").startswith("bulk_email") else None
    base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def is_ours(name: str, node) -> bool:
    return (isinstance(node, ast.ImportFrom) and node.level > 0) or name.startswith("bulk_email")


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """``module imports higher`` lines for {module: (source, is_package)}."""
    found = []
    for module, (source, is_package) in sorted(sources.items()):
        for target in sorted(imported_modules(source, module, is_package=is_package)):
            if (
                layer(target) > layer(module)
                and (module, target.split(".")[0]) not in ALLOWED_UPWARD
            ):
                found.append(f"bulk_email.{module} (layer {layer(module)}) imports "
                             f"bulk_email.{target} (layer {layer(target)})")  # fmt: skip
    return found


def package_sources() -> dict[str, tuple[str, bool]]:
    return {
        module_name(path): (path.read_text(), path.name == "__init__.py")
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
    }


def test_no_module_imports_a_higher_layer():
    assert violations(package_sources()) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("models", "from . import tasks\n"),
        ("rendering.prepare", "from ..pipeline import fan_out\n"),
        ("sending.session", "def f():\n    from bulk_email.api import services\n"),
        ("recipients", "import bulk_email.views\n"),
    ],
)
def test_a_deliberate_violation_is_found(module, source):
    sources = {**package_sources(), module: (source, False)}
    assert len(violations(sources)) == 1, violations(sources)


def test_every_module_has_a_layer():
    for module in package_sources():
        layer(module)
