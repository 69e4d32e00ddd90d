"""``flask certificates hsm-init`` sets the token, the key and the certificates up once: a second
run changes nothing; the signer certificate chains to the city CA and holds the HSM's key."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from portal.certificates import hsm


def test_hsm_init_is_idempotent(app, city_hsm):
    runner = app.test_cli_runner()
    before = {p.name: p.read_bytes() for p in city_hsm.directory.glob("*.pem")}
    for _ in range(2):
        result = runner.invoke(args=["certificates", "hsm-init"])
        assert result.exit_code == 0, result.output
        assert "Certificate HSM ready" in result.output and "SOFTHSM2_CONF=" in result.output
        assert city_hsm.pin not in result.output
    after = {p.name: p.read_bytes() for p in city_hsm.directory.glob("*.pem")}
    assert before == after and set(after) == {"ca.pem", "ca_key.pem", "signer.pem"}
    assert (city_hsm.directory / "pins.json").stat().st_mode & 0o077 == 0
    assert (city_hsm.directory / "ca_key.pem").stat().st_mode & 0o077 == 0
    conf = (city_hsm.directory / "softhsm2.conf").read_text()
    assert f"directories.tokendir = {city_hsm.directory / 'tokens'}" in conf  # never the system's

    ca = x509.load_pem_x509_certificate(after["ca.pem"])
    signer = x509.load_pem_x509_certificate(after["signer.pem"])
    assert signer.issuer == ca.subject
    ca.public_key().verify(
        signer.signature, signer.tbs_certificate_bytes, padding.PKCS1v15(), signer.signature_hash_algorithm
    )
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert (
        ExtendedKeyUsageOID.EMAIL_PROTECTION
        in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert hsm.load(city_hsm.directory).signer_pem == after["signer.pem"]


def test_production_refuses(app, city_hsm):
    app.config["NAME"] = "production"
    result = app.test_cli_runner().invoke(args=["certificates", "hsm-init"])
    assert result.exit_code != 0 and "key ceremony" in result.output
