from syringe.curriculum.yamlsource import parse_yaml


def test_positions_are_recorded_for_nested_fields() -> None:
    doc = parse_yaml("f.yaml", "a: 1\nlist:\n- name: x\n  port: 22\n")
    assert doc.problems == []
    assert doc.data == {"a": 1, "list": [{"name": "x", "port": 22}]}
    assert doc.positions[("list", 0, "port")] == (4, 3)
    assert doc.position(("list", 0, "missing")) == (3, 3)


def test_duplicate_keys_are_problems_not_silently_overwritten() -> None:
    doc = parse_yaml("f.yaml", "name: a\nslug: x\nname: b\n")
    assert [(p.line, p.field) for p in doc.problems] == [(3, "name")]
    assert "first defined on line 1" in doc.problems[0].message
    assert doc.data["name"] == "a"


def test_tab_indentation_is_reported_with_its_line() -> None:
    doc = parse_yaml("f.yaml", "a:\n\tb: 1\n")
    assert doc.data is None
    assert [(p.line, p.column) for p in doc.problems] == [(2, 1)]
    assert "tab" in doc.problems[0].message


def test_syntax_error_has_a_line() -> None:
    doc = parse_yaml("f.yaml", "a: [1, 2\nb: 3\n")
    assert doc.data is None
    assert len(doc.problems) == 1
    assert doc.problems[0].line >= 2
    assert doc.problems[0].message.startswith("YAML syntax error")


def test_empty_and_multi_document_files() -> None:
    assert parse_yaml("f.yaml", "").problems[0].message == "the file is empty"
    doc = parse_yaml("f.yaml", "a: 1\n---\nb: 2\n")
    assert "one YAML document" in doc.problems[0].message


def test_alias_bombs_are_refused_not_expanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    doc = parse_yaml("f.yaml", bomb)
    assert any("too large" in p.message for p in doc.problems)
