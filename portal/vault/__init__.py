"""Individual Number vault (個人番号分離型).

The 12-digit number lives only in the ``individual_numbers`` table, AES-256-GCM encrypted, found
only through a keyed hash. ``reveal`` is the one function that decrypts it, and it needs a purpose
and an actor and writes an access record. Everywhere else the number is shown masked.
"""
