"""Which anomalies the morning triage spends its diagnoses on."""

from __future__ import annotations

from agent.nodes.triage import triage_order

DAY = "2026-06-29"


def _a(level: str, target: str, region: str, drivers: list[str]) -> dict[str, object]:
    return {"level": level, "target": target, "region": region, "date": DAY, "drivers": drivers}


def test_stores_echoing_their_regions_event_come_after_problems_of_their_own() -> None:
    # the 500-store bench world: two wetter stores of a storm region outscored a dispatch
    # backlog and a shortage elsewhere, and took the three diagnoses
    scan = [
        _a("store", "S103", "R2", ["late_rate", "precip_mm", "orders_per_driver"]),
        _a("region", "R2", "R2", ["late_rate", "precip_mm", "no_show_rate"]),
        _a("store", "S071", "R2", ["late_rate", "precip_mm"]),
        _a("store", "S300", "R2", ["dispatch_delay_min", "late_rate"]),  # own cause, in R2
        _a("store", "S190", "R1", ["late_rate", "no_show_rate"]),
    ]
    order = [a["target"] for a in triage_order(scan)]
    assert order == ["R2", "S300", "S190", "S103", "S071"]


def test_without_a_flagged_region_the_score_order_stands() -> None:
    scan = [
        _a("store", "S103", "R2", ["late_rate", "precip_mm"]),
        _a("store", "S300", "R2", ["dispatch_delay_min"]),
    ]
    assert [a["target"] for a in triage_order(scan)] == ["S103", "S300"]


def test_a_region_flagged_for_one_stores_bad_day_is_that_stores_problem() -> None:
    # a newcomer's data: EAST flagged only because NYC2 had a shortage; the plan called in
    # backup drivers "at EAST"
    scan = [
        {**_a("region", "EAST", "EAST", ["late_rate", "no_show_rate"]), "late_excess": 40.0},
        {**_a("store", "NYC2", "EAST", ["no_show_rate", "late_rate"]), "late_excess": 36.0},
    ]
    assert [a["target"] for a in triage_order(scan)] == ["NYC2"]
    # a region whose excess is spread over its stores stays the regional event
    scan[1]["late_excess"] = 8.0
    assert [a["target"] for a in triage_order(scan)] == ["EAST", "NYC2"]
