"""The kiosk's web side (Chromium in kiosk mode on a city terminal): card login with an on-screen
PIN keypad, the kiosk session of the card holder on that terminal, and the certificate ordering
pages (コンビニ交付 style). The terminal agent it talks to is the Flask-free ``kiosk/agent``.
"""
