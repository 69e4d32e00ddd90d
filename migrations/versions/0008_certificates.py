"""certificates: seal registrations, tax records, kiosk payments, issued certificates

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 01:15:03.123767

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():

    op.create_table(
        "certificate_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("method IN ('cash', 'ic')", name=op.f("ck_certificate_payments_method_known")),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'failed', 'cancelled')",
            name=op.f("ck_certificate_payments_status_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_certificate_payments_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_payments")),
    )
    op.create_table(
        "issued_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=24), nullable=False),
        sa.Column("verify_code_hash", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("fee", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("terminal_code", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('residence', 'seal', 'income')", name=op.f("ck_issued_certificates_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('valid', 'revoked')", name=op.f("ck_issued_certificates_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["certificate_payments.id"],
            name=op.f("fk_issued_certificates_payment_id_certificate_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_issued_certificates_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_certificates")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_issued_certificates_payment_id")),
        sa.UniqueConstraint("serial", name=op.f("uq_issued_certificates_serial")),
    )
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.create_index("ix_issued_certificates_issued_at", ["issued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_issued_certificates_resident_id"), ["resident_id"], unique=False)

    op.create_table(
        "seal_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("registration_no", sa.String(length=16), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("abolished_on", sa.Date(), nullable=True),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("abolished_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('registered', 'abolished')", name=op.f("ck_seal_registrations_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_seal_registrations_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_registrations")),
        sa.UniqueConstraint("registration_no", name=op.f("uq_seal_registrations_registration_no")),
    )
    with op.batch_alter_table("seal_registrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seal_registrations_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index(
            "uq_seal_registrations_one_registered",
            ["resident_id"],
            unique=True,
            sqlite_where=sa.text("status = 'registered'"),
            postgresql_where=sa.text("status = 'registered'"),
        )

    op.create_table(
        "tax_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("gross_income", sa.Integer(), nullable=False),
        sa.Column("income", sa.Integer(), nullable=False),
        sa.Column("deductions", sa.Integer(), nullable=False),
        sa.Column("taxable_income", sa.Integer(), nullable=False),
        sa.Column("municipal_tax", sa.Integer(), nullable=False),
        sa.Column("prefectural_tax", sa.Integer(), nullable=False),
        sa.Column("dependents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_tax_records_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_records")),
        sa.UniqueConstraint("resident_id", "fiscal_year", name="uq_tax_records_resident_year"),
    )
    with op.batch_alter_table("tax_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tax_records_resident_id"), ["resident_id"], unique=False)


def downgrade():

    with op.batch_alter_table("tax_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tax_records_resident_id"))

    op.drop_table("tax_records")
    with op.batch_alter_table("seal_registrations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_seal_registrations_one_registered",
            sqlite_where=sa.text("status = 'registered'"),
            postgresql_where=sa.text("status = 'registered'"),
        )
        batch_op.drop_index(batch_op.f("ix_seal_registrations_resident_id"))

    op.drop_table("seal_registrations")
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_certificates_resident_id"))
        batch_op.drop_index("ix_issued_certificates_issued_at")

    op.drop_table("issued_certificates")
    op.drop_table("certificate_payments")
