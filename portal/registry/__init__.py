"""Resident register (住民記録 / 宛名): wards, addresses, households, residents."""
