"""The kiosk: the terminal agent that owns the card reader (:mod:`kiosk.agent`), and later the kiosk
web UI, certificate issuance, library link and shelter check-in.

The agent runs on terminals that have no server stack, so nothing imported here may pull in Flask
(or ``portal``): the web parts import Flask in their own modules, never at package import.
"""
