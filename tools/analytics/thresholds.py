"""Every threshold and cut-off the analytics use, with the rule or measurement behind it.

Reviewed like the causal graph and the action catalog: a change here changes what the agent
reports, so it goes through review and the eval suites (``make eval``, ``make quality``).
Where a statistical rule exists (a test at a named level, a sample size for a named power),
the constant is that rule's parameter, not a value fitted until a suite passed.
"""

from __future__ import annotations

from typing import Final

# --- The level and grain a KPI can be judged at ------------------------------------------

GRAINS: Final[tuple[int, ...]] = (1, 3, 7, 14, 28)
"""Candidate cell lengths in days, finest first: a day, a trailing window of three days,
then the trailing week, two weeks and four weeks (each ends on the day under analysis)."""

DETECTABLE_EXCESS: Final = 0.10
"""The late-rate rise (10 points) a cell must be able to detect to be judged at all. It is
the smallest excess the product exists to catch: injected incidents of magnitude 1 raise a
store's late rate by 12-18 points, the generator labels natural disruptions from 7 points,
and the scan grades an anomaly "high" from 10 points."""

Z_DETECT: Final = 3.0
"""A cell is judged when a :data:`DETECTABLE_EXCESS` rise is at least this many binomial
standard errors of its late rate (z 3, one-sided p = 0.00135): the same bar the detector
applies to a KPI's residual (:data:`ADVERSE_MIN_Z`)."""

MIN_REFERENCE_DAYS: Final = 14
"""Days of history before the analysed day that a baseline needs: two of every weekday."""

MIN_REFERENCE_CELLS: Final = 10
"""Reference cells a KPI needs before it is watched or enters the detector: fewer gives a
robust SD (a median absolute deviation) resting on a handful of values."""

# --- The anomaly detector (tools.analytics.detect) --------------------------------------

DEFAULT_THRESHOLD: Final = 9.0
"""Robust Mahalanobis distance (PyOD MCD) from which a multivariate residual is anomalous,
calibrated on the seeded synthetic worlds of ``make quality`` (0.9 unexplained alarms per
100 store-weeks on quiet worlds, recall 1.00 at magnitude 1)."""

ADVERSE_MIN_Z: Final = 3.0
"""A flagged row also needs one KPI this many robust SDs off in its bad direction."""

EXTREME_Z: Final = 5.0
"""A leading KPI this many robust SDs off in its bad direction flags the row on its own (a
deviation along a usual direction of co-movement has a modest distance); so does the late
rate this many conditional SDs above what the other KPIs predict. The latter matters with
few KPIs: without staffing or weather feeds a store 20 points late (7.2 SDs, the other KPIs
normal) has a distance of 7.6, under the threshold calibrated on every feed."""

SUPPORT_FRACTION: Final = 0.97
"""Share of reference rows MCD fits its covariance on: past incidents barely shift it, while
a tighter support would drop ordinary rainy days and then flag them."""

NO_SHOW_EXTREME_Z: Final = 4.0
"""The no-show z alone that flags a store-day. It is an exact binomial tail (z 4: p = 3e-5),
not robust SDs over a heavy-tailed residual, so it needs a lower cut for the same
false-alarm rate: on the quiet eval worlds no-show z >= 4 occurs on about 5 in 10,000
store-days, the robust-SD leading KPIs at 5 on 3 to 18. At 5 a 41 % no-show day at a store
that normally loses 6 % of its drivers (z 4.1, lateness up 4 SDs) went unflagged."""

Z_OUTCOME: Final = 3.09
"""Where a cell has no leading indicator worth the name (windows of several days, the whole
chain, data without staffing or weather feeds), its late rate alone flags it when the rise
is significant at one-sided level 0.001 (z 3.09) under an overdispersed binomial model of
its volume."""

MIN_LATE_EXCESS: Final = 0.03
"""With the day's outcomes known, an anomaly must cost at least 3 points of late rate above
normal: rain or a slow dispatch that did not make deliveries late is not a problem to act on.
On the quiet eval world it removed 4 of 6 alarms that touched nothing; injected incidents
cost 5 points or more even at 0.7x magnitude."""

STANDOUT_Z: Final = 5.0
"""A flagged store stays a separate anomaly inside a regional one when it stands this many
SDs (and three times the region's spread that day) above the region's typical store."""

BROAD_MEDIAN_Z: Final = 2.0
"""A region (or the chain) flagged by its own detector is a regional (chain-wide) event when
its typical member moved at least this many SDs the same way."""

BROAD_SHARE: Final = 0.25
"""... or when at least this share of its members (and at least 3 stores, 2 regions) are
flagged."""

ONE_STORE_SHARE: Final = 0.5
"""A region anomaly is one store's problem when that store, flagged the same day, carries at
least half of the region's late deliveries above normal (a majority, by definition): the
plan then treats the store, not the region (a small region flagged for one store's bad day
had backup drivers called "at EAST")."""

SEVERITY_HIGH: Final = 0.10
"""Late-rate excess from which an anomaly is graded high (10 points)."""

SEVERITY_MEDIUM: Final = 0.05
"""Late-rate excess from which an anomaly is graded medium (5 points)."""

RANK_FDR: Final = 0.05
"""False discovery rate at which ``rank_scopes`` says a store or region stands out over a
period (Benjamini-Hochberg over every scope judged): among the scopes it names, at most one
in twenty is expected to be chance."""

# --- Diagnosis ---------------------------------------------------------------------------

WITHIN_NORMAL_Z: Final = 1.645
"""A diagnosed cell is within its normal range when its late rate is less than this many
robust SDs above its normal (one-sided test at level 0.05). The bar is lower than the
detector's (:data:`Z_OUTCOME`) on purpose: a cell the manager asks about is explained and
treated only when its excess is unlikely to be chance; below it the answer says the late
rate was normal and proposes nothing (unless a forecast says a problem is coming)."""

MIN_CAUSE_SHARE: Final = 0.20
"""A cause is a hypothesis only when it carries at least a fifth of the late-rate excess
(its contribution over the excess, unexplained part included). Below that, an action for it
would treat a fraction of the problem while the plan names it as the reason."""

CONFIDENCE_HIGH_SHARE: Final = 0.60
"""High confidence: the top cause carries most of the excess, the linear cross-check agrees
and its effect survived every refutation."""

CONFIDENCE_MEDIUM_SHARE: Final = 0.35
"""Medium confidence: the top cause carries at least this share and the cross-check agrees."""

MIN_FIT_ROWS_PER_NODE: Final = 10
"""Rows the causal model needs per fitted variable (ten observations per parameter, the
usual rule of thumb for linear regression)."""

DUPLICATE_CORRELATION: Final = 0.999
"""Two factors whose deviations correlate this closely carry the same data (Olist's dispatch
delay is its hand-over time): the later one in the graph is not assessed separately."""

# --- Forecast ----------------------------------------------------------------------------

FORECAST_MIN_HISTORY: Final = 21
"""Days of history a forecast needs: three weeks, so each weekday is seen three times."""

FORECAST_MAX_HORIZON: Final = 28
"""Days ahead a forecast may reach."""

FEED_MIN_COVERAGE: Final = 0.9
"""A weather condition is a forecast regressor only when the feed covers nine open days in ten
of the history: Prophet would otherwise learn its effect from the medians filled into the
gaps. A rule of thumb, not fitted: on the generator's worlds the feed covers every day or
none, and on real feeds that stop (issue 14) the regressor is dropped rather than imputed."""

ONGOING_MIN_DAYS: Final = 2
"""A carrier's excess lateness seen on this many open days running, up to the forecast origin,
is an outage in progress, assumed to go on until the data shows it ended (a one-day spike is
assumed over). A stated rule, not fitted: an outage's end is not in the data, and the second
day is the first on which "it is still going" is an observation rather than a guess."""

PERSIST_KEEP: Final = 0.5
"""A deviation persists when tomorrow's forecast keeps at least half of it."""

CLOSED_WEEKDAY_SHARE: Final = 0.8
"""A weekday with no deliveries due in at least 80 % of the history's weeks is a closed day:
forecast as closed, not as a day with a KPI."""

# --- Actions -----------------------------------------------------------------------------

ACTION_INTERVAL: Final = 0.8
"""Width of the interval of late deliveries avoided (80 %, as the forecast)."""

ACTION_DRAWS: Final = 400
"""Draws of the fitted coefficients behind that interval."""

LEVER_DEFAULTS: Final[dict[str, float]] = {
    "cut_dispatch": 0.8,
    "shift_carrier": 0.8,
    "reduce_traffic": 0.4,
    "widen_windows": 60.0,
    "cut_transit": 0.5,
    "cut_handover": 0.5,
}
"""Default lever settings: recover 80 % of a dispatch delay, move 80 % of a failing DSP's
orders, avoid 40 % of a traffic excess, widen windows by an hour, recover half of a
transit or hand-over slowdown (what an escalation to a carrier or a seller typically buys
back within a day, per the catalog's descriptions; a manager may edit any of them)."""

INCIDENT_MAX_GAP_DAYS: Final = 3
"""An anomaly flagged again at most this many days after its incident was last seen
continues it (a store closed on Sunday plus a public holiday: the next open day is up to 3
days later); later than that it is a new incident, and the old one is resolved. Measured on
the demo world: two regional storms 19 days apart were one incident without this bound."""

# --- Data health and drift (tools.analytics.health, tools.analytics.drift) ---------------

HEALTH_LOOKBACK_DAYS: Final = 56
"""Reference window of the data-health check: eight weeks, eight of every weekday, as the
anomaly scan's default history."""

DRIFT_MIN_REFERENCE_DAYS: Final = 28
"""Reference days a feature needs before it is tested for drift: four of every weekday, so
a store's weekday normal is a median of four and the empirical null has 28 days."""

DRIFT_FAMILY_ALPHA: Final = 0.001
"""Family-wise false-alarm level of the drift test per day, split over the features tested
that day (Bonferroni): with ten features each is tested two-sided at 5e-5 (robust z 4.06).
On 5 stable 90-day worlds the expectation is about 0.3 false drift alarms in all (5 worlds x
62 tested days x 0.001)."""

DRIFT_MIN_SCALE: Final[dict[str, float]] = {"log": 0.01, "share": 0.005}
"""Floor of the null's robust SD: a feature that never moved in the reference (a promised
lead time fixed by policy) would otherwise give an infinite z for a 1 % change. One percent
on the log scale, half a point on a share."""

MISSING_ALPHA: Final = 1e-4
"""Level of the one-sided binomial test that a feed or field reported by fewer store-days
than usual (the reference share, Laplace-smoothed): one store-day of thirty missing a roster
that is otherwise always there gives p = 0.018, not an alarm; a feed that stops gives
p < 1e-12."""

FEED_STALE_WARN_DAYS: Final = 1
"""An optional feed (staffing, conditions) whose last date is this many days or more
before the checked day is stale: what it carries is not assessed after its last date. It
stops a run only beyond the age configured for it (``LASTMILE_FEED_MAX_AGE_DAYS``)."""

DRIFT_MIN_EFFECT: Final[dict[str, float]] = {"log": 0.223, "share": 0.10}
"""The smallest drift worth an alarm: the typical store's value a quarter above or below its
normal (ln 1.25 on the log scale), or ten points on a share. Below it a statistically clear
shift (a week of slightly thinner rosters: 5 % fewer drivers, robust z -5) is the world's
own variation, for the anomaly scan to judge, not a data problem. A units change (x60, x1000)
or a new demand regime moves far more."""

# --- Model decay (tools.analytics.forecast_error) ----------------------------------------

FORECAST_REFIT_DAYS: Final = 7
"""The tracked forecaster is refitted once a week: between refits it meets data it did not
see, as a deployed model does, so a regime change shows as rising error until the next fit
has enough of the new regime."""

FORECAST_RECENT_DAYS: Final = 7
"""Recent window of the decay test: a week, one of every weekday."""

FORECAST_REFERENCE_DAYS: Final = 28
"""Reference window of the decay test: the four weeks before the recent one."""

FORECAST_DECAY_ALPHA: Final = 0.001
"""Level of the one-sided Mann-Whitney U test that the recent scaled errors are larger than
the reference's. Each tracked series is tested once a day (overlapping windows, so days are
not independent trials): at most one false decay alarm in a thousand series-days, about 0.6
over the stable-world test's 5 worlds x 2 series x 62 days. A week at three times the
reference error (a 60 % demand regime) gives p < 1e-4."""

FORECAST_DECAY_RATIO: Final = 1.25
"""... and the recent MASE must be at least a quarter above the reference's: a significant
rise smaller than that changes no decision the forecast supports."""

# --- Detector alarm rate (agent.monitoring) ----------------------------------------------

ALARM_RATE_CEILING: Final = 10.0
"""Anomalies per 100 store-weeks the detector may raise before it is alarming too much:
about ten times its calibrated rate on quiet worlds (0.9, :data:`DEFAULT_THRESHOLD`) and
twice the demo world's average (17 anomalies in 70 days at 30 stores: 5.7). The demo
world's busiest week (5 anomalies, 16.7 per 100 store-weeks) is not flagged: at the ceiling
30 stores expect 3 a week, and 5 has p = 0.18; 11 or more (p = 3e-4) would be."""

ALARM_RATE_ALPHA: Final = 0.001
"""Level of the one-sided Poisson test that a week's alarms exceed the ceiling's expectation."""

# --- Outcomes of dispatched actions (tools.catalog.calibration) -------------------------

OUTCOME_ALPHA: Final = 0.001
"""Level of the one-sided binomial tests that call an action over- or under-promising or its
coverage low. The tests are repeated after every outcome (sequential looks), so the level is
strict: an estimator whose realised figures all fall below its intervals is flagged at its
4th outcome (0.1^4 = 1e-4), while a calibrated one is falsely flagged in about 1 of 1000
looks. A stated level, not fitted."""

OUTCOME_WINDOW: Final = 50
"""Outcomes of one action judged at once, the most recent: enough for five expected misses
on each side of an 80 % interval, recent enough to follow a change in what an action does
(a new on-call pool). A stated rule of thumb, not fitted."""

# --- Stability of causal effects (tools.causal.stability) --------------------------------

EFFECT_WINDOW_DAYS: Final = 14
"""Days of one window whose cause effects are estimated: two weekly cycles, so every window
holds each weekday twice. A stated choice, not fitted."""

EFFECT_MIN_WINDOWS: Final = 4
"""Reference windows the stability test needs (the t distribution's degrees of freedom are
one fewer): below it the test is not run and the monitor says so."""

EFFECT_ALPHA: Final = 0.001
"""Family-wise level of the effect-stability test per monitored day, split over the causes
tested (Bonferroni). Measured (``tests/integration/test_effect_stability.py``): on stable
24-store x 200-day worlds the largest |t| was below 2 against a bar of 5.8; a doubled effect
of orders per driver (no-shows and volume act through it) reached t = 7.3."""
