"""TLS to PostgreSQL as the platform configures it: the server's certificate is verified.

A private PostgreSQL (started and stopped here) serves a certificate for `localhost` issued by a
CA generated for the test. The service connects the way it does on EKS: credentials from Secrets
Manager (moto), DB_HOST, DB_SSLMODE, DB_SSLROOTCERT. It must succeed with the right CA and name,
and refuse an unknown CA or a certificate for another name; with the platform's own settings
(RDS's CA bundle) the test server is an impostor and must be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from agent_service.config import ConfigError, Settings, load_settings
from agent_service.storage.db import DatabaseUnavailable, connect, create_engine
from agent_service.storage.secrets import SecretCredentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws
from sqlalchemy import text

from bench.faults import PrivatePostgres
from infra.components import workload

ROOT = Path(__file__).resolve().parents[2]
RDS_BUNDLE = ROOT / "service" / "certs" / "rds-global-bundle.pem"

pytestmark = pytest.mark.slow


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that issued the server's certificate
    other_ca: Path  # a CA the server has nothing to do with
    server_cert: Path
    server_key: Path


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    ca_cert, ca_key = _ca("agent-platform test CA")
    other_cert, _ = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        directory / "ca.pem", directory / "other-ca.pem", directory / "server.crt",
        directory / "server.key",
    )  # fmt: skip
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other_cert))
    pki.server_cert.write_bytes(_pem(server))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    directory = Path(tempfile.mkdtemp(prefix="agent-tls-pki-"))
    try:
        yield make_pki(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_postgres(pki: Pki) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL on a free loopback port serving the test CA's certificate."""
    server = PrivatePostgres()
    try:
        server.init()
        data = server.root / "data"
        for source, name in ((pki.server_cert, "server.crt"), (pki.server_key, "server.key")):
            shutil.copy(source, data / name)
            (data / name).chmod(0o600)  # PostgreSQL refuses a key others can read
            if os.geteuid() == 0:
                shutil.chown(data / name, "postgres", "postgres")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def secret_arn() -> Iterator[str]:
    """The RDS-managed secret, in moto's Secrets Manager."""
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        created = client.create_secret(
            Name="rds!db-test", SecretString=json.dumps({"username": "postgres", "password": "x"})
        )
        yield created["ARN"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def settings(server: PrivatePostgres, arn: str, host: str, mode: str, ca: Path) -> Settings:
    return load_settings(
        db_secret_arn=arn, db_host=host, db_port=server.port, db_name="postgres",
        db_sslmode=mode, db_sslrootcert=str(ca), aws_region="us-east-1",
    )  # fmt: skip


async def encrypted_session(config: Settings) -> bool:
    """Connect as the service does; whether the server sees the session as TLS."""
    engine = create_engine(config, SecretCredentials(config.db_secret_arn, "us-east-1"))
    try:
        async with connect(engine) as conn:
            query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            return (await conn.execute(text(query))).scalar_one()
    finally:
        await engine.dispose()


async def refusal(config: Settings) -> ssl.SSLCertVerificationError:
    with pytest.raises(DatabaseUnavailable) as refused:
        await encrypted_session(config)
    cause = refused.value.__cause__
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ssl.SSLCertVerificationError), repr(refused.value.__cause__)
    return cause


async def test_verify_full_connects_over_tls_with_the_right_ca_and_name(
    tls_postgres, pki, secret_arn
):
    config = settings(tls_postgres, secret_arn, "localhost", "verify-full", pki.ca)
    assert await encrypted_session(config) is True


async def test_verify_full_refuses_a_server_whose_ca_it_does_not_trust(
    tls_postgres, pki, secret_arn
):
    config = settings(tls_postgres, secret_arn, "localhost", "verify-full", pki.other_ca)
    error = await refusal(config)
    assert error.verify_message == "unable to get local issuer certificate"


async def test_verify_full_refuses_a_certificate_for_another_name(tls_postgres, pki, secret_arn):
    # The same server reached as 127.0.0.1: its certificate names only localhost.
    config = settings(tls_postgres, secret_arn, "127.0.0.1", "verify-full", pki.ca)
    error = await refusal(config)
    assert error.verify_message == "IP address mismatch, certificate is not valid for '127.0.0.1'."


async def test_verify_ca_checks_the_ca_but_not_the_name(tls_postgres, pki, secret_arn):
    assert await encrypted_session(
        settings(tls_postgres, secret_arn, "127.0.0.1", "verify-ca", pki.ca)
    )
    await refusal(settings(tls_postgres, secret_arn, "127.0.0.1", "verify-ca", pki.other_ca))


async def test_the_platforms_settings_refuse_a_server_rds_did_not_certify(tls_postgres, secret_arn):
    # What the ConfigMap gives the pods (tests/infra/test_workload.py checks that it does); the
    # bundle path is the image's copy of RDS_BUNDLE (test_rds_ca_bundle.py checks the copy).
    assert workload.DB_SSLROOTCERT == "/app/certs/rds-global-bundle.pem"
    config = load_settings(
        db_secret_arn=secret_arn, db_host="localhost", db_port=tls_postgres.port,
        db_name="postgres", db_sslmode=workload.DB_SSLMODE, db_sslrootcert=str(RDS_BUNDLE),
        aws_region="us-east-1",
    )  # fmt: skip
    error = await refusal(config)
    assert error.verify_message == "unable to get local issuer certificate"


def test_a_verifying_mode_without_a_ca_file_stops_the_service_naming_the_variable(tmp_path):
    base = {"db_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x", "db_host": "db"}
    with pytest.raises(ConfigError, match=r"^DB_SSLROOTCERT: required when DB_SSLMODE=verify-full"):
        load_settings(**base, db_sslmode="verify-full")
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=rf"^DB_SSLROOTCERT='{missing}': no such file"):
        load_settings(**base, db_sslmode="verify-ca", db_sslrootcert=str(missing))
    assert load_settings(**base, db_sslmode="require").db_sslrootcert is None
