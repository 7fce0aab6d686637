"""Results: ranking with shared places, counts, attempts, chart, exports without test participants."""

from __future__ import annotations

import csv
import io
from urllib.parse import unquote

from openpyxl import load_workbook

from app import results
from app.models import ReportStatus
from tests import factories


def _arrange(db):
    """Three real members and one test participant in a 3-day shift."""
    tasks = [factories.make_task(db, "Почистить зубы"), factories.make_task(db, "Помыть посуду")]
    shift = factories.make_shift(db, days=3, tasks=tasks, title="Умею жить")
    ann = factories.make_member(
        db, shift, factories.make_participant(db, name="Аня", surname="Белова")
    )
    bob = factories.make_member(
        db, shift, factories.make_participant(db, name="Боря", surname="Волков")
    )
    cat = factories.make_member(
        db, shift, factories.make_participant(db, name="Катя", surname="Гусева")
    )
    test = factories.make_member(
        db, shift, factories.make_participant(db, name="Тест", surname="Тестов", is_test=True)
    )
    factories.make_report(db, ann, 1, ReportStatus.approved, photos=1)
    factories.make_report(db, ann, 2, ReportStatus.approved, photos=3)
    factories.make_report(db, bob, 1, ReportStatus.approved, photos=2)
    factories.make_report(db, bob, 2, ReportStatus.approved, photos=1)
    factories.make_report(db, bob, 3, ReportStatus.declined, photos=1)
    factories.make_report(db, cat, 1, ReportStatus.skipped)
    factories.make_report(db, cat, 2, ReportStatus.reviewing, photos=1)
    factories.make_report(db, cat, 3, ReportStatus.waiting)
    for day in (1, 2, 3):
        factories.make_report(db, test, day, ReportStatus.approved, photos=1)
    return shift, ann, bob, cat


def test_ranking_ties_share_a_place_and_test_participants_are_out(db):
    shift, *_ = _arrange(db)
    ranking = results.ranking(db, shift)
    assert [(r.place, r.name, r.approved) for r in ranking] == [
        (1, "Аня", 2),
        (1, "Боря", 2),
        (3, "Катя", 0),
    ]


def test_counts_per_day_per_task_and_by_attempt(db):
    shift, *_ = _arrange(db)
    days = results.per_day(db, shift)
    assert [(d.approved, d.declined, d.skipped, d.waiting, d.reviewing) for d in days] == [
        (2, 0, 1, 0, 0),
        (2, 0, 0, 0, 1),
        (0, 1, 0, 1, 0),
    ]
    tasks = {t.label: t for t in results.per_task(db, shift)}
    assert tasks["Почистить зубы"].approved == 2 and tasks["Почистить зубы"].declined == 1
    assert tasks["Помыть посуду"].approved == 2 and tasks["Помыть посуду"].reviewing == 1
    assert results.accepted_by_attempt(db, shift) == {1: 2, 2: 1, 3: 1}


def test_results_page_for_experts_with_chart(expert_client, db):
    shift, *_ = _arrange(db)
    page = expert_client.get(f"/shifts/{shift.id}/results")
    assert page.status_code == 200
    assert "<svg" in page.text and page.text.count('<rect class="ok"') == 2
    assert "Аня Белова" in page.text and "Тест Тестов" not in page.text
    assert expert_client.get("/shifts/999/results").status_code == 404
    assert expert_client.get(f"/shifts/{shift.id}/results.pdf").status_code == 404


def _filename(response) -> str:
    header = response.headers["content-disposition"]
    assert header.startswith("attachment;")
    return unquote(header.split("filename*=UTF-8''")[1])


def test_csv_export_headers_match_columns_and_totals(expert_client, db):
    shift, *_ = _arrange(db)
    response = expert_client.get(f"/shifts/{shift.id}/results.csv")
    assert response.status_code == 200
    assert _filename(response) == f"Смена №{shift.number} «Умею жить» — итоги.csv"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == results.EXPORT_HEADERS
    assert all(len(r) == len(rows[0]) for r in rows)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["Имя"] for r in body] == ["Аня", "Боря", "Катя"]
    assert sum(int(r["Ломбарьерчики"]) for r in body) == 4
    assert sum(int(r["Отклонено"]) for r in body) == 1
    assert [r["Место"] for r in body] == ["1", "1", "3"]


def test_xlsx_export_opens_with_headers_and_totals(expert_client, db):
    shift, *_ = _arrange(db)
    response = expert_client.get(f"/shifts/{shift.id}/results.xlsx")
    assert response.status_code == 200
    assert _filename(response).endswith("итоги.xlsx")
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(book["Итоги"].iter_rows(values_only=True))
    assert list(rows[0]) == results.EXPORT_HEADERS
    assert len(rows) == 4 and "Тест" not in [r[1] for r in rows]
    assert sum(r[5] for r in rows[1:]) == 4
    days = list(book["По дням"].iter_rows(values_only=True))
    assert days[0][0] == "День" and sum(r[2] for r in days[1:]) == 4
    book.close()


def test_ranking_counts_every_status_and_a_page_matches_the_export(db):
    shift, *_ = _arrange(db)
    ranking = results.ranking(db, shift)
    counts = {r.name: (r.approved, r.declined, r.skipped, r.waiting, r.reviewing) for r in ranking}
    assert counts == {"Аня": (2, 0, 0, 0, 0), "Боря": (2, 1, 0, 0, 0), "Катя": (0, 0, 1, 1, 1)}
    assert results.ranking(db, shift, limit=2) == ranking[:2]
    assert list(results.stream_ranking(db, shift.id)) == ranking


def test_counts_leave_out_a_test_participant_with_the_same_days_and_attempts(db):
    shift, *_ = _arrange(db)
    before = results.summary(db, shift)
    # A second test participant whose reports fall into exactly the same groups as Аня's.
    twin = factories.make_member(
        db, shift, factories.make_participant(db, name="Тест2", surname="Т", is_test=True)
    )
    factories.make_report(db, twin, 1, ReportStatus.approved, photos=1)
    factories.make_report(db, twin, 2, ReportStatus.approved, photos=3)
    assert results.summary(db, shift) == before


def test_experts_see_results_and_are_linked_back_where_they_may_go(expert_client, db):
    shift, *_ = _arrange(db)
    page = expert_client.get(f"/shifts/{shift.id}/results")
    assert f'href="/shifts/{shift.id}"' not in page.text and 'href="/">← На главную' in page.text
    assert expert_client.get(f"/shifts/{shift.id}/results.xlsx").status_code == 200
    home = expert_client.get("/")
    assert f'href="/shifts/{shift.id}/results"' in home.text


def test_places_are_shared_only_when_points_are_and_nobody_with_zero_is_placed(expert_client, db):
    shift, *_ = _arrange(db)
    page = expert_client.get(f"/shifts/{shift.id}/results").text
    assert page.count("<td>1–2</td>") == 2  # Аня and Боря share the first place
    assert "<td>—</td><td><a" in page  # Катя has no points: no place


def test_an_empty_shift_explains_itself(expert_client, db):
    from datetime import timedelta

    from app import clock
    from app.models import ShiftStatus

    shift = factories.make_shift(
        db, status=ShiftStatus.preparing, start=clock.local_today() + timedelta(days=10), days=30
    )
    page = expert_client.get(f"/shifts/{shift.id}/results").text
    assert "В смене пока нет участников" in page
    assert "<svg" not in page and "<table" not in page and "1 место" not in page
    factories.make_member(db, shift)
    page = expert_client.get(f"/shifts/{shift.id}/results").text
    assert "Смена начнётся" in page and "<svg" not in page


def test_only_the_days_that_came_are_listed(expert_client, db):
    from datetime import timedelta

    from app import clock

    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=2), days=30)
    member = factories.make_member(db, shift)
    factories.make_report(db, member, 1, ReportStatus.approved, photos=1)
    page = expert_client.get(f"/shifts/{shift.id}/results").text
    table = page[page.index("<h2>По дням</h2>") :]
    assert table.count("<tr><td>") == 3  # days 1–3 (today is day 3), not 30 rows
    assert 'class="legend skipped"' in page and "пропущено" in page
