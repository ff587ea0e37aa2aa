import pytest

from scripts.readme_section import replace_section, write_section

TEXT = "intro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n"


def test_the_section_body_is_replaced_and_the_rest_kept():
    assert replace_section(TEXT, "t", "new\n") == (
        "intro\n<!-- t:start -->\nnew\n<!-- t:end -->\noutro\n"
    )


@pytest.mark.parametrize("text", ["no markers", "<!-- t:start --> no end", "<!-- t:end -->"])
def test_a_text_without_the_section_is_refused(text):
    with pytest.raises(ValueError, match="t:start"):
        replace_section(text, "t", "new")


def test_write_section_leaves_a_readme_without_the_section_alone(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("nothing here")
    assert not write_section("t", "new", readme)
    assert readme.read_text() == "nothing here" and "not written" in capsys.readouterr().out
    readme.write_text(TEXT)
    assert write_section("t", "new", readme) and "\nnew\n" in readme.read_text()
