"""Card identity: the Individual Number Card as the resident's key (利用者証明用電子証明書).

Challenge–response login, linking a card to a resident (identity proofing), registered terminals
that sign their requests, and the counter's card scan. Protocol: docs/card-identity.md.
"""
