"""Certificates as at convenience stores (コンビニ交付): 住民票の写し, 印鑑登録証明書 and
所得・課税証明書, paid at a kiosk, rendered with reportlab and signed with the city's key in an
HSM over PKCS#11 (pyHanko); a public /verify page checks one by serial and code.

The kiosk pages use only ``service`` and ``payment`` (docs: /work/wt/CERTS_CONTRACT.md, README)."""
