"""``pdserving.auth``: the key sources and their union, the headers a key is read from, the
check, and that a key shows in no message or repr (docs/design.md §2.11)."""

from __future__ import annotations

import argparse

import pytest

from pdserving import auth
from pdserving.errors import Unauthorized

OLD, NEW = "old-key-7f3a9c", "new-key-2b8e1d"


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    auth.add_auth_flags(p)
    return p.parse_args(argv)


def test_no_source_means_auth_off_and_everything_passes():
    keys = auth.from_args(parse())
    assert not keys.on and keys.client_key is None
    keys.check({})
    keys.check_status({})


def test_the_sources_are_united_in_order_without_repeats(tmp_path, monkeypatch):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated on Monday\n\n  {NEW}  \nfile-key\n{OLD}\n")
    monkeypatch.setenv(auth.SERVER_ENV, f" env-key ,,{NEW}")
    keys = auth.from_args(parse("--api_key", OLD, "--api_key", NEW, "--api_key_file",
                                str(key_file), "--public_metrics"))
    assert keys.keys == (OLD, NEW, "file-key", "env-key")
    assert keys.public_metrics and keys.client_key == OLD


@pytest.mark.parametrize("headers", [
    {"authorization": f"Bearer {NEW}"}, {"authorization": f"bearer  {OLD} "},
    {"x-api-key": NEW}, {"authorization": "Basic dXNlcjpwYXNz", "x-api-key": OLD}])
def test_either_key_in_either_header_passes(headers):
    auth.Auth((OLD, NEW)).check(headers)


@pytest.mark.parametrize("headers, message", [
    ({}, "missing API key"), ({"authorization": "Bearer "}, "missing API key"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, "missing API key"),
    ({"authorization": f"Bearer {NEW}x"}, "wrong API key"),
    ({"authorization": NEW}, "missing API key"), ({"x-api-key": OLD[:-1]}, "wrong API key")])
def test_no_key_or_a_wrong_one_is_refused_without_echoing_it(headers, message):
    keys = auth.Auth((OLD, NEW))
    with pytest.raises(Unauthorized, match=message) as refused:
        keys.check(headers)
    assert refused.value.status == 401
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}
    assert OLD[:-1] not in str(refused.value) and NEW not in str(refused.value)
    with pytest.raises(Unauthorized):
        keys.check_status(headers)
    auth.Auth((OLD,), public_metrics=True).check_status(headers)


def test_keys_are_in_no_repr_and_reach_a_child_by_its_environment():
    keys = auth.Auth((OLD, NEW), public_metrics=True)
    assert OLD not in repr(keys) and NEW not in repr(keys)
    assert keys.child_env() == {auth.SERVER_ENV: f"{OLD},{NEW}"}
    assert auth.Auth().child_env() == {}


def test_a_bad_source_is_one_line_without_the_key(tmp_path, monkeypatch):
    with pytest.raises(auth.AuthError, match=r"--api_key_file .*missing: No such file"):
        auth.load(key_file=str(tmp_path / "missing"))
    with pytest.raises(auth.AuthError, match="from --api_key has a character") as bad:
        auth.load(["secret with space"])
    assert "secret" not in str(bad.value)
    monkeypatch.setenv(auth.SERVER_ENV, "caf\u00e9")
    with pytest.raises(auth.AuthError, match=auth.SERVER_ENV):
        auth.load()


def test_a_clients_key_is_its_own_else_the_environments(monkeypatch):
    monkeypatch.delenv(auth.CLIENT_ENV, raising=False)
    assert auth.client_key() is None and auth.bearer(None) == {}
    monkeypatch.setenv(auth.CLIENT_ENV, OLD)
    assert auth.client_key() == OLD and auth.client_key(NEW) == NEW
    assert auth.bearer(NEW) == {"authorization": f"Bearer {NEW}"}
