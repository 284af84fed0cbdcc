"""Authors and maintainers of a package: who they are, and their GitHub user names.

bioimage.io asks for a maintainer, or at least one author, with a GitHub user name (a FAIR hint:
``bioimageio test`` warns without one): that is who answers for the package on bioimage.io.
They come, in this order, from ``samzoo package --author/--maintainer "Name:github_user"``
(or :func:`samzoo.packaging.build_packages`'s ``authors``/``maintainers``), from the model
card's front matter (``authors``, ``maintainers``), else from generic metadata. The published
models' cards name micro-sam's authors with their GitHub users, so their packages need nothing
more; for samzoo's own and finetuned models whoever packages them is the maintainer and should
say so (samzoo cannot guess a GitHub account).

bioimageio.spec checks every GitHub user name with GitHub's API, except the few it ships a list
of. Offline that is impossible: a name given by the user is then kept as given (they vouch for
it, and samzoo says so on stderr); an unknown name that GitHub rejects is an error.
"""

from __future__ import annotations

import sys

from samzoo.errors import PackageError


def parse_person(text: str) -> dict:
    """``"Name"`` or ``"Name:github_user"`` -> ``{"name": ..., "github_user": ...}``.

    Examples
    --------
    >>> parse_person("Jane Doe:janedoe")
    {'name': 'Jane Doe', 'github_user': 'janedoe'}
    >>> parse_person("Jane Doe")
    {'name': 'Jane Doe'}
    """
    name, _, user = text.rpartition(":") if ":" in text else (text, "", "")
    name, user = name.strip(), user.strip()
    if not name or (":" in text and not user):
        raise PackageError(f"a person is 'Name' or 'Name:github_user', got {text!r}")
    return {"name": name, "github_user": user} if user else {"name": name}


def checked_github_user(user: str) -> str:
    """``user`` once bioimageio.spec accepts it; offline, an unknown name is kept as given.

    Raises
    ------
    PackageError
        GitHub says there is no such user.
    """
    import httpx
    from bioimageio.spec._internal.constants import KNOWN_GITHUB_USERS
    from bioimageio.spec._internal.field_validation import validate_github_user

    try:
        return validate_github_user(user)
    except ValueError as err:
        raise PackageError(f"GitHub user {user!r}: {err}") from err
    except httpx.HTTPError:
        # offline: GitHub cannot be asked; the name was given on purpose, so it is kept, and
        # bioimageio.spec is told it is known (in this process only: a later offline
        # `bioimageio test` elsewhere cannot check it either)
        print(f"samzoo: cannot check GitHub user {user!r} offline; kept as given", file=sys.stderr)
        KNOWN_GITHUB_USERS.add(user.lower())
        return user


def people_metadata(meta: dict, authors: list[dict] | None = None, maintainers: list[dict] | None = None) -> dict:
    """``meta`` with ``authors`` and ``maintainers`` replaced where given, every GitHub user checked."""
    meta = dict(meta)
    if authors:
        meta["authors"] = authors
    if maintainers:
        meta["maintainers"] = maintainers
    for key in ("authors", "maintainers"):
        meta[key] = [{**p, "github_user": checked_github_user(p["github_user"])} if p.get("github_user") else p
                     for p in meta.get(key) or []]
    return meta


def has_github_user(meta: dict) -> bool:
    """Whether bioimage.io's FAIR hint is met: a maintainer, or an author, with a GitHub user."""
    return bool(meta.get("maintainers")) or any(a.get("github_user") for a in meta.get("authors") or [])


MISSING_HINT = ("no maintainer or author with a GitHub user: bioimage.io asks for one (pass --maintainer "
                "'Name:github_user', or add maintainers to the model card)")
