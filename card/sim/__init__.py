"""The virtual Individual Number Card (テスト用仮想カード) for tests and development.

``VirtualCard.from_profile(dir)`` gives an in-memory card; ``python -m card.sim serve DIR`` serves it to
pcscd through the vsmartcard ``vpcd`` driver.
"""

from card.sim.card import VirtualCard
from card.sim.profile import Profile, make_profile

__all__ = ["Profile", "VirtualCard", "make_profile"]
