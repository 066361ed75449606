"""The LLM judge: rubric scores, position-swapped pairwise verdicts, calibration against humans, human evaluation.

- ``prompts``: what the judge is asked (outputs fenced as data; template version)
- ``parse``: reading its JSON verdicts
- ``engine``: the judge phase of a run (concurrent, cached, retried, cascade)
- ``stats``: position-swap combination, win rates, length control, kappa
- ``calibration``: ``*.calibration.yaml`` sets with human verdicts
- ``human``: blind export for raters and import of their ratings
"""

from .calibration import CALIBRATION_SUFFIX, CalibrationItem, CalibrationSet, LoadedCalibration, find_calibration_files, load_calibration
from .engine import Answer, JudgePhase, Task, ask, run_judge_phase
from .parse import JudgeParseError, PairwiseVerdict, RubricVerdict, parse_pairwise, parse_rubric
from .prompts import PROMPT_VERSION
from .stats import agreement, cohen_kappa, combine_orders, fleiss_kappa, length_controlled_win_rate, majority, win_rate

__all__ = ["CALIBRATION_SUFFIX", "CalibrationItem", "CalibrationSet", "LoadedCalibration", "find_calibration_files", "load_calibration",
           "Answer", "JudgePhase", "Task", "ask", "run_judge_phase", "JudgeParseError", "PairwiseVerdict", "RubricVerdict",
           "parse_pairwise", "parse_rubric", "PROMPT_VERSION", "agreement", "cohen_kappa", "combine_orders", "fleiss_kappa",
           "length_controlled_win_rate", "majority", "win_rate"]
