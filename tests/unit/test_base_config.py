from syringe.configure.base import base_script


def test_base_script_sets_hostname_and_each_address() -> None:
    script = base_script("r1", [("eth1", "10.12.0.1/24"), ("eth2", "10.31.0.2/24")])
    assert "$S hostname r1" in script
    assert "$S ip address add 10.12.0.1/24 dev eth1" in script
    assert "$S ip address flush dev eth2 scope global" in script
    assert "exit 1" in script  # links that need addresses make missing privileges fatal


def test_hostname_only_is_not_fatal_without_privileges_and_quotes() -> None:
    script = base_script("odd name", [])
    assert "exit 0" in script and "exit 1" not in script
    assert "hostname 'odd name'" in script
