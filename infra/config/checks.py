"""Value checks for stack configuration: each returns True when AWS / Kubernetes would accept.

Pure functions of one value, so `infra.config` can name the key and the allowed values in the
error, and tests can exercise each rule directly.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

# Kubernetes minors with a row in infra/config/kubernetes.py (support dates, node release,
# add-on versions) and a cluster-autoscaler of the same minor (infra/components/addons.py).
from infra.config.kubernetes import DEFAULT_KUBERNETES_VERSION, KUBERNETES_VERSIONS  # noqa: F401

RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
VPC_PREFIX_RANGE = (16, 20)  # /20 still leaves /26 public and database subnets (see network.py)

POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17", "18")
# Zones EKS cannot place a cluster in (by zone ID: names map to IDs differently per account),
# https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html ("Subnet requirements").
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_SIZE = r"(?:nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal(?:-[0-9]+xl)?)"
_FAMILY = r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*"
_EC2_TYPE = re.compile(rf"^{_FAMILY}\.{_SIZE}$")
_RDS_CLASS = re.compile(rf"^db\.{_FAMILY}\.{_SIZE}$")
_CACHE_TYPE = re.compile(rf"^cache\.{_FAMILY}\.{_SIZE}$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$")
_PARTITION = r"arn:aws(?:-cn|-us-gov)?"
_IAM_ROLE_ARN = re.compile(
    rf"^{_PARTITION}:iam::[0-9]{{12}}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}$"
)
_ACM_ARN = re.compile(
    rf"^{_PARTITION}:acm:(?P<region>[a-z0-9-]+):[0-9]{{12}}:certificate/[0-9a-f-]{{36}}$"
)
_QUANTITY = re.compile(
    r"^(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
)
_SUFFIX = {
    "": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
# docker/distribution reference grammar, without the rarely used IPv6 registry form.
_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*"
_IMAGE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_NAME_PART}(?:/{_NAME_PART})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_VPC_ID = re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DAILY_WINDOW = re.compile(r"^(?P<a>[0-2][0-9]:[0-5][0-9])-(?P<b>[0-2][0-9]:[0-5][0-9])$")
_WEEKLY_WINDOW = re.compile(
    r"^(?P<da>mon|tue|wed|thu|fri|sat|sun):(?P<a>[0-2][0-9]:[0-5][0-9])"
    r"-(?P<db>mon|tue|wed|thu|fri|sat|sun):(?P<b>[0-2][0-9]:[0-5][0-9])$"
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK = 7 * 24 * 60


def ipv4_cidr(value: str) -> bool:
    """An IPv4 network in canonical form (no host bits set)."""
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True


def vpc_cidr(value: str) -> bool:
    """A private (RFC 1918) IPv4 network of /16 to /20."""
    if not ipv4_cidr(value):
        return False
    net = ipaddress.IPv4Network(value)
    lo, hi = VPC_PREFIX_RANGE
    return lo <= net.prefixlen <= hi and any(net.subnet_of(block) for block in RFC1918)


def vpc_id(value: str) -> bool:
    """A VPC id such as vpc-0a1b2c3d4e5f60718."""
    return bool(_VPC_ID.match(value))


def subnet_id(value: str) -> bool:
    """A subnet id such as subnet-0a1b2c3d4e5f60718."""
    return bool(_SUBNET_ID.match(value))


def region(value: str) -> bool:
    """An AWS region code such as us-east-1."""
    return bool(_REGION.match(value))


def partition(region_code: str) -> str:
    """The ARN partition a region belongs to."""
    if region_code.startswith("cn-"):
        return "aws-cn"
    if region_code.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def ec2_instance_type(value: str) -> bool:
    """An EC2 instance type such as t3.large or m7g.2xlarge."""
    return bool(_EC2_TYPE.match(value))


def arm_instance_type(value: str) -> bool:
    """A Graviton (arm64) instance type: a1, or a `g` right after the generation (m7g, c6gn)."""
    family = value.split(".", 1)[0]
    return family == "a1" or bool(re.match(r"^[a-z]+[0-9]+g", family))


def rds_instance_class(value: str) -> bool:
    """An RDS instance class such as db.t3.medium."""
    return bool(_RDS_CLASS.match(value))


def cache_node_type(value: str) -> bool:
    """An ElastiCache node type such as cache.t3.micro."""
    return bool(_CACHE_TYPE.match(value))


def iam_role_arn(value: str) -> bool:
    """An IAM role ARN, optionally with a path."""
    return bool(_IAM_ROLE_ARN.match(value))


def acm_certificate_arn(value: str) -> bool:
    """An ACM certificate ARN."""
    return bool(_ACM_ARN.match(value))


def acm_certificate_region(value: str) -> str:
    """The region an ACM certificate ARN lives in (call only on a valid ARN)."""
    match = _ACM_ARN.match(value)
    if match is None:
        raise ValueError(f"not an ACM certificate ARN: {value!r}")
    return match.group("region")


def quantity(value: str) -> Decimal | None:
    """A Kubernetes resource quantity (500m, 1, 512Mi, 1Gi) as a number, or None if invalid."""
    match = _QUANTITY.match(value)
    if match is None:
        return None
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation:
        return None
    return number * _SUFFIX[match.group("suffix") or ""]


def image_reference(value: str) -> bool:
    """A container image reference such as ghcr.io/org/agent:1.2.3 (255 characters at most)."""
    return len(value) <= 255 and bool(_IMAGE.match(value))


def image_tag(value: str) -> str | None:
    """The tag of an image reference (None when it has none and would mean `latest`)."""
    name = value.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def pinned_image(value: str) -> bool:
    """An image reference pinned to a digest or to an explicit tag other than `latest`."""
    tag = image_tag(value)
    return "@sha256:" in value or (tag is not None and tag != "latest")


def http_url(value: str) -> bool:
    """An absolute http(s) URL with a host."""
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and " " not in value


def label(value: str) -> bool:
    """A short identifier: letters, digits, '.', '_' and '-', 1 to 64 characters."""
    return bool(_LABEL.match(value))


def _minutes(hhmm: str) -> int | None:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return hours * 60 + minutes if hours < 24 else None


def daily_window(value: str) -> tuple[int, int] | None:
    """`hh:mm-hh:mm` (UTC) as minutes of the day, if it lasts 30 minutes or more."""
    match = _DAILY_WINDOW.match(value)
    if match is None:
        return None
    start, end = _minutes(match.group("a")), _minutes(match.group("b"))
    if start is None or end is None or (end - start) % (24 * 60) < 30:
        return None
    return start, end


def weekly_window(value: str) -> tuple[int, int] | None:
    """`ddd:hh:mm-ddd:hh:mm` (UTC) as minutes of the week, if it lasts 30 minutes or more."""
    match = _WEEKLY_WINDOW.match(value)
    if match is None:
        return None
    start, end = _minutes(match.group("a")), _minutes(match.group("b"))
    if start is None or end is None:
        return None
    start += _DAYS.index(match.group("da")) * 24 * 60
    end += _DAYS.index(match.group("db")) * 24 * 60
    if (end - start) % _WEEK < 30:
        return None
    return start, end


def windows_overlap(daily: tuple[int, int], weekly: tuple[int, int]) -> bool:
    """Whether a daily window falls, on any day, inside a weekly window (both may wrap)."""
    day = 24 * 60
    w_start, w_len = weekly[0], (weekly[1] - weekly[0]) % _WEEK
    d_start, d_len = daily[0], (daily[1] - daily[0]) % day
    weekly_spans = [(w_start + k * _WEEK, w_start + k * _WEEK + w_len) for k in (-1, 0, 1)]
    daily_spans = [(d_start + n * day, d_start + n * day + d_len) for n in range(-8, 16)]
    return any(a < d and c < b for a, b in weekly_spans for c, d in daily_spans)
