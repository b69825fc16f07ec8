"""Tenants and API keys on a real SQLite state database: a key is shown once, stored as a hash,
verified in constant time, refused once revoked or rotated."""

from __future__ import annotations

import sqlite3

import pytest

from portl.errors import ConfigError, KeyRefused, ServiceError
from portl.secrets import MASK
from portl.service import apikeys
from portl.service.settings import ServiceSettings
from portl.service.store import open_store


@pytest.fixture
def store(tmp_path):
    settings = ServiceSettings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    with open_store(settings) as opened:
        yield opened


@pytest.fixture
def tenants(store):
    return store.tenants


def test_a_new_key_has_a_readable_prefix_and_a_long_random_secret():
    made = apikeys.make_key()

    assert made.prefix.startswith("ptl_live_") and len(made.prefix) == len("ptl_live_") + 8
    assert made.key.startswith(made.prefix + "_")
    assert len(made.key) - len(made.prefix) - 1 == 43  # 32 random bytes
    assert apikeys.prefix_of(made.key) == made.prefix
    assert made.secret_hash == apikeys.hash_key(made.key) and made.key not in made.secret_hash
    assert MASK in repr(made) and made.key not in repr(made)


def test_two_keys_never_share_a_prefix_or_a_secret():
    keys = [apikeys.make_key() for _ in range(200)]

    assert len({k.prefix for k in keys}) == 200
    assert len({k.key for k in keys}) == 200


@pytest.mark.parametrize("text", ["", "ptl_live_abc", "Bearer ptl_live_abcdefgh_" + "x" * 43, "ptl_live_ABCDEFGH_" + "x" * 43])
def test_text_not_shaped_like_a_key_has_no_prefix(text):
    assert apikeys.prefix_of(text) is None


def test_creating_a_tenant_returns_its_key_once_and_stores_only_the_hash(tenants, tmp_path):
    made = tenants.create("acme")

    rows = sqlite3.connect(tmp_path / "service.db").execute("SELECT prefix, secret_hash FROM api_keys").fetchall()
    assert rows == [(made.prefix, apikeys.hash_key(made.api_key))]
    assert made.api_key.encode() not in (tmp_path / "service.db").read_bytes()
    assert made.tenant == "acme"
    assert made.api_key not in repr(made)


def test_a_new_tenant_is_allowed_nothing(tenants):
    tenants.create("acme")

    [acme] = tenants.list()

    assert (acme.name, acme.local_files, acme.code_hooks, acme.private_network, acme.live_keys) == ("acme", False, False, False, 1)


def test_verify_answers_the_tenant_of_a_valid_key_and_records_its_use(tenants):
    tenants.create("other")
    made = tenants.create("acme")
    tenants.allow("acme", code_hooks=True)

    caller = tenants.verify(made.api_key)

    assert (caller.tenant, caller.key_prefix, caller.code_hooks, caller.local_files) == ("acme", made.prefix, True, False)
    [key] = tenants.keys("acme")
    assert key.last_used_at is not None and key.last_used_at >= key.created_at


def test_a_key_with_a_known_prefix_and_a_wrong_secret_is_refused(tenants):
    made = tenants.create("acme")
    forged = made.prefix + "_" + "A" * 43

    with pytest.raises(KeyRefused, match=f"^API key {made.prefix} is not valid$"):
        tenants.verify(forged)
    assert tenants.keys("acme")[0].last_used_at is None


def test_an_unknown_or_malformed_key_is_refused(tenants):
    tenants.create("acme")

    with pytest.raises(KeyRefused, match="^API key ptl_live_zzzzzzzz is not valid$"):
        tenants.verify("ptl_live_zzzzzzzz_" + "B" * 43)
    with pytest.raises(KeyRefused, match="^not a Portl API key"):
        tenants.verify("hunter2")


def test_a_revoked_key_is_refused_and_the_tenants_other_keys_still_work(tenants):
    first = tenants.create("acme")
    second = tenants.create_key("acme")

    key, newly = tenants.revoke(first.prefix)

    assert newly and key.revoked_at is not None
    with pytest.raises(KeyRefused, match=f"^API key {first.prefix} was revoked on "):
        tenants.verify(first.api_key)
    assert tenants.verify(second.api_key).tenant == "acme"
    assert tenants.list()[0].live_keys == 1


def test_revoking_a_revoked_key_again_changes_nothing(tenants):
    made = tenants.create("acme")
    first, _ = tenants.revoke(made.prefix)

    again, newly = tenants.revoke(made.prefix)

    assert not newly and again.revoked_at == first.revoked_at


def test_rotating_a_key_makes_a_new_one_and_revokes_the_old(tenants):
    old = tenants.create("acme")

    new = tenants.rotate(old.prefix)

    assert new.prefix != old.prefix and new.tenant == "acme"
    assert tenants.verify(new.api_key).key_prefix == new.prefix
    with pytest.raises(KeyRefused):
        tenants.verify(old.api_key)
    assert [(k.prefix, k.revoked_at is not None) for k in tenants.keys("acme")] == [(old.prefix, True), (new.prefix, False)]


def test_a_revoked_key_cannot_be_rotated(tenants):
    made = tenants.create("acme")
    tenants.revoke(made.prefix)

    with pytest.raises(ServiceError, match="nothing to rotate; make a new key with `portl keys create acme`$"):
        tenants.rotate(made.prefix)


def test_a_duplicate_tenant_name_is_refused(tenants):
    tenants.create("acme")

    with pytest.raises(ServiceError, match="^a tenant named 'acme' already exists; `portl keys create acme` makes it another key$"):
        tenants.create("acme")
    assert [t.name for t in tenants.list()] == ["acme"]


def test_an_unknown_tenant_suggests_the_closest_names(tenants):
    tenants.create("acme")
    tenants.create("globex")

    with pytest.raises(ServiceError, match=r"^no tenant named 'acmee'; did you mean 'acme'\?$"):
        tenants.keys("acmee")


def test_an_unknown_tenant_with_none_close_points_to_the_list_or_to_create(tenants):
    with pytest.raises(ServiceError, match="^no tenant named 'x'; there are no tenants yet: `portl tenants create NAME` makes one$"):
        tenants.create_key("x")
    tenants.create("acme")
    with pytest.raises(ServiceError, match="^no tenant named 'zzz'; `portl tenants list` lists them$"):
        tenants.allow("zzz", local_files=True)


def test_an_unknown_key_prefix_is_refused_saying_what_a_prefix_looks_like(tenants):
    with pytest.raises(ServiceError, match="^no API key with prefix 'ptl_live_nothere1': a prefix looks like ptl_live_xxxxxxxx"):
        tenants.revoke("ptl_live_nothere1")


@pytest.mark.parametrize("name", ["", "-acme", "a b", "x" * 101, "acme/prod"])
def test_a_tenant_name_must_be_letters_digits_and_separators(tenants, name):
    with pytest.raises(ConfigError, match="is not usable: use 1 to 100 letters, digits"):
        tenants.create(name)


def test_allow_changes_only_what_it_names(tenants):
    tenants.create("acme")

    tenants.allow("acme", local_files=True, private_network=True)
    after = tenants.allow("acme", private_network=False)

    assert (after.local_files, after.code_hooks, after.private_network) == (True, False, False)
