"""What a new user's mistakes give: refusals at `plan check` with the line and key where the plan alone shows the
mistake, and one clear run-time message naming the analysis, the item and what the records hold otherwise (each was
a traceback, or a message about something else, before)."""

from __future__ import annotations

import pytest

from allotrack.errors import InputError
from allotrack.study.plan import PlanError, parse_plan
from allotrack.study.run import run_study

MSC = """
[study]
title = "t"
[data]
source = "example:msc_rct"
[endpoints]
use = ["os"]
"""
NK = """
[study]
title = "t"
time_unit = "months"
[data]
source = "example:nk_cells"
[endpoints]
use = ["dfs_hsct"]
[[endpoints.define]]
name = "dfs_hsct"
label = "DFS"
origin = "hsct"
events = ["relapse", "death"]
"""


def _run_error(text: str) -> str:
    with pytest.raises(InputError) as err:
        run_study(parse_plan(text))
    return str(err.value)


def test_a_binary_analysis_at_a_visit_nobody_has_lists_the_visits_recorded():
    msg = _run_error(MSC + '[[analyses]]\nkind = "binary"\nitem = "gvhd_response"\nvisit = "week4"\nevent = ["CR"]\n'
                     'by = "arm"\n')
    assert msg.startswith("table 'plan', column 'visit': analyses[0] (kind = 'binary', item = 'gvhd_response'): ")
    assert "no patient has a value of 'gvhd_response' at visit 'week4'" in msg and "'week 4'" in msg


def test_a_binary_event_code_nobody_has_lists_the_codes_recorded():
    msg = _run_error(MSC + '[[analyses]]\nkind = "binary"\nitem = "gvhd_response"\nvisit = "week 4"\n'
                     'event = ["complete response"]\nby = "arm"\n')
    assert "no patient has the event code(s) ['complete response']" in msg and "'CR'" in msg


def test_a_variable_at_a_misspelt_visit_and_a_subset_that_leaves_nobody_say_so():
    variable = ('[[variables]]\nname = "dsa"\nitem = "dsa_mfi"\nvisit = "pre-transplant"\nsummary = "max"\n'
                '[[analyses]]\nkind = "km"\nendpoint = "dfs_hsct"\n')  # fmt: skip
    with pytest.raises(InputError, match="variable 'dsa': no patient has a value of 'dsa_mfi' at visit "
                                         "'pre-transplant'; the visits recorded for it are 'before transplant'"):
        run_study(parse_plan(NK + variable))
    empty = NK + '[[analyses]]\nkind = "km"\nendpoint = "dfs_hsct"\nsubset = "[diagnosis] = \'ALL\'"\n'
    assert "subset [diagnosis] = 'ALL' leaves no patient to analyse (of 185)" in _run_error(empty)


def test_a_trend_over_an_agent_or_levels_that_are_not_recorded_names_them():
    trend = NK + ('[[analyses]]\nkind = "trend"\nitem = "nk_abs"\nvisit = "day +30"\nagent = "nk_cells"\n'
                  'levels = ["DL1", "DL2"]\n')
    assert "no intervention of agent 'nk_cells'; the agents recorded are ['nk_infusion']" in _run_error(trend)
    levels = trend.replace('"nk_cells"', '"nk_infusion"').replace('["DL1", "DL2"]', '["1", "2"]')
    assert "none of the dose levels ['1', '2'] is recorded for 'nk_infusion'" in _run_error(levels)


def test_cox_names_and_a_redefined_built_in_endpoint_are_refused_at_plan_check():
    with pytest.raises(PlanError) as err:
        parse_plan(NK + '[[analyses]]\nkind = "cox"\nendpoint = "dfs_hsct"\nunivariate = ["roles"]\n'
                   'strata = "set_id"\n')
    assert [(line, key) for line, key, _ in err.value.problems] == [(17, "analyses[0].univariate"),
                                                                    (18, "analyses[0].strata")]  # fmt: skip
    with pytest.raises(PlanError) as err:
        parse_plan(NK.replace('name = "dfs_hsct"', 'name = "os"').replace('["dfs_hsct"]', '["os"]'))
    (line, key, msg), = err.value.problems
    assert line == 10 and key == "endpoints.define[0].name" and "'os' is a built-in endpoint (Overall survival)" in msg
