"""A curator's own pace (product.md §6a): decisions today and this week, seconds per decision,
share declined — for oneself on the profile and the start page, the team's for administrators.

The history is made through the domain functions (moderation.decide/undo, photos.receive) with
the test clock, on Wednesday 25 November 2026 in the project's time zone (Asia/Yekaterinburg,
UTC+5); the week began on Monday 23 November at local midnight.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from app import clock, moderation, pace, photos
from app.db import session_scope
from app.models import Report, ReportStatus, Staff, StaffRole
from app.settings import get_settings
from tests import factories
from tests.conftest import login

WEDNESDAY = date(2026, 11, 25)
REASON = "Не видно задания на фото"


def local(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=get_settings().tz)


def day(n: int) -> date:
    return WEDNESDAY + timedelta(days=n)


class History:
    """A running shift (started Monday a week ago) and decisions at given moments."""

    def __init__(self, db) -> None:
        self.db = db
        clock.set_now(local(day(-9), 9))
        self.shift = factories.make_shift(db, start=day(-9), tasks=[factories.make_task(db)])

    def photo(self, at: datetime, *, photos: int = 0) -> Report:
        """A new photo in review, sent a minute before `at` (for the shift day of `at`)."""
        clock.set_now(at - timedelta(minutes=1))
        member = factories.make_member(self.db, self.shift)
        number = (at.astimezone(get_settings().tz).date() - self.shift.started_at).days + 1
        report = factories.make_report(
            self.db, member, number, ReportStatus.reviewing, photos=photos
        )
        report.submitted_at = clock.now()
        self.db.add(report)
        self.db.commit()
        return report

    def decide(
        self, curator: Staff, at: datetime, approve: bool = True, report: Report | None = None
    ) -> Report:
        report = report or self.photo(at)
        clock.set_now(at)
        with session_scope() as session:
            outcome = moderation.decide(
                session, report.id, curator, approve, None if approve else REASON
            )
        assert outcome.won
        return report

    def undo(self, curator: Staff, at: datetime, report: Report) -> None:
        clock.set_now(at)
        with session_scope() as session:
            moderation.undo(session, report.id, curator)


@pytest.fixture
def week(db, admin, expert):
    """Anna (the expert) and the administrator decide through the week; Wednesday, 12:00 now."""
    admin.name, admin.surname = "Борис", "Админов"
    db.add(admin)
    db.commit()
    h = History(db)
    # Last week: Friday, and Sunday ten minutes before the week begins — neither counts.
    h.decide(expert, local(day(-5), 14))
    h.decide(expert, local(day(-3), 23, 50))
    # Monday 01:00 local is still Sunday in UTC: this week.
    h.decide(expert, local(day(-2), 1))
    # Yesterday: three in a row (gaps 20 and 30 s), one declined.
    h.decide(expert, local(day(-1), 10, 0, 0))
    h.decide(expert, local(day(-1), 10, 0, 20), approve=False)
    h.decide(expert, local(day(-1), 10, 0, 50))
    # Today: the first after the night (a break), a decline (10 s) whose family then sends a new
    # photo, an accept undone two seconds later and decided again (30 s after the decline),
    # a 19-minute break, one more (12 s).
    h.decide(expert, local(day(0), 9, 0, 0))
    resent = h.photo(local(day(0), 9, 0, 10), photos=1)
    h.decide(expert, local(day(0), 9, 0, 10), approve=False, report=resent)
    undone = h.decide(expert, local(day(0), 9, 0, 13))
    h.undo(expert, local(day(0), 9, 0, 15), undone)
    h.decide(expert, local(day(0), 9, 0, 40), report=undone)
    h.decide(expert, local(day(0), 9, 20, 0))
    h.decide(expert, local(day(0), 9, 20, 12))
    # The family sends a new photo for the declined day: the report is in review again.
    clock.set_now(local(day(0), 9, 30))
    participant_tg = db.execute(
        sa.text(
            "SELECT participant.telegram_id FROM participant JOIN member "
            "ON member.participant_id = participant.id WHERE member.id = :m"
        ),
        {"m": resent.member_id},
    ).scalar_one()
    with session_scope() as session:
        found = photos.situation(session, participant_tg, "resent-1")
        outcome = photos.receive(
            session,
            found,
            photos.Incoming("file-resent", "resent-1"),
            lambda _incoming: factories.jpeg_bytes(seed=4242),
        )
    assert outcome.kind != "photo_no_task" and outcome.photo_id is not None
    # The administrator: three today, 5 and 9 seconds apart, one declined.
    h.decide(admin, local(day(0), 11, 0, 0))
    h.decide(admin, local(day(0), 11, 0, 5), approve=False)
    h.decide(admin, local(day(0), 11, 0, 14))
    clock.set_now(local(day(0), 12))
    db.expire_all()
    assert db.get(Report, resent.id).status == ReportStatus.reviewing
    return h


def test_a_constructed_week_gives_exact_numbers(db, week, admin, expert):
    with session_scope() as session:
        team = pace.team(session)
    by_id = {p.staff_id: p for p in team}
    anna = by_id[expert.id]
    # Monday 1 + yesterday 3 + today 5 (the undone accept not counted, the resent decline kept).
    assert (anna.today, anna.week, anna.declined) == (5, 9, 2)
    assert anna.declined_percent == 22
    # Gaps 20, 30 (yesterday), 10, 30, 12 (today): the median is 20.
    assert anna.median_seconds == 20
    boss = by_id[admin.id]
    assert (boss.today, boss.week, boss.declined, boss.declined_percent) == (3, 3, 1, 33)
    assert boss.median_seconds == 7  # the mean of the two gaps, 5 and 9
    assert [p.staff_id for p in team] == [expert.id, admin.id]  # busiest first
    with session_scope() as session:
        assert pace.of(session, expert.id) == anna


def test_next_monday_starts_a_new_week(db, week, expert):
    clock.set_now(local(day(5), 0, 1))  # Monday, a minute past midnight
    with session_scope() as session:
        anna = pace.of(session, expert.id)
    assert (anna.today, anna.week, anna.median_seconds, anna.declined_percent) == (0, 0, None, None)


def test_a_new_curator_has_kind_empty_numbers(db, client, week):
    newcomer = factories.make_staff(db, email="new@example.org", name="Оля", surname="Новикова")
    with session_scope() as session:
        fresh = pace.of(session, newcomer.id)
    assert fresh == pace.Pace(newcomer.id, "Оля Новикова", 0, 0, 0, None)
    assert fresh.declined_percent is None
    assert login(client, newcomer).status_code == 303
    page = " ".join(client.get("/profile").text.split())
    assert "На этой неделе вы ещё не проверяли фото" in page
    page = " ".join(client.get("/").text.split())
    assert "На этой неделе вы ещё не проверяли фото" in page


def _pace_section(html: str) -> str:
    start = html.index('class="pace"')
    return " ".join(html[start : html.index("</section>", start)].split())


def test_a_curator_sees_their_own_pace_on_the_profile_and_the_start_page(
    expert_client, week, admin
):
    for path in ("/profile", "/"):
        section = _pace_section(expert_client.get(path).text)
        assert "Ваш темп" in section
        assert "Сегодня</dt> <dd>5 решений</dd>" in section
        assert "9 решений" in section
        assert "20 секунд" in section
        assert "22 % — 2 из 9" in section
        assert admin.full_name not in section  # nobody else's line


def test_an_administrator_sees_the_team_on_the_start_page(admin_client, week, admin, expert):
    section = _pace_section(admin_client.get("/").text)
    assert "Темп команды" in section
    anna = f'<a href="/staff/{expert.id}/pace">{expert.full_name}</a>'
    assert f"{anna}</td> <td>5</td> <td>9</td> <td>20</td> <td>22 %</td>" in section
    assert "<td>3</td> <td>3</td> <td>7</td> <td>33 %</td>" in section


def test_an_administrator_opens_a_curators_pace(admin_client, week, expert):
    assert f'href="/staff/{expert.id}/pace"' in admin_client.get("/staff").text
    page = admin_client.get(f"/staff/{expert.id}/pace")
    assert page.status_code == 200
    section = _pace_section(page.text)
    assert f"Темп: {expert.full_name}" in section and "20 секунд" in section
    assert admin_client.get("/staff/999999/pace").status_code == 404


def test_a_curator_cannot_see_anothers_pace(app, db, week, admin, expert):
    other = factories.make_staff(
        db, email="other@example.org", role=StaffRole.expert, name="Вера", surname="Другова"
    )
    with TestClient(app, base_url="http://testserver") as client:
        assert login(client, other).status_code == 303
        for target in (expert.id, admin.id, other.id):
            page = client.get(f"/staff/{target}/pace")
            assert page.status_code == 403 and "Нет доступа" in page.text
        # Their own is on the profile and the start page, and nobody else's is there.
        for path in ("/profile", "/"):
            section = _pace_section(client.get(path).text)
            assert expert.full_name not in section and "Темп команды" not in section


def test_the_team_is_one_statement_however_many_curators(db, engine, admin_client):
    h = History(db)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sizes = []
    for n in (1, 6):
        for i in range(n):
            curator = factories.make_staff(db, name=f"Куратор{n}{i}")
            h.decide(curator, local(day(0), 10, i, 0))
            h.decide(curator, local(day(0), 10, i, 7))
        clock.set_now(local(day(0), 12))
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            with session_scope() as session:
                team = pace.team(session)
            sizes.append(len(statements))
            statements.clear()
            # The start page with the team's table: the same number of statements too.
            page = admin_client.get("/")
            sizes.append(len(statements))
            statements.clear()
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert all(p.median_seconds == 7 for p in team if p.week)
        assert page.text.count('href="/staff/') == len(team)  # a row (a link) per person
    team_small, page_small, team_big, page_big = sizes
    assert team_small == team_big == 1
    assert page_small == page_big
