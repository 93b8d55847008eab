"""The project's own exceptions: one small hierarchy, so a caller can catch every lotterybook error at once.

- :class:`LotteryError`: the root.
- :class:`ConfigError` (also a ``ValueError``): a plan, a task name, a stage argument or a setting that is not
  allowed; the message names the file, the key path, the value and what is allowed.
- :class:`ResultFileError` (also a ``ValueError``): a result or mask file that is corrupt, half-written, of
  another model or run; the message names the file and the fix (re-run the stage that writes it).
- :class:`MissingError` (also a ``FileNotFoundError``): a plan, result file or data file that is not there.
- :class:`MaskError` (also a ``ValueError``): a mask that is not 0/1, of the wrong shape, or holds NaN or inf.
- :class:`DataError` (also a ``ValueError``): a data file (a GLUE TSV) that is empty, holds only its header, or
  has bad rows, and a data set that ends up with no examples; the message names the file and the fix.
- :class:`ModelError` (also a ``ValueError``): a model that cannot be used as it is: an architecture outside
  lotterylib's structure table, tampered weights, weights of another variant; the message names the model
  folder or type and the fix. (A model folder that lacks files raises :class:`MissingError`.)
"""

from __future__ import annotations


class LotteryError(Exception):
    """Every error lotterybook raises on purpose."""


class ConfigError(LotteryError, ValueError):
    """A plan, task, stage argument or setting that is not allowed."""


class ResultFileError(LotteryError, ValueError):
    """A result or mask file that cannot be used as it is."""


class MissingError(LotteryError, FileNotFoundError):
    """A plan, result file or data file that is not there; the message says what writes or provides it."""


class MaskError(LotteryError, ValueError):
    """A mask that is not what it must be (0/1, the model's shape, finite)."""


class DataError(LotteryError, ValueError):
    """A data file or data set that cannot be used as it is (empty, header only, bad rows, no examples)."""


class ModelError(LotteryError, ValueError):
    """A model that cannot be used as it is (unsupported architecture, tampered or mixed weights)."""
