"""Authors and maintainers: ``Name:github_user`` parsing, GitHub user checks offline, the FAIR hint."""

import httpx
import pytest

from samzoo.cli.main import main
from samzoo.errors import PackageError
from samzoo.packaging.people import checked_github_user, has_github_user, parse_person, people_metadata


def test_parse_person():
    assert parse_person("Jane Doe:janedoe") == {"name": "Jane Doe", "github_user": "janedoe"}
    assert parse_person(" Jane Doe ") == {"name": "Jane Doe"}
    for bad in ("", ":janedoe", "Jane Doe:"):
        with pytest.raises(PackageError):
            parse_person(bad)


def test_options_replace_the_card_and_meet_the_fair_hint():
    card = {"authors": [{"name": "samzoo developers"}], "description": "d"}
    assert not has_github_user(card)
    meta = people_metadata(card, maintainers=[{"name": "bot", "github_user": "bioimageiobot"}])
    assert has_github_user(meta) and meta["authors"] == card["authors"]
    meta = people_metadata(card, authors=[{"name": "Anwai Archit", "github_user": "anwai98"}])
    assert has_github_user(meta) and meta["authors"][0]["github_user"] == "anwai98"


def test_unknown_github_user_offline_is_kept(monkeypatch, capsys):
    """bioimageio.spec asks GitHub about names it does not know: offline the given name is kept, with a note."""
    def offline(*args, **kwargs):
        raise httpx.ConnectError("no network")

    monkeypatch.setattr(httpx, "get", offline)
    assert checked_github_user("samzoo-test-user-offline") == "samzoo-test-user-offline"
    assert "cannot check GitHub user" in capsys.readouterr().err


def test_unknown_github_user_online_is_an_error(monkeypatch):
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(404, request=httpx.Request("GET", "https://x")))
    with pytest.raises(PackageError, match="samzoo-test-no-such-user"):
        checked_github_user("samzoo-test-no-such-user")


def test_maintainer_option_needs_a_github_user(tmp_path, capsys):
    assert main(["package", "samzoo_tiny_lm", "-o", str(tmp_path), "--maintainer", "Jane Doe"]) == 1
    assert "--maintainer needs a GitHub user" in capsys.readouterr().err
