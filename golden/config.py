"""Re-export of the one configuration object (see :mod:`hw.config`)."""
from hw.config import Abft, ArrayConfig, Dataflow

__all__ = ["Abft", "ArrayConfig", "Dataflow"]
