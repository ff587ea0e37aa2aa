"""The shipped catalogs: French and Arabic are complete for bulk_email (django, djangojs) and
lms_stub, each compiles, each committed .mo says what its .po says, and extracting the
strings again from the code finds nothing left untranslated (docs/languages.md)."""

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = {"fr": 2, "ar": 6}  # language -> plural forms its catalog must fill
DOMAINS = [("bulk_email", "django"), ("bulk_email", "djangojs"), ("lms_stub", "django")]
CATALOGS = [(app, domain, language) for app, domain in DOMAINS for language in sorted(LANGUAGES)]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%\(\w+\)\.\d+f")


def catalog_path(root: Path, app: str, domain: str, language: str, suffix: str = "po") -> Path:
    return root / app / "locale" / language / "LC_MESSAGES" / f"{domain}.{suffix}"


def catalog_id(catalog) -> str:
    return "{}-{}-{}".format(*catalog)


def untranslated(po: polib.POFile, plural_forms: int) -> list[str]:
    """The msgids of entries with an empty translation, a missing plural form, or fuzzy."""
    missing = []
    for entry in po:
        if entry.obsolete:
            continue
        if entry.msgid_plural:
            forms = [entry.msgstr_plural.get(i, "") for i in range(plural_forms)]
            empty = not all(form.strip() for form in forms)
        else:
            empty = not entry.msgstr.strip()
        if empty or "fuzzy" in entry.flags:
            missing.append(entry.msgid)
    return missing


def require_gettext_tools() -> None:
    if shutil.which("msgfmt") and shutil.which("xgettext"):
        return
    message = "GNU gettext (msgfmt, xgettext) is not installed: apt-get install gettext"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it.", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}.")


@pytest.mark.parametrize("catalog", CATALOGS, ids=catalog_id)
def test_catalog_is_complete_and_not_fuzzy(catalog):
    language = catalog[2]
    po = polib.pofile(str(catalog_path(ROOT, *catalog)))
    assert len(po) > 0, "an empty catalog translates nothing"
    assert f"nplurals={LANGUAGES[language]};" in po.metadata["Plural-Forms"]
    assert not po.metadata_is_fuzzy
    assert untranslated(po, LANGUAGES[language]) == []


@pytest.mark.parametrize("catalog", CATALOGS, ids=catalog_id)
def test_translations_keep_the_placeholders(catalog):
    """A translation that loses %(course_name)s drops the course from the page; one that
    invents a name fails when formatted."""
    po = polib.pofile(str(catalog_path(ROOT, *catalog)))
    for entry in po:
        wanted = set(PLACEHOLDER.findall(entry.msgid))
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert set(PLACEHOLDER.findall(text)) == wanted, (entry.msgid, text)


@pytest.mark.parametrize("catalog", CATALOGS, ids=catalog_id)
def test_catalog_compiles(catalog):
    require_gettext_tools()
    path = catalog_path(ROOT, *catalog)
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("catalog", CATALOGS, ids=catalog_id)
def test_committed_mo_matches_its_po(catalog):
    """The .mo files are committed (a wheel needs no gettext): each must be the compiled
    form of its .po, or the site shows stale words. Read with Python's own gettext."""
    po = polib.pofile(str(catalog_path(ROOT, *catalog)))
    with catalog_path(ROOT, *catalog, suffix="mo").open("rb") as mo_file:
        compiled = gettext.GNUTranslations(mo_file)._catalog
    expected = {}
    for entry in po.translated_entries():
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            expected.update({(key, n): text for n, text in entry.msgstr_plural.items()})
        else:
            expected[key] = entry.msgstr
    compiled.pop("", None)  # the header
    assert compiled == expected


TREE = ["bulk_email", "lms_stub", "templates", "static", "scripts", "manage.py"]


def copy_of_the_tree(destination: Path) -> Path:
    for name in TREE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.mark.timeout(300)
def test_makemessages_finds_nothing_untranslated(tmp_path):
    """scripts/makemessages.sh run on a copy of the code: every string it extracts is
    already translated, so no page shows a word in English under fr or ar."""
    require_gettext_tools()
    tree = copy_of_the_tree(tmp_path)
    result = subprocess.run(
        ["bash", "scripts/makemessages.sh"],
        cwd=tree,
        env={**os.environ, "PY": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for app, domain, language in CATALOGS:
        po = polib.pofile(str(catalog_path(tree, app, domain, language)))
        assert untranslated(po, LANGUAGES[language]) == [], f"{app} {domain} {language}"
