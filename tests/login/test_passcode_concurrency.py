"""The per-email limits under simultaneous requests, as several instances (or one busy one) make
them: on PostgreSQL a lock per email makes each limit's read-then-write one step, as
``BEGIN IMMEDIATE`` does on SQLite."""

from __future__ import annotations

import asyncio
from collections import Counter

from app.login import passcodes
from app.login.tables import LoginAttempt
from app.mail.tables import OutboxMessage
from tests.helpers import JENNY, code_of, configuration_of, wrong_code


async def test_simultaneous_requests_for_one_email_send_one_code(db, shop, settings):
    configuration = await configuration_of(shop)
    outcomes = await asyncio.gather(
        *(passcodes.request_code(settings, configuration, JENNY) for _ in range(10))
    )
    assert Counter(outcome.notice for outcome in outcomes) == {"sent": 1, "cooldown": 9}
    assert len({outcome.attempt_id for outcome in outcomes}) == 1
    rows = await LoginAttempt.select(LoginAttempt.status)
    assert [row["status"] for row in rows] == ["live"]
    assert await OutboxMessage.count() == 1


async def test_simultaneous_wrong_guesses_count_to_five_and_burn_the_code(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await passcodes.request_code(settings, configuration, JENNY)
    assert outcome.attempt_id
    code = await code_of(settings, outcome.attempt_id)
    results = await asyncio.gather(
        *(
            passcodes.verify(settings, configuration, outcome.attempt_id, wrong_code(code))
            for _ in range(12)
        )
    )
    verdicts = Counter(result.verdict for result in results)
    assert verdicts == {"wrong": 4, "burned": 8}, verdicts
    assert sorted(r.tries_left for r in results if r.verdict == "wrong") == [1, 2, 3, 4]
    again = await passcodes.verify(settings, configuration, outcome.attempt_id, code)
    assert again.verdict == "burned"
