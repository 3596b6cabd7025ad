"""Plain drain3, configured as its own example (drain3.ini): the yardstick for speed and
accuracy. ``logml parse --engine drain3`` runs it, and benchmarks compare against it."""
from __future__ import annotations

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

_B = r"((?<=[^A-Za-z0-9])|^)"
_E = r"((?=[^A-Za-z0-9])|$)"
EXAMPLE_MASKING = [
    (_B + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + _E, "ID"),
    (_B + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + _E, "IP"),
    (_B + r"([0-9a-f]{6,} ?){3,}" + _E, "SEQ"),
    (_B + r"([0-9A-F]{4} ?){4,}" + _E, "SEQ"),
    (_B + r"(0x[a-f0-9A-F]+)" + _E, "HEX"),
    (_B + r"([\-\+]?\d+)" + _E, "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def drain3_miner() -> TemplateMiner:
    """A TemplateMiner with drain3.ini's example settings and no persistence."""
    cfg = TemplateMinerConfig()
    cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in EXAMPLE_MASKING]
    cfg.mask_prefix = "<:"
    cfg.mask_suffix = ":>"
    cfg.drain_sim_th = 0.4
    cfg.drain_depth = 4
    cfg.drain_max_children = 100
    cfg.drain_max_clusters = 1024
    cfg.drain_extra_delimiters = ["_"]
    cfg.profiling_enabled = False
    cfg.snapshot_interval_minutes = 10
    return TemplateMiner(config=cfg)
