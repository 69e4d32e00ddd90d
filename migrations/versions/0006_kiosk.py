"""kiosk: card holders' sessions on kiosk terminals, and what they printed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 01:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kiosk_sessions',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('ticket_hash', sa.String(length=64), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ticket_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['credential_id'], ['card_credentials.id'], name=op.f('fk_kiosk_sessions_credential_id_card_credentials')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_kiosk_sessions_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_sessions')),
    sa.UniqueConstraint('ticket_hash', name=op.f('uq_kiosk_sessions_ticket_hash'))
    )
    with op.batch_alter_table('kiosk_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosk_sessions_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index('ix_kiosk_sessions_terminal_open', ['terminal_code', 'ended_at'], unique=False)

    op.create_table('kiosk_prints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=48), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('issued_id', sa.String(length=40), nullable=True),
    sa.Column('copies', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('printed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['kiosk_sessions.id'], name=op.f('fk_kiosk_prints_session_id_kiosk_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_prints'))
    )
    with op.batch_alter_table('kiosk_prints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosk_prints_session_id'), ['session_id'], unique=False)


def downgrade():
    with op.batch_alter_table('kiosk_prints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kiosk_prints_session_id'))
    op.drop_table('kiosk_prints')
    with op.batch_alter_table('kiosk_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_kiosk_sessions_terminal_open')
        batch_op.drop_index(batch_op.f('ix_kiosk_sessions_resident_id'))
    op.drop_table('kiosk_sessions')
