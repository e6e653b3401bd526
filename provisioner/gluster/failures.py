"""Heketi failures as ``ProvisionError`` messages a cluster operator can act on.

The message ends up in a claim's (or a PV's) event, read by someone who may never
have seen Heketi's API. So each one says what Heketi answered (status and text, as
Heketi gave them) and, where we know, what to change. The outcome is decided here
too: retry only where repeating the same request may help.

The key never reaches these messages: ``heketi_client`` keeps request headers out of
its exceptions, and ``scrub`` removes it anyway as a last line of defence.
"""

from __future__ import annotations

from heketi_client.errors import (
    AllocationFailed,
    BadRequest,
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    HeketiTimeout,
    NoSpace,
    NotFound,
    OperationFailed,
    OutcomeUnknown,
    Throttled,
    Unauthorized,
)
from provisioner.controller.contract import Outcome, ProvisionError

__all__ = ["delete_failure", "expand_failure", "provision_failure", "scrub", "user_role_hint"]

_ADMIN_REQUIRED = "Administrator access required"


def scrub(message: str, key: str) -> str:
    return message.replace(key, "<redacted>") if key else message


def refused_credentials(err: BaseException | None) -> bool:
    """True when a failure came from Heketi's 401, however it was wrapped since
    (``from None`` hides the cause but keeps ``__context__``)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, Unauthorized):
            return True
        err = err.__cause__ or err.__context__
    return False


def user_role_hint(err: BaseException | None, user: str) -> bool:
    """True when the failure is Heketi's ``user`` role hitting an admin-only path.

    The client reports a 401 on the queue poll as ``OutcomeUnknown`` (the create was
    accepted) with the ``Unauthorized`` as its cause, so the chain is followed.
    """
    while err is not None:
        if isinstance(err, Unauthorized) and user == "user" and _ADMIN_REQUIRED in err.message:
            return True
        err = err.__cause__
    return False


def _common(err: HeketiError, *, url: str, user: str, doing: str) -> ProvisionError | None:
    """Failures that read the same whatever we were doing."""
    if user_role_hint(err, user):
        return ProvisionError(
            f'Heketi answered 401 {_ADMIN_REQUIRED!r} while {doing}: Heketi\'s "user" role '
            "may only submit a volume create, it cannot follow the asynchronous operation "
            "or read and delete volumes; the StorageClass must use restuser: admin with "
            "the admin key",
            outcome=Outcome.WAIT_FOR_CHANGE,
        )
    if isinstance(err, Unauthorized):
        return ProvisionError(
            f"Heketi at {url} refused the credentials while {doing} (401 {err.message}); "
            "check restuser and the key in the StorageClass secret"
        )
    if isinstance(err, Throttled):
        return ProvisionError(
            f"Heketi at {url} is busy (429 {err.message}) while {doing}; will retry"
        )
    if isinstance(err, HeketiConnectionError):
        return ProvisionError(f"cannot reach Heketi at {url}: {err}")
    if isinstance(err, HeketiTimeout):
        return ProvisionError(f"Heketi at {url} did not answer in time while {doing}: {err}")
    if isinstance(err, OutcomeUnknown):
        return ProvisionError(
            f"lost track of Heketi at {url} while {doing} ({err}); the next attempt "
            "checks what Heketi did before doing anything again"
        )
    return None


def provision_failure(
    err: HeketiError,
    *,
    url: str,
    user: str,
    key: str,
    size_gib: int,
    durability: str,
    doing: str = "creating the volume",
) -> ProvisionError:
    failure = _common(err, url=url, user=user, doing=doing)
    if failure is None:
        failure = _provision_specific(err, url=url, size_gib=size_gib, durability=durability)
    failure.message = scrub(failure.message, key)
    failure.args = (failure.message,)
    return failure


def _provision_specific(
    err: HeketiError, *, url: str, size_gib: int, durability: str
) -> ProvisionError:
    if isinstance(err, NoSpace):
        return ProvisionError(
            f"Heketi has no room for a {size_gib} GiB {durability} volume "
            f"({err.status} {err.message}); add devices, free space, or ask for less"
        )
    if isinstance(err, AllocationFailed):
        return ProvisionError(f"Heketi could not allocate the volume ({err.status} {err.message})")
    if isinstance(err, BadRequest):
        return ProvisionError(
            f"Heketi rejected the volume request ({err.status} {err.message}); "
            "check the StorageClass parameters",
            outcome=Outcome.WAIT_FOR_CHANGE,
        )
    if isinstance(err, OperationFailed):
        return ProvisionError(
            f"Heketi failed to create the volume and rolled it back: {err.message}"
        )
    if isinstance(err, HeketiAPIError):
        return ProvisionError(f"Heketi at {url} answered {err.status}: {err.message}")
    return ProvisionError(f"Heketi at {url}: {err}")


def delete_failure(
    err: HeketiError, *, url: str, user: str, key: str, volume_id: str, doing: str = ""
) -> ProvisionError:
    doing = doing or f"deleting volume {volume_id}"
    failure = _common(err, url=url, user=user, doing=doing)
    if failure is None:
        if isinstance(err, OperationFailed):
            failure = ProvisionError(f"Heketi failed {doing}: {err.message}")
        elif isinstance(err, HeketiAPIError):
            failure = ProvisionError(
                f"Heketi at {url} answered {err.status} while {doing}: {err.message}"
            )
        else:
            failure = ProvisionError(f"Heketi at {url} while {doing}: {err}")
    # Always worth retrying: the PV stays (with its finalizer) until this succeeds.
    failure.outcome = Outcome.RETRY
    failure.message = scrub(failure.message, key)
    failure.args = (failure.message,)
    return failure


def expand_failure(
    err: HeketiError, *, url: str, user: str, key: str, volume_id: str, size_gib: int, by_gib: int
) -> ProvisionError:
    """A failed grow (``by_gib`` 0: reading the size first failed): the claim keeps its
    size, and the message says what would help."""
    if by_gib:
        doing = f"growing volume {volume_id} by {by_gib} GiB to {size_gib} GiB"
    else:
        doing = f"reading the size of volume {volume_id} before growing it to {size_gib} GiB"
    failure = _common(err, url=url, user=user, doing=doing) or _expand_specific(
        err, url=url, volume_id=volume_id, doing=doing
    )
    failure.message = scrub(failure.message, key)
    failure.args = (failure.message,)
    return failure


def _expand_specific(err: HeketiError, *, url: str, volume_id: str, doing: str) -> ProvisionError:
    if isinstance(err, NoSpace):
        return ProvisionError(
            f"Heketi has no room for {doing} ({err.status} {err.message}); the claim keeps "
            "its current size; add devices or free space in Heketi's cluster, or ask for less"
        )
    if isinstance(err, AllocationFailed):
        return ProvisionError(
            f"Heketi could not allocate the space for {doing} ({err.status} {err.message}); "
            "the claim keeps its current size; ask for less, or add devices to Heketi's "
            "cluster (a volume has at most 32 bricks, its existing ones included)"
        )
    if isinstance(err, NotFound):
        return ProvisionError(
            f"Heketi at {url} has no volume {volume_id} ({err.status} {err.message}); the PV "
            "names a volume that is gone",
            outcome=Outcome.WAIT_FOR_CHANGE,
        )
    if isinstance(err, OperationFailed):
        return ProvisionError(f"Heketi failed {doing} and rolled it back: {err.message}")
    if isinstance(err, HeketiAPIError):
        return ProvisionError(f"Heketi at {url} answered {err.status} while {doing}: {err.message}")
    return ProvisionError(f"Heketi at {url} while {doing}: {err}")
