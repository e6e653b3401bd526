"""StorageClass parameters: every rule of the COMPATIBILITY.md table."""

from __future__ import annotations

import pytest

from provisioner.gluster.parameter_values import GID_MAX_DEFAULT, ParameterError, VolumeDurability
from provisioner.gluster.parameters import GlusterClassParameters, parse_class_parameters

URL = "http://heketi.example:8080"
KEY = "Sup3r-Secret-Heketi-Key"
CLUSTER = "0123456789abcdef0123456789abcdef"


def with_url(**extra: str) -> dict[str, str]:
    return {"resturl": URL, **extra}


INVALID: list[tuple[dict[str, str], str]] = [
    ({}, "resturl"),
    ({"resturl": ""}, "resturl"),
    ({"resturl": "   "}, "resturl"),
    ({"resturl": "heketi:8080"}, "resturl"),
    ({"resturl": "ftp://heketi:8080"}, "resturl"),
    ({"resturl": "http://"}, "resturl"),
    ({"resturl": "http://:8080"}, "resturl"),
    ({"resturl": "http://heketi:notaport"}, "resturl"),
    ({"resturl": "http://heketi:8080/?x=1"}, "resturl"),
    ({"resturl": f"http://admin:{KEY}@heketi:8080"}, "resturl"),
    ({"ResturL": "file:///etc/passwd"}, "ResturL"),
    (with_url(bogus="1"), "bogus"),
    (with_url(restuserkeyy=KEY), "restuserkeyy"),
    (with_url(RESTURL=URL), "RESTURL"),
    (with_url(secretName="heketi"), "secretName"),
    (with_url(secretNamespace="default"), "secretNamespace"),
    (with_url(clusterid="abc"), "clusterid"),
    (with_url(clusterid=CLUSTER.upper()), "clusterid"),
    (with_url(clusterid=CLUSTER + "0"), "clusterid"),
    (with_url(clusterid="g" * 32), "clusterid"),
    (with_url(gidMin="abc"), "gidMin"),
    (with_url(gidMin=""), "gidMin"),
    (with_url(gidMin="1999"), "gidMin"),
    (with_url(gidMin="-5"), "gidMin"),
    (with_url(gidMin="2e3"), "gidMin"),
    (with_url(gidMin="2_000"), "gidMin"),
    (with_url(gidMin="2147483647"), "gidMin"),
    (with_url(gidMax="4294967295"), "gidMax"),
    (with_url(gidMax="2147483648"), "gidMax"),
    (with_url(gidMin="+-2000"), "gidMin"),
    (with_url(gidMax="1999"), "gidMax"),
    (with_url(gidMin="5000", gidMax="4999"), "gidMax"),
    (with_url(gidmax="x"), "gidmax"),
    (with_url(volumetype="replicate:4"), "volumetype"),
    (with_url(volumetype="replicate:-1"), "volumetype"),
    (with_url(volumetype="replicate:x"), "volumetype"),
    (with_url(volumetype="disperse"), "volumetype"),
    (with_url(volumetype="disperse:4"), "volumetype"),
    (with_url(volumetype="disperse:3:1"), "volumetype"),
    (with_url(volumetype="mirror"), "volumetype"),
    (with_url(volumenameprefix="my_vol"), "volumenameprefix"),
    (with_url(volumenameprefix="my.vol"), "volumenameprefix"),
    (with_url(volumenameprefix="vol/1"), "volumenameprefix"),
    (with_url(snapfactor="abc"), "snapfactor"),
    (with_url(snapfactor="0.5"), "snapfactor"),
    (with_url(snapfactor="101"), "snapfactor"),
    (with_url(snapfactor="nan"), "snapfactor"),
    (with_url(snapfactor="inf"), "snapfactor"),
    (with_url(customepnameprefix="a" * 27), "customepnameprefix"),
    (with_url(customepnameprefix="Gluster"), "customepnameprefix"),
    (with_url(customepnameprefix="1gluster"), "customepnameprefix"),
    (with_url(customepnameprefix="gluster_ep"), "customepnameprefix"),
    (with_url(customepnameprefix="-gluster"), "customepnameprefix"),
]


@pytest.mark.parametrize(("params", "parameter"), INVALID)
def test_invalid_parameters_name_the_parameter(params: dict[str, str], parameter: str) -> None:
    params = (
        {"restuser": "admin", "restuserkey": KEY, **params} if "restuser" not in params else params
    )
    with pytest.raises(ParameterError) as info:
        parse_class_parameters(params)
    message = str(info.value)
    assert info.value.parameter == parameter
    assert message.startswith(f'StorageClass parameter "{parameter}": ')
    assert KEY not in message
    assert KEY not in repr(info.value)
    assert info.value.__cause__ is None


def test_enough_invalid_cases() -> None:
    assert len(INVALID) >= 40


# Classes the in-tree provisioner accepted keep provisioning (COMPATIBILITY.md's rule):
# (parameters, field, value it parses to, the warning that says what was doubtful).
ACCEPTED_INTREE: list[tuple[dict[str, str], str, object, str]] = [
    (with_url(gidMax="2147483647"), "gid_max", 2147483646, "largest GID Heketi accepts"),
    (with_url(gidMin="+3000"), "gid_min", 3000, ""),
    (with_url(restuser="root"), "rest_user", "root", "neither \"admin\" nor \"user\""),
    (with_url(restuser=KEY, restuserkey=KEY), "rest_user", KEY, "neither"),
    (with_url(restauthenabled="false", secretName="heketi"), "secret_name", None, "deprecated"),
    (with_url(restauthenabled="false", secretNamespace="x"), "secret_namespace", None, ""),
    (with_url(restauthenabled="false", restuser="anyone"), "rest_user", "", "deprecated"),
    (with_url(clusterid=f"{CLUSTER},"), "cluster_ids", (CLUSTER,), "empty entry"),
    (with_url(clusterid=f" {CLUSTER} ,,{CLUSTER}"), "cluster_ids", (CLUSTER,), "empty entry"),
    (with_url(volumeoptions="client.ssl on,"), "volume_options", ("client.ssl on",), "empty"),
    (with_url(volumeoptions=" client.ssl on , server.ssl  on "), "volume_options",
     ("client.ssl on", "server.ssl on"), ""),
    (with_url(volumeoptions="client.ssl"), "volume_options", ("client.ssl",), "has no value"),
    (with_url(volumetype="replicate:0"), "durability", VolumeDurability("replicate", replica=3),
     ""),
    (with_url(volumetype="replicate:3:1"), "durability",
     VolumeDurability("replicate", replica=3), "extra ones are ignored"),
    (with_url(volumetype="disperse:4:2:1"), "durability",
     VolumeDurability("disperse", data=4, redundancy=2), "extra ones are ignored"),
    (with_url(volumetype="none:1"), "durability", VolumeDurability("none"), "ignored"),
    (with_url(volumetype=" replicate:2 "), "durability", VolumeDurability("replicate", replica=2),
     ""),
]  # fmt: skip


@pytest.mark.parametrize(("params", "field", "value", "warning"), ACCEPTED_INTREE)
def test_classes_intree_accepted_keep_provisioning(
    params: dict[str, str], field: str, value: object, warning: str
) -> None:
    parsed = parse_class_parameters(params)
    assert getattr(parsed, field) == value
    assert warning in " | ".join(parsed.warnings)
    assert KEY not in " | ".join(parsed.warnings)


def test_long_values_are_truncated_in_messages() -> None:
    with pytest.raises(ParameterError) as info:
        parse_class_parameters(with_url(volumetype="x" * 500))
    assert "x" * 64 in str(info.value)
    assert "x" * 65 not in str(info.value)


def test_unknown_key_suggests_the_close_match() -> None:
    with pytest.raises(ParameterError, match='did you mean "resturl"'):
        parse_class_parameters({"resturi": URL})


def test_key_value_never_leaks_even_if_pasted_into_another_field() -> None:
    with pytest.raises(ParameterError) as info:
        parse_class_parameters(with_url(restuserkey="0.5", snapfactor="0.5"))
    assert "0.5" not in str(info.value)
    assert "<redacted>" in str(info.value)


def test_defaults() -> None:
    params = parse_class_parameters({"resturl": URL})
    assert params == GlusterClassParameters(rest_url=URL)
    assert params.auth_enabled is True
    assert params.rest_user == ""
    assert params.rest_user_key == ""
    assert params.secret_namespace is None and params.secret_name is None
    assert params.cluster_ids == ()
    assert (params.gid_min, params.gid_max) == (2000, 2147483646)
    assert params.durability == VolumeDurability("replicate", replica=3)
    assert params.volume_options == ()
    assert params.volume_name_prefix is None
    assert params.snap_factor is None
    assert params.endpoints_prefix == "glusterfs-dynamic"
    assert params.warnings == ()


def test_full_valid_class() -> None:
    params = parse_class_parameters(
        {
            "RESTURL": "https://heketi.storage.svc:8443/api",
            "restUser": "admin",
            "secretNamespace": "storage",
            "secretName": "heketi-secret",
            "clusterid": f" {CLUSTER} , {'f' * 32},{CLUSTER}",
            "gidMin": "40000",
            "gidMax": "50000",
            "volumetype": "Disperse:4:2",
            "volumeoptions": "client.ssl on, server.ssl  on ",
            "volumenameprefix": "dept-dev",
            "snapfactor": "10",
            "customepnameprefix": "my-ep",
        }
    )
    assert params.rest_url == "https://heketi.storage.svc:8443/api"
    assert params.rest_user == "admin"
    assert (params.secret_namespace, params.secret_name) == ("storage", "heketi-secret")
    assert params.uses_secret
    assert params.cluster_ids == (CLUSTER, "f" * 32)
    assert (params.gid_min, params.gid_max) == (40000, 50000)
    assert params.durability == VolumeDurability("disperse", data=4, redundancy=2)
    assert params.volume_options == ("client.ssl on", "server.ssl on")
    assert params.volume_name_prefix == "dept-dev"
    assert params.snap_factor == 10.0
    assert params.endpoints_prefix == "my-ep"
    assert params.warnings == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("replicate", VolumeDurability("replicate", replica=3)),
        ("replicate:1", VolumeDurability("replicate", replica=1)),
        ("replicate:2", VolumeDurability("replicate", replica=2)),
        ("none", VolumeDurability("none")),
        ("NONE", VolumeDurability("none")),
        ("disperse:2:1", VolumeDurability("disperse", data=2, redundancy=1)),
        ("disperse:8:3", VolumeDurability("disperse", data=8, redundancy=3)),
        ("disperse:8:4", VolumeDurability("disperse", data=8, redundancy=4)),
        ("", VolumeDurability("replicate", replica=3)),
    ],
)
def test_volume_types(value: str, expected: VolumeDurability) -> None:
    assert parse_class_parameters(with_url(volumetype=value)).durability == expected


def test_gid_edges() -> None:
    params = parse_class_parameters(with_url(gidMin="2000", gidMax=str(GID_MAX_DEFAULT)))
    assert (params.gid_min, params.gid_max) == (2000, 2147483646)
    single = parse_class_parameters(with_url(gidMin="3000", gidMax="3000"))
    assert (single.gid_min, single.gid_max) == (3000, 3000)


def test_gid_max_past_32_bits_is_refused_as_intree_did() -> None:
    with pytest.raises(ParameterError, match="32-bit"):
        parse_class_parameters(with_url(gidMax="2147483648"))


def test_snapfactor_bounds_are_inclusive() -> None:
    assert parse_class_parameters(with_url(snapfactor="1")).snap_factor == 1.0
    assert parse_class_parameters(with_url(snapfactor="100")).snap_factor == 100.0
    assert parse_class_parameters(with_url(snapfactor="1.5")).snap_factor == 1.5


def test_endpoints_prefix_of_26_characters_is_accepted() -> None:
    prefix = "a" * 25 + "-"
    assert parse_class_parameters(with_url(customepnameprefix=prefix)).endpoints_prefix == prefix


def test_restuserkey_is_deprecated_and_hidden_from_repr() -> None:
    params = parse_class_parameters(with_url(restuser="admin", restuserkey=KEY))
    assert params.rest_user_key == KEY
    assert KEY not in repr(params)
    assert len(params.warnings) == 1
    assert "restuserkey" in params.warnings[0] and "deprecated" in params.warnings[0]
    assert all(KEY not in w for w in params.warnings)


def test_secret_wins_over_restuserkey() -> None:
    params = parse_class_parameters(
        with_url(restuser="admin", restuserkey=KEY, secretNamespace="ns", secretName="s")
    )
    assert params.uses_secret
    assert any("ignored" in w for w in params.warnings)


@pytest.mark.parametrize("value", ["false", "no", "0", "", "False "])
def test_restauthenabled_other_than_true_clears_credentials(value: str) -> None:
    params = parse_class_parameters(
        with_url(
            restauthenabled=value,
            restuser="admin",
            restuserkey=KEY,
            secretNamespace="ns",
            secretName="s",
        )
    )
    assert params.auth_enabled is False
    assert (params.rest_user, params.rest_user_key) == ("", "")
    assert (params.secret_namespace, params.secret_name) == (None, None)
    assert any("restauthenabled" in w and "deprecated" in w for w in params.warnings)


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_restauthenabled_true_keeps_credentials(value: str) -> None:
    params = parse_class_parameters(with_url(restauthenabled=value, restuser="user"))
    assert params.auth_enabled is True
    assert params.rest_user == "user"


def test_key_without_user_warns() -> None:
    params = parse_class_parameters(with_url(secretNamespace="ns", secretName="s"))
    assert any("restuser is empty" in w for w in params.warnings)


def test_params_are_frozen() -> None:
    params = parse_class_parameters({"resturl": URL})
    with pytest.raises(AttributeError):
        params.rest_url = "http://other"  # type: ignore[misc]


def test_durability_to_heketi() -> None:
    models = pytest.importorskip("heketi_client.models")
    heketi = VolumeDurability("disperse", data=4, redundancy=2).to_heketi()
    assert isinstance(heketi, models.Durability)
    assert str(heketi) == "disperse:4:2"
    assert str(VolumeDurability("replicate", replica=2).to_heketi()) == "replicate:2"
    assert str(VolumeDurability("none").to_heketi()) == "none"


def test_padded_key_is_scrubbed_too() -> None:
    with pytest.raises(ParameterError) as info:
        parse_class_parameters(with_url(restuserkey="  7.5  ", volumetype="replicate:7.5"))
    assert "7.5" not in str(info.value)
