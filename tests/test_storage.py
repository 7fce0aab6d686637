"""Media storage: one contract, two backends (a folder and a real S3 server, SeaweedFS).

The contract tests go through `app.storage`'s module functions where the app does, so they also
prove that `set_backend` installs the backend the rest of the app uses.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from app import images, storage
from app.errors import MissingObject
from app.storage import LocalStorage, S3Config, S3Storage
from tests import factories
from tests.s3_support import free_ports

BAD_KEYS = ["", "/etc/passwd", "../secret", "reports/../../x", "a//b", "a\\b", "a\x00b", ".", "a/."]


@pytest.fixture
def local_storage(tmp_path: Path) -> Iterator[LocalStorage]:
    store = LocalStorage(tmp_path / "media")
    previous = storage.set_backend(store)
    yield store
    storage.set_backend(previous)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> LocalStorage | S3Storage:
    """Each backend in turn, installed as the app's media backend."""
    return request.getfixturevalue(f"{request.param}_storage")


def test_put_then_get_returns_the_same_bytes(store):
    data = factories.jpeg_bytes(seed=7)
    storage.put("reports/ab/photo.jpg", data)
    assert storage.get("reports/ab/photo.jpg") == data
    assert store.size("reports/ab/photo.jpg") == len(data)


def test_put_replaces_an_existing_object(store):
    storage.put("reports/ab/photo.jpg", b"first")
    storage.put("reports/ab/photo.jpg", b"second")
    assert storage.get("reports/ab/photo.jpg") == b"second"


def test_stream_yields_the_object_in_chunks(store):
    data = bytes(range(256)) * 4000  # ~1 MB: several chunks
    storage.put("reports/ab/big.jpg", data)
    chunks = list(storage.stream("reports/ab/big.jpg"))
    assert len(chunks) > 1
    assert all(len(chunk) <= storage.CHUNK for chunk in chunks)
    assert b"".join(chunks) == data


def test_missing_key_is_missing_object(store):
    with pytest.raises(MissingObject):
        storage.get("reports/ab/none.jpg")
    with pytest.raises(MissingObject):
        store.size("reports/ab/none.jpg")


def test_stream_of_a_missing_key_fails_before_the_first_chunk(store):
    # The media route turns this into a 404 before it starts a 200 response.
    with pytest.raises(MissingObject):
        storage.stream("reports/ab/none.jpg")


def test_delete_removes_and_is_idempotent(store):
    storage.put("reports/ab/photo.jpg", b"x")
    storage.put("reports/ab/photo_t.jpg", b"y")
    storage.delete("reports/ab/photo.jpg", "reports/ab/photo_t.jpg")
    assert not storage.exists("reports/ab/photo.jpg")
    assert not storage.exists("reports/ab/photo_t.jpg")
    storage.delete("reports/ab/photo.jpg", None, "", "never/was.jpg")
    store.delete("reports/ab/photo.jpg")


def test_exists(store):
    assert not storage.exists("reports/ab/photo.jpg")
    storage.put("reports/ab/photo.jpg", b"x")
    assert storage.exists("reports/ab/photo.jpg")
    assert not storage.exists("reports/ab")  # a "folder" is not an object


def test_keys_lists_objects_under_a_prefix(store):
    for key in ("reports/aa/1.jpg", "reports/bb/2.jpg", "tasks/cc/3.jpg"):
        storage.put(key, b"x")
    assert sorted(store.keys("reports/")) == ["reports/aa/1.jpg", "reports/bb/2.jpg"]
    assert sorted(store.keys()) == ["reports/aa/1.jpg", "reports/bb/2.jpg", "tasks/cc/3.jpg"]
    assert list(store.keys("nothing/")) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    with pytest.raises(ValueError):
        storage.get(key)
    with pytest.raises(ValueError):
        storage.stream(key)
    assert not storage.exists(key)
    storage.delete(key)  # ignored, like a missing key


def test_health_and_probe_are_ok(store):
    backend = "s3" if isinstance(store, S3Storage) else "local"
    assert storage.health() == {"ok": True, "backend": backend}
    assert storage.probe() == {"ok": True, "backend": backend}
    assert list(store.keys()) == []  # the probe leaves nothing behind


# --- S3 only ------------------------------------------------------------------------------------


def test_s3_objects_are_private_jpegs_under_the_prefix(s3_storage, s3_server):
    storage.put("reports/ab/photo.jpg", b"\xff\xd8 not really a jpeg")
    object_key = s3_storage.prefix + "reports/ab/photo.jpg"
    head = s3_storage.client.head_object(Bucket=s3_server.bucket, Key=object_key)
    assert head["ContentType"] == "image/jpeg"
    anonymous = requests.get(f"{s3_server.endpoint_url}/{s3_server.bucket}/{object_key}", timeout=5)
    assert anonymous.status_code == 403


def test_s3_prefixes_keep_stores_apart(s3_storage, s3_server):
    other = S3Storage(replace(s3_server, prefix="someone-else/"))
    other.put("reports/ab/photo.jpg", b"theirs")
    try:
        assert not storage.exists("reports/ab/photo.jpg")
        assert list(s3_storage.keys()) == []
        assert list(other.keys()) == ["reports/ab/photo.jpg"]
    finally:
        other.delete("reports/ab/photo.jpg")


def test_s3_keys_follow_every_page(s3_storage):
    s3_storage.page_size = 2
    keys = [f"reports/{n:02d}/photo.jpg" for n in range(5)]
    for key in keys:
        storage.put(key, b"x")
    assert list(s3_storage.keys("reports/")) == keys


def _closed_port() -> int:
    port = free_ports(1)[0]
    with socket.socket() as sock:  # nothing listens there once free_ports closed it
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


def _assert_down(state: dict, config: S3Config, error: str) -> None:
    assert state["ok"] is False
    assert state["backend"] == "s3"
    assert state["error"] == error
    assert config.secret_access_key not in repr(state)
    assert config.access_key_id not in repr(state)


def test_s3_health_is_false_when_the_server_is_unreachable():
    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        bucket="media",
        region="us-east-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    store = S3Storage(config)
    _assert_down(store.health(), config, "EndpointConnectionError")
    _assert_down(store.probe(), config, "EndpointConnectionError")


def test_s3_health_is_false_when_the_bucket_does_not_exist(s3_server):
    config = replace(s3_server, bucket="no-such-bucket")
    store = S3Storage(config)
    _assert_down(store.health(), config, "ClientError")  # HEAD has no body: a bare 404
    _assert_down(store.probe(), config, "NoSuchBucket")


def test_s3_health_is_false_with_wrong_credentials(s3_server):
    for config in (
        replace(s3_server, secret_access_key="not-the-secret-0123456789"),
        replace(s3_server, access_key_id="NOBODY0123456789"),
    ):
        store = S3Storage(config)
        _assert_down(store.health(), config, "ClientError")
        _assert_down(store.probe(), config, "ClientError")
        assert s3_server.secret_access_key not in repr(store.probe())


def test_s3_config_repr_hides_the_secret(s3_server):
    assert s3_server.secret_access_key not in repr(s3_server)
    assert s3_server.secret_access_key not in repr(S3Storage(s3_server).config)


# --- the app on S3 ------------------------------------------------------------------------------


def test_photos_are_served_from_s3_only_to_logged_in_staff(s3_storage, client, admin):
    from tests.conftest import login

    stored = images.store_image(factories.jpeg_bytes(seed=1))
    assert s3_storage.exists(stored.key) and s3_storage.exists(stored.thumb_key)
    anonymous = client.get(f"/media/{stored.key}", follow_redirects=False)
    assert anonymous.status_code == 303
    assert "/login" in anonymous.headers["location"]

    login(client, admin)
    response = client.get(f"/media/{stored.key}")
    assert response.status_code == 200
    assert response.content == storage.get(stored.key)
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "private, no-store"
    assert client.get("/media/reports/ab/none.jpg").status_code == 404


def test_health_endpoint_checks_the_s3_bucket(s3_storage, client):
    body = client.get("/health").json()
    assert body["storage"] == {"ok": True, "backend": "s3"}


def test_health_endpoint_is_503_when_the_s3_credentials_are_wrong(s3_server, client):
    store = S3Storage(replace(s3_server, secret_access_key="not-the-secret-0123456789"))
    previous = storage.set_backend(store)
    try:
        response = client.get("/health")
    finally:
        storage.set_backend(previous)
    assert response.status_code == 503
    assert response.json()["storage"]["ok"] is False
    assert s3_server.secret_access_key not in response.text
