"""Error answers become typed exceptions with short, useful, secret-free messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

import heketi_client
import heketi_client.errors
from heketi_client import HeketiClient, RetryPolicy, VolumeCreateRequest
from heketi_client.errors import (
    AllocationFailed,
    BadRequest,
    Conflict,
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    NoSpace,
    NotFound,
    OperationFailed,
    OutcomeUnknown,
    ServerError,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
    UnexpectedResponse,
    VolumeNameInUse,
)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, "validation failed: size: cannot be blank.", BadRequest),
        (422, "request unable to be parsed", BadRequest),
        (401, "Invalid qsh claim in token", Unauthorized),
        (404, "Id not found", NotFound),
        (409, "Cannot delete heketidbstorage", Conflict),
        (
            500,
            "Failed to allocate new volume: Cluster has disabled all volume types",
            AllocationFailed,
        ),
        (500, "Failed to allocate new volume: Volume name 'pvc-1' already in use", VolumeNameInUse),
    ],
)
def test_status_and_text_map_to_a_type(
    status: int,
    body: str,
    kind: type[HeketiAPIError],
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    client = make_client(retry=RetryPolicy(attempts=1))
    heketi.post(wire.BASE + "/volumes", status=status, body=body + "\n")
    with pytest.raises(kind) as caught:
        client.create_volume(VolumeCreateRequest(1, name="pvc-1"))
    assert type(caught.value) is kind
    assert caught.value.status == status and caught.value.message == body


def test_name_in_use_carries_the_name(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(
        wire.BASE + "/volumes",
        status=500,
        body="Failed to allocate new volume: Volume name 'pvc-1' already in use\n",
    )
    with pytest.raises(VolumeNameInUse) as caught:
        client.create_volume(VolumeCreateRequest(1, name="pvc-1"))
    assert caught.value.name == "pvc-1"


def test_get_of_unknown_volume_is_not_found(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", status=404, body="Id not found\n")
    with pytest.raises(NotFound, match="404: Id not found"):
        client.get_volume(wire.VOL)
    assert len(heketi.calls) == 1  # 404 is an answer, not a reason to retry


def test_delete_of_unknown_volume_is_not_found(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.delete(f"{wire.BASE}/volumes/{wire.VOL}", status=404, body="Id not found\n")
    with pytest.raises(NotFound):
        client.delete_volume(wire.VOL)


def test_html_error_page_gets_a_hint(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    page = "<!DOCTYPE html><html><head><title>502</title></head>" + "x" * 5000 + "</html>"
    heketi.get(wire.BASE + "/clusters", status=502, body=page, content_type="text/html")
    with pytest.raises(HeketiAPIError) as caught:
        client.list_clusters()
    message = str(caught.value)
    assert message == (
        f"502: Heketi at {wire.BASE} answered 502 with an HTML page; "
        "is the URL right, or is a proxy in the way? (answer to GET /clusters)"
    )
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        "/clusters",
        502,
    )


def test_long_bodies_are_truncated(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/clusters", status=400, body="E" * 2000)
    with pytest.raises(BadRequest) as caught:
        client.list_clusters()
    assert len(caught.value.message) < 350
    assert caught.value.message.endswith("(1700 more characters)")


def test_empty_error_body_still_says_something(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/clusters", status=401, body="")
    with pytest.raises(Unauthorized, match="empty body"):
        client.list_clusters()


def test_non_json_success_is_unexpected_response(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(
        wire.BASE + "/clusters", status=200, body="<html>login</html>", content_type="text/html"
    )
    with pytest.raises(UnexpectedResponse, match="expected JSON"):
        client.list_clusters()


def test_json_of_the_wrong_shape_is_unexpected_response(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json={"id": wire.VOL})
    with pytest.raises(UnexpectedResponse):
        client.get_volume(wire.VOL)


def all_exceptions(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"status": 401, "body": "Invalid JWT token: signature is invalid"}),
    ("POST", {"status": 429, "body": "Server busy. Retry operation later."}),
    ("POST", {"status": 500, "body": "Failed to allocate new volume: No space"}),
    ("POST", {"status": 502, "body": "<html>bad gateway</html>"}),
    ("POST", {"body": requests.ConnectionError("Connection aborted.")}),
    ("POST", {"body": requests.ReadTimeout("read timed out")}),
    ("GET", {"status": 404, "body": "Id not found"}),
    ("GET", {"body": requests.ConnectTimeout("connect timed out")}),
]


@pytest.mark.parametrize(("method", "answer"), SCENARIOS)
def test_the_key_never_appears_in_any_exception(
    method: str,
    answer: dict[str, Any],
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    client = make_client(retry=RetryPolicy(attempts=2, backoff=0.0))
    heketi.add(method, wire.BASE + "/volumes", **answer)
    with pytest.raises(HeketiError) as caught:
        if method == "POST":
            client.create_volume(VolumeCreateRequest(1))
        else:
            client.list_volumes()
    for error in all_exceptions(caught.value):
        assert wire.KEY not in str(error) and wire.KEY not in repr(error)
        assert "bearer" not in str(error).lower()


def test_reprs_are_informative(wire: Any) -> None:
    assert (
        repr(Throttled(429, "busy", 2.0))
        == "Throttled(status=429, message='busy', retry_after=2.0)"
    )
    assert repr(NotFound(404, "Id not found")) == "NotFound(status=404, message='Id not found')"
    assert isinstance(OutcomeUnknown("x"), HeketiError)


# -- credentials echoed back --------------------------------------------------------

A_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhZG1pbiIsInFzaCI6ImFiYyJ9"
    ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbi0wMTIzNDU2Nzg5"
)


@pytest.mark.parametrize(
    "body",
    [
        f"upstream refused token {A_JWT}",
        f"GET /volumes HTTP/1.1\r\nHost: heketi\r\nAuthorization: Bearer {A_JWT}\r\n",
        f'{{"headers": {{"authorization": "bearer {A_JWT}"}}}}',
        "Authorization: Basic b3BzOnBhNTV3b3Jk\nmore",
        "x" * 280 + A_JWT,  # across the truncation point: redacted before cutting
    ],
)
def test_tokens_in_error_bodies_are_redacted(
    body: str, make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    """A debugging proxy that echoes the request would otherwise put a live bearer
    token into exception messages, events and logs."""
    client = make_client(retry=RetryPolicy(attempts=1))
    heketi.get(wire.BASE + "/volumes", status=400, body=body)
    with pytest.raises(BadRequest) as caught:
        client.list_volumes()
    for error in all_exceptions(caught.value):
        for text in (str(error), repr(error)):
            assert "eyJ" not in text and "c2lnbmF0dXJl" not in text
            assert "b3BzOnBhNTV3b3Jk" not in text
    assert "[redacted]" in caught.value.message


def test_our_own_token_echoed_by_a_proxy_is_redacted(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    def echo(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        return 502, {}, f"bad gateway; request was:\n{headers}"

    heketi.add_callback("POST", wire.BASE + "/volumes", callback=echo)
    with pytest.raises(OutcomeUnknown) as caught:
        client.create_volume(VolumeCreateRequest(1))
    sent = heketi.calls[0].request.headers["Authorization"].split(" ", 1)[1]
    for error in all_exceptions(caught.value):
        assert sent not in str(error) and sent.split(".")[1] not in str(error)


# -- attributes, classes, names -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, "db busy", ServerError),
        (502, "bad gateway", ServerError),
        (504, "timeout", ServerError),
        (503, "Service disabled for maintenance", ServiceUnavailable),
        (500, "Failed to allocate new volume: No space", NoSpace),
    ],
)
def test_5xx_answers_are_server_errors(
    status: int,
    body: str,
    kind: type[HeketiAPIError],
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    client = make_client(retry=RetryPolicy(attempts=1))
    heketi.get(wire.BASE + "/volumes", status=status, body=body)
    with pytest.raises(ServerError) as caught:
        client.list_volumes()
    assert type(caught.value) is kind
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        "/volumes",
        status,
    )
    assert str(caught.value).endswith("(answer to GET /volumes)")


def test_errors_without_an_answer_have_no_status(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    client = make_client(retry=RetryPolicy(attempts=1))
    heketi.get(wire.BASE + "/volumes", body=requests.ConnectionError("reset"))
    with pytest.raises(HeketiConnectionError) as caught:
        client.list_volumes()
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        "/volumes",
        None,
    )


def test_operation_failed_names_the_queue_poll(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=500, body="brick failed\n")
    with pytest.raises(OperationFailed) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        wire.QUEUE,
        500,
    )
    assert not isinstance(caught.value, HeketiAPIError)


def test_every_error_class_is_exported_at_the_top() -> None:
    classes = {
        name: value
        for name, value in vars(heketi_client.errors).items()
        if isinstance(value, type) and issubclass(value, HeketiError)
    }
    assert len(classes) >= 23
    for name, cls in classes.items():
        assert getattr(heketi_client, name) is cls, name
        assert name in heketi_client.__all__ and name in heketi_client.errors.__all__
    assert issubclass(heketi_client.ServiceUnavailable, heketi_client.ServerError)
    assert issubclass(heketi_client.AllocationFailed, heketi_client.ServerError)
    assert issubclass(heketi_client.ForeignLocation, heketi_client.OutcomeUnknown)


def test_the_public_surface_is_small() -> None:
    """Internal modules are underscored; the public ones are the package, errors,
    models and retries (the provisioner imports those three by module path)."""
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(heketi_client.__path__)}
    assert {m for m in modules if not m.startswith("_")} == {"errors", "models", "retries"}
    for name in heketi_client.__all__:
        assert getattr(heketi_client, name) is not None
