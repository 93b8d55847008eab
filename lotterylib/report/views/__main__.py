"""``python -m lotterylib.report.views NOTEBOOK...``: tag papermill's injected cell of each executed notebook
``remove-cell`` (see :func:`lotterylib.report.views.hide_injected_parameters`)."""

import sys

from lotterylib.report.views import hide_injected_parameters

for arg in sys.argv[1:]:
    hide_injected_parameters(arg)
