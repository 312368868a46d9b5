"""The vendored RDS CA bundle: the file we reviewed, still valid, shipped where the pods look."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from infra.components import workload

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "service" / "certs" / "rds-global-bundle.pem"
# mdevendr/lambda-rds-design-patterns, commit ba6194c2d20bc5448ff3e70865dd8dd2ea24ca2c,
# path lambda/global-bundle.pem (service/certs/README.md)
SHA256 = "f84aa71a4b776243b2a20a29829c8d9ec3ea202c4da894d4836a1b3fc52cefe2"


def certificates() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(BUNDLE.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_the_bundle_is_the_reviewed_file():
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == SHA256
    assert SHA256 in (BUNDLE.parent / "README.md").read_text()


def test_no_certificate_expires_within_a_year():
    horizon = datetime.now(UTC) + timedelta(days=365)
    expiring = {common_name(c): c.not_valid_after_utc for c in certificates()}
    assert {name: end for name, end in expiring.items() if end <= horizon} == {}


def test_the_bundle_holds_only_ca_roots_and_the_projects_region():
    certs = certificates()
    names = [common_name(c) for c in certs]
    assert len(certs) == 109
    for cert in certs:
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        assert cert.subject == cert.issuer  # self-signed roots only
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names  # rds-ca-rsa2048-g1, the default
    assert sum(bool(re.fullmatch(r"Amazon RDS .+ Root CA (RSA2048|RSA4096|ECC384) G1", n))
               for n in names) == 108  # fmt: skip
    assert "Amazon Root CA 1" in names  # RDS Proxy endpoints


def test_the_image_ships_the_bundle_where_the_platform_points_the_service():
    dockerfile = (ROOT / "service" / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert f"COPY certs/rds-global-bundle.pem {workload.DB_SSLROOTCERT}\n" in final_stage
    assert workload.DB_SSLROOTCERT == "/app/certs/rds-global-bundle.pem"
    assert workload.DB_SSLMODE == "verify-full"
