"""Generated sections of the README: the text between ``<!-- name:start -->`` and
``<!-- name:end -->`` is replaced by a script's output (the benchmark's table, the measured
fault figures), so the figures in the README are the ones a run printed."""

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` holding ``body``; ValueError when it has no such section."""
    start, end = markers(name)
    if start not in text or end not in text.split(start, 1)[1]:
        raise ValueError(f"no {start} ... {end} section")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def write_section(name: str, body: str, readme: Path = README) -> bool:
    """Write the section into the README; False (and a message) when it has none."""
    try:
        readme.write_text(replace_section(readme.read_text(), name, body))
    except ValueError as error:
        print(f"{readme.name}: {error}; not written there")
        return False
    return True
