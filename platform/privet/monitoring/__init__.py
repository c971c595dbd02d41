"""Monitoring and decision governance of served models (issue 12).

- ``hub.observe``: the prediction-time hook (decision rules, drift aggregates, alerts);
- ``service``: references, outcomes and live quality, suspension, review queue, view;
- ``rules``: Cedar decision rules (``policies/decision_rules.cedar``);
- ``stats``: aggregates, PSI, Jensen-Shannon, calibration error.

The ``monitoring`` report kind is ``privet.reports.kinds.monitoring``.

Nothing here keeps an input text: see docs/MONITORING.md.
"""

from privet.monitoring.hub import Monitor, attach, monitor_for, observe, refresh_settings

__all__ = ["Monitor", "attach", "monitor_for", "observe", "refresh_settings"]
